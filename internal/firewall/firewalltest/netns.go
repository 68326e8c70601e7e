// Package firewalltest provides the real parts the firewall's tests and
// benchmarks run against: scratch network namespaces, a client namespace
// joined to the host by a veth pair with IPv4 and IPv6 addresses of its
// own, and a tiny "echo" container image that answers with the peer's
// address. Everything it creates is named darse-fw-* / dfw* and removed by
// the matching Close (or t.Cleanup in the T helpers).
//
// Traffic only ever goes to the namespaces created here, the host's end of
// their veth pairs, and the tests' own containers.
package firewalltest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace created by a test.
type Netns struct {
	Name string
	fd   int
}

// NewNetns creates an empty network namespace (loopback up).
func NewNetns() (*Netns, error) {
	name := "darse-fw-" + randomID(4)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	n := &Netns{Name: name, fd: -1}
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	n.fd = fd
	if _, err := n.Exec("", "ip", "link", "set", "lo", "up"); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Scratch returns a new namespace deleted when t ends.
func Scratch(t testing.TB) *Netns {
	t.Helper()
	n, err := NewNetns()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// FD is an open descriptor of the namespace (for nft.WithNetNS).
func (n *Netns) FD() int { return n.fd }

// Exec runs a command inside the namespace with stdin, returning its
// standard output.
func (n *Netns) Exec(stdin string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s (netns %s): %v: %s", strings.Join(args, " "), n.Name, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Do runs fn on an OS thread inside the namespace; sockets fn opens live
// there. The thread is discarded afterwards.
func (n *Netns) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("join netns %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Close deletes the namespace.
func (n *Netns) Close() error {
	if n.fd >= 0 {
		unix.Close(n.fd)
		n.fd = -1
	}
	if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", n.Name, err, out)
	}
	return nil
}

// List returns nft's listing of the inet table name inside the namespace,
// normalised (see Normalize); "" when the table does not exist.
func (n *Netns) List(table string) (string, error) {
	out, err := n.Exec("", "nft", "list", "table", "inet", table)
	if err != nil {
		if strings.Contains(err.Error(), "No such file") {
			return "", nil
		}
		return "", err
	}
	return Normalize(out), nil
}

// HostList is List for the host's own namespace.
func HostList(table string) (string, error) {
	out, err := exec.Command("nft", "list", "table", "inet", table).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No such file") {
			return "", nil
		}
		return "", fmt.Errorf("nft list table inet %s: %v: %s", table, err, out)
	}
	return Normalize(string(out)), nil
}

var counterRE = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// Normalize drops what differs between two identical rulesets: counter
// values and the warnings nft prints about foreign tables.
func Normalize(listing string) string {
	var keep []string
	for _, l := range strings.Split(listing, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "# Warning:") {
			continue
		}
		if i := strings.Index(l, "# Warning:"); i >= 0 {
			l = l[:i]
		}
		keep = append(keep, counterRE.ReplaceAllString(l, "counter"))
	}
	return strings.TrimSpace(strings.Join(keep, "\n")) + "\n"
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// MissingTool names a command or kernel feature the helpers need that
// this machine lacks, or returns "".
func MissingTool() string {
	for _, c := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(c); err != nil {
			return c
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return "network namespaces"
	}
	return ""
}
