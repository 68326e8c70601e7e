package firewalltest

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Client is a namespace joined to the host by a veth pair: the host end
// has Host4 and Host6, the client end Addr4 and Addr6, and the client
// routes everything through the host. It stands for a machine on the
// Internet reaching the host's addresses.
type Client struct {
	*Netns
	HostIf       string
	Host4, Host6 netip.Addr
	Addr4, Addr6 netip.Addr
}

// NewClient creates a client namespace on a free 198.18.K.0/30 (RFC 2544
// benchmarking range) and fd4d:6172:7365:K::/64 (a ULA of ours).
func NewClient() (*Client, error) {
	if b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); err == nil && strings.TrimSpace(string(b)) != "1" {
		return nil, fmt.Errorf("IPv6 forwarding is off on the host (net.ipv6.conf.all.forwarding=0): Docker enables it when it creates an IPv6 network")
	}
	ns, err := NewNetns()
	if err != nil {
		return nil, err
	}
	c := &Client{Netns: ns, HostIf: "dfw" + randomID(4)}
	fail := func(err error) (*Client, error) {
		c.Close()
		return nil, err
	}
	k, err := freeSlot()
	if err != nil {
		return fail(err)
	}
	c.Host4 = netip.AddrFrom4([4]byte{198, 18, k, 1})
	c.Addr4 = netip.AddrFrom4([4]byte{198, 18, k, 2})
	c.Host6 = netip.MustParseAddr(fmt.Sprintf("fd4d:6172:7365:%x::1", k))
	c.Addr6 = netip.MustParseAddr(fmt.Sprintf("fd4d:6172:7365:%x::2", k))
	host := [][]string{
		{"ip", "link", "add", c.HostIf, "type", "veth", "peer", "name", c.HostIf + "c"},
		{"ip", "link", "set", c.HostIf + "c", "netns", ns.Name},
		{"ip", "addr", "add", c.Host4.String() + "/30", "dev", c.HostIf},
		{"ip", "-6", "addr", "add", c.Host6.String() + "/64", "dev", c.HostIf, "nodad"},
		{"ip", "link", "set", c.HostIf, "up"},
	}
	for _, args := range host {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fail(fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out))
		}
	}
	inside := [][]string{
		{"ip", "link", "set", c.HostIf + "c", "name", "eth0"},
		{"ip", "addr", "add", c.Addr4.String() + "/30", "dev", "eth0"},
		{"ip", "-6", "addr", "add", c.Addr6.String() + "/64", "dev", "eth0", "nodad"},
		{"ip", "link", "set", "eth0", "up"},
		{"ip", "route", "add", "default", "via", c.Host4.String()},
		{"ip", "-6", "route", "add", "default", "via", c.Host6.String()},
	}
	for _, args := range inside {
		if _, err := ns.Exec("", args...); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

// NewTestClient is NewClient, removed when t ends.
func NewTestClient(t testing.TB) *Client {
	t.Helper()
	c, err := NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// freeSlot picks K such that no host interface has an address in
// 198.18.K.0/24 yet.
func freeSlot() (byte, error) {
	out, err := exec.Command("ip", "-o", "addr", "show").Output()
	if err != nil {
		return 0, fmt.Errorf("ip addr show: %w", err)
	}
	for range 64 {
		var r [1]byte
		rand.Read(r[:])
		k := 1 + r[0]%250
		if !strings.Contains(string(out), fmt.Sprintf(" 198.18.%d.", k)) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("no free 198.18.K.0/24 for a client namespace")
}

// Close removes the veth pair (with the namespace).
func (c *Client) Close() error {
	exec.Command("ip", "link", "del", c.HostIf).Run()
	return c.Netns.Close()
}

// TCP connects from the client to to and returns the first line the peer
// sends (the echo container sends the address it sees).
func (c *Client) TCP(to netip.AddrPort, timeout time.Duration) (string, error) {
	var conn net.Conn
	err := c.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", to.String(), timeout)
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

// UDP sends one datagram from the client to to and returns the reply.
func (c *Client) UDP(to netip.AddrPort, timeout time.Duration) (string, error) {
	var conn net.Conn
	err := c.Do(func() error {
		var err error
		conn, err = net.Dial("udp", to.String())
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	return strings.TrimSpace(string(buf[:n])), err
}

// ServeTCP listens inside the client namespace on addr and answers every
// connection with the peer's address, as the echo container does; it
// stops when t ends.
func (c *Client) ServeTCP(t testing.TB, addr netip.AddrPort) {
	t.Helper()
	var l net.Listener
	err := c.Do(func() error {
		var err error
		l, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			ap, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
			fmt.Fprintf(conn, "%s\n", ap.Addr().Unmap())
			conn.Close()
		}
	}()
}

// WaitTCP retries TCP until the peer answers or timeout passes, and
// returns the answer and when it came.
func (c *Client) WaitTCP(to netip.AddrPort, timeout time.Duration) (string, time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		got, err := c.TCP(to, 100*time.Millisecond)
		if err == nil {
			return got, time.Now(), nil
		}
		last = err
		time.Sleep(2 * time.Millisecond)
	}
	return "", time.Time{}, fmt.Errorf("%s not reachable from the client within %s: %v", to, timeout, last)
}
