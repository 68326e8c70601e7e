package main

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/firewall/firewalltest"
	"github.com/darse/darse/internal/testenv"
)

// A member's port forward and the site's SFTP port, from a client outside
// the host (a namespace of the test's), over IPv4 and IPv6: darse renders
// the exposures, the firewall watcher (here one limited to this site, in a
// table of its own) translates them to the containers on the dual-stack
// front network. (A watcher limited to a label leaves front's other
// traffic to front's own watcher: that containers are out of reach when
// routed to directly is shown by cmd/darse-fw's tests.)
func TestForwardAndSFTPOverBothFamilies(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/sftp:bookworm")
	if m := firewalltest.MissingTool(); m != "" {
		t.Fatalf("needs %s", m)
	}
	e := newEnv(t)
	name := siteName("fwd")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "static")
	page := "<p>forwarded " + name + "</p>\n"
	if err := os.WriteFile(filepath.Join(e.srv, "users", name, "data", "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	out := e.ok("forward", "add", name, "8080")
	m := regexp.MustCompile(`host port (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("forward add printed no host port: %s", out)
	}
	web, _ := strconv.Atoi(m[1])
	key := newClientKey(t, t.TempDir(), "carol")
	e.ok("key", "add", name, key.file+".pub")
	sftp := e.status(name).SSH.HostPort

	testWatcher(t, fmt.Sprintf("darse-fwd%d", os.Getpid()), "darse.site="+name, "--debounce-min", "5ms", "--debounce-max", "50ms")
	client := firewalltest.NewTestClient(t)

	for _, host := range []netip.Addr{client.Host4, client.Host6} {
		to := netip.AddrPortFrom(host, uint16(web))
		var status, body string
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if status, body, err = httpFrom(client, to, name+".test.example.org"); err == nil && strings.Contains(status, " 200 ") {
				break
			}
		}
		if err != nil || !strings.Contains(status, " 200 ") || !strings.HasSuffix(body, page) {
			t.Fatalf("forward %s: %q %q %v", to, status, body, err)
		}
		banner, _, err := client.WaitTCP(netip.AddrPortFrom(host, uint16(sftp)), 10*time.Second)
		if err != nil || !strings.HasPrefix(banner, "SSH-2.0-") {
			t.Fatalf("sftp port %s: %q %v", netip.AddrPortFrom(host, uint16(sftp)), banner, err)
		}
	}
	// Removing: the SSH access and an unknown port are refused at once,
	// recording nothing; a forward removed stops answering.
	for _, c := range []struct{ port, want string }{
		{strconv.Itoa(sftp), "is the site's SSH access, not a port forward"},
		{"49999", "is not forwarded for site " + name},
	} {
		if _, errs, code := e.run("forward", "rm", name, c.port); code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("forward rm %s: exit %d, %q; want %q", c.port, code, errs, c.want)
		}
	}
	if ops := e.ok("op", "ls"); strings.Count(ops, "unforward") != 0 {
		t.Errorf("refused removals were recorded:\n%s", ops)
	}
	e.ok("forward", "rm", name, strconv.Itoa(web))
	if ops := e.ok("op", "ls"); strings.Count(ops, "unforward") != 1 {
		t.Errorf("want one unforward operation recorded:\n%s", ops)
	}
	for _, host := range []netip.Addr{client.Host4, client.Host6} {
		to := netip.AddrPortFrom(host, uint16(web))
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, _, err := httpFrom(client, to, name+".test.example.org"); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("forward %s still answers after forward rm", to)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// testWatcher runs a firewall watcher of the test's own, in table (removed
// after) and limited to containers with label, until the test ends; its
// log (the last 8 kB) and the table are shown if the test failed.
func testWatcher(t *testing.T, table, label string, args ...string) {
	t.Helper()
	t.Cleanup(func() { exec.Command("nft", "delete", "table", "inet", table).Run() })
	fw := exec.Command(filepath.Join(filepath.Dir(darseBin), "darse-fw"), append([]string{"--table", table, "--label", label}, args...)...)
	var logs testenv.Buffer
	fw.Stdout, fw.Stderr = &logs, &logs
	if err := fw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fw.Process.Kill()
		fw.Wait()
		if t.Failed() {
			out, _ := exec.Command("nft", "list", "table", "inet", table).CombinedOutput()
			l := logs.String()
			if len(l) > 8192 {
				l = l[len(l)-8192:]
			}
			t.Logf("darse-fw:\n%s\n%.8192s", l, out)
		}
	})
}

// httpFrom sends GET / with Host host from the client namespace and
// returns the status line and the whole response.
func httpFrom(c *firewalltest.Client, to netip.AddrPort, host string) (string, string, error) {
	var conn net.Conn
	err := c.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", to.String(), 2*time.Second)
		return err
	})
	if err != nil {
		return "", "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", host)
	r := bufio.NewReader(conn)
	status, err := r.ReadString('\n')
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	_, err = r.WriteTo(&b)
	return strings.TrimSpace(status), b.String(), err
}
