package main

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/firewall"
	"github.com/darse/darse/internal/firewall/firewalltest"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/netns"
)

// A tenant container, probed from its own network namespace, reaches
// neither the host (SSH, the panel: here a listener of the test), nor
// link-local or --egress-deny addresses, nor another tenant by its
// internal addresses or its forward, over IPv4 and IPv6; its own exposure
// from the Internet, the front-door port on the host, Docker's DNS and
// the Internet still work. A trusted (non-tenant)
// container on the same network reaches everything the tenant may not:
// what fails for the tenant fails because of the rules.
func TestTenantEgress(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	// The Internet: the client namespace, with a metadata service and a
	// management address behind it, routed by the host.
	meta4 := netip.MustParseAddr("169.254.169.254")
	mgmt4 := netip.AddrFrom4([4]byte{198, 51, 100, l.client.Addr4.As4()[2]})
	mgmt6 := netip.MustParseAddr(strings.TrimSuffix(l.client.Addr6.String(), "::2") + ":1::fe")
	internet(t, l.client, meta4, mgmt4, mgmt6)
	svc := 9000
	for _, a := range []netip.Addr{l.client.Addr4, l.client.Addr6, meta4, mgmt4, mgmt6} {
		l.client.ServeTCP(t, netip.AddrPortFrom(a, uint16(svc)))
	}

	// The host's own services: one closed to tenants (SSH, the panel),
	// one they may reach (the front door).
	closed, open := hostPort(), hostPort()
	for open == closed {
		open = hostPort()
	}
	listenHost(t, closed)
	listenHost(t, open)
	l.flags = []string{"--tenant-allow", "tcp/" + strconv.Itoa(open), "--egress-deny", mgmt4.String() + "/32," + mgmt6.String()}
	l.opts = firewall.Options{TenantHostAllow: []firewall.Port{{Protocol: labels.TCP, Number: open}},
		EgressDeny: []netip.Prefix{netip.PrefixFrom(mgmt4, 32), netip.PrefixFrom(mgmt6, 128)}}

	// Tenant a on the lab network, tenant b on its own; both on an
	// isolated shared one, as sites are on front.
	own := l.network("b", false)
	shared := l.network("f", true)
	portA, portB := hostPort(), hostPort()
	for portB == portA {
		portB = hostPort()
	}
	a := l.run("a", append(exposeArgs("web", 8080, portA, "tcp"), "--label", labels.SiteLabel+"=a"+l.id)...)
	b := l.runOn(own.Name, "b", append(exposeArgs("web", 8080, portB, "tcp"), "--label", labels.SiteLabel+"=b"+l.id)...)
	trusted := l.run("trusted")
	for _, c := range []string{a, b} {
		if _, err := firewalltest.Docker("network", "connect", shared.Name, c); err != nil {
			t.Fatal(err)
		}
	}
	l.start()
	l.waitDesired(10 * time.Second)

	gw4, gw6, gwLL := bridgeAddrs(t, l.net.Bridge)
	b4, b6, err := firewalltest.Addresses(b, own.Name)
	if err != nil {
		t.Fatal(err)
	}
	bf4, bf6, err := firewalltest.Addresses(b, shared.Name)
	if err != nil {
		t.Fatal(err)
	}
	ap := func(a netip.Addr, port int) string { return netip.AddrPortFrom(a, uint16(port)).String() }
	// What the tenant must not reach; control: the trusted container on
	// the same network reaches it, so the tenant's failure is the rules'.
	blocked := []struct {
		to      string
		control bool
	}{
		// The host, on every one of its addresses.
		{ap(gw4, closed), true}, {ap(gw6, closed), true},
		{ap(l.client.Host4, closed), true}, {ap(l.client.Host6, closed), true},
		{fmt.Sprintf("[%s%%eth0]:%d", gwLL, closed), true},
		// Metadata and management, through the host.
		{ap(meta4, svc), true}, {ap(mgmt4, svc), true}, {ap(mgmt6, svc), true},
		// The other tenant by its internal addresses, between bridges
		// and on the shared isolated network; its exposed port too.
		{ap(b4, 8081), false}, {ap(b6, 8081), false}, {ap(b4, 8080), false}, {ap(b6, 8080), false},
		{ap(bf4, 8080), false}, {ap(bf6, 8080), false},
		// Forwards through the host's address, the other's and its own:
		// Docker's isolation of bridges drops the IPv4 ones for anyone.
		{ap(l.client.Host6, portB), true}, {ap(l.client.Host4, portB), false},
		{ap(l.client.Host6, portA), false}, {ap(l.client.Host4, portA), false},
	}
	allowed := []string{
		// The front door on the host.
		ap(gw4, open), ap(gw6, open), ap(l.client.Host4, open), ap(l.client.Host6, open),
		// The Internet.
		ap(l.client.Addr4, svc), ap(l.client.Addr6, svc),
	}
	for _, b := range blocked {
		if !b.control {
			continue
		}
		// Retried: a container's IPv6 link-local address is tentative
		// for a second or two after start (duplicate address detection),
		// longer on a loaded machine.
		var err error
		for deadline := time.Now().Add(15 * time.Second); ; {
			if err = dialFrom(t, trusted, b.to, 2*time.Second); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("trusted container to %s: %v; the test's target must answer", b.to, err)
		}
	}
	for _, b := range blocked {
		if err := dialFrom(t, a, b.to, 300*time.Millisecond); err == nil {
			t.Errorf("tenant reached %s; it must be dropped", b.to)
		} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Errorf("tenant to %s: %v; want a timeout (dropped, not refused)", b.to, err)
		}
	}
	for _, to := range allowed {
		if err := dialFrom(t, a, to, 2*time.Second); err != nil {
			t.Errorf("tenant to %s: %v; it must be reachable", to, err)
		}
	}
	// Docker's embedded DNS (127.0.0.11, in the container's own
	// namespace) answers, and a neighbour on a non-isolated network is
	// reachable by name.
	if got, err := firewalltest.Docker("exec", a, "/echo", "dial", trusted+":8080"); err != nil || got == "" {
		t.Errorf("tenant to %s:8080 by name: %q, %v", trusted, got, err)
	}
	// The site's own exposure, from the Internet.
	l.reach(portA)
}

// network creates a labelled dual-stack network for the lab, isolated
// (inter-container communication off) like front when asked; removed
// with the lab's containers on it.
func (l *lab) network(name string, isolated bool) *firewalltest.Network {
	l.t.Helper()
	name = "dfwt-" + l.id + "-" + name
	sub := firewalltest.Subnet6()
	args := []string{"network", "create", "--ipv6", "--subnet", sub.String(), "--label", l.label}
	if isolated {
		args = append(args, "-o", "com.docker.network.bridge.enable_icc=false")
	}
	id, err := firewalltest.Docker(append(args, name)...)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		if ids, _ := firewalltest.Docker("ps", "-aq", "--filter", "label="+l.label); ids != "" {
			firewalltest.Docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		firewalltest.Docker("network", "rm", name)
	})
	return &firewalltest.Network{Name: name, ID: id, Bridge: "br-" + id[:12], Subnet6: sub}
}

// runOn is run on another network than the lab's.
func (l *lab) runOn(network, name string, args ...string) string {
	l.t.Helper()
	name = "dfwt-" + l.id + "-" + name
	a := append([]string{"run", "-d", "--name", name, "--label", l.label, "--network", network}, args...)
	a = append(a, l.image, "tcp:8080", "tcp:8081", "udp:5353")
	if _, err := firewalltest.Docker(a...); err != nil {
		l.t.Fatal(err)
	}
	return name
}

// internet gives the client namespace more addresses (as a metadata
// service and a management network would have; on its loopback, this
// kernel has no dummy interfaces), routed to it by the host; the routes
// go with the client's veth.
func internet(t *testing.T, c *firewalltest.Client, addrs ...netip.Addr) {
	t.Helper()
	for _, a := range addrs {
		args := []string{"ip", "addr", "add", netip.PrefixFrom(a, a.BitLen()).String(), "dev", "lo"}
		if a.Is6() {
			args = append(args, "nodad")
		}
		if _, err := c.Exec("", args...); err != nil {
			t.Fatal(err)
		}
		via, fam := c.Addr4, "-4"
		if a.Is6() {
			via, fam = c.Addr6, "-6"
		}
		route := netip.PrefixFrom(a, a.BitLen()).String()
		if out, err := exec.Command("ip", fam, "route", "add", route, "via", via.String(), "dev", c.HostIf).CombinedOutput(); err != nil {
			t.Fatalf("ip route add %s: %v: %s", route, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", fam, "route", "del", route, "via", via.String(), "dev", c.HostIf).Run() })
	}
}

// listenHost accepts TCP connections on every host address at port, as
// the host's SSH or the panel would.
func listenHost(t *testing.T, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// bridgeAddrs returns a bridge's IPv4, global IPv6 and link-local IPv6
// addresses: the host as its containers see it.
func bridgeAddrs(t *testing.T, bridge string) (v4, v6, ll netip.Addr) {
	t.Helper()
	ifc, err := net.InterfaceByName(bridge)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		switch ip := p.Addr(); {
		case ip.Is4():
			v4 = ip
		case ip.IsLinkLocalUnicast():
			ll = ip
		default:
			v6 = ip
		}
	}
	if !v4.IsValid() || !v6.IsValid() || !ll.IsValid() {
		t.Fatalf("bridge %s: addresses %v, want IPv4, IPv6 and link-local", bridge, addrs)
	}
	return v4, v6, ll
}

func containerPid(t *testing.T, container string) int {
	t.Helper()
	out, err := firewalltest.Docker("inspect", "--format", "{{.State.Pid}}", container)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(out)
	if err != nil || pid == 0 {
		t.Fatalf("container %s: pid %q", container, out)
	}
	return pid
}

// dialFrom opens a TCP connection to to from inside container's network
// namespace: the container's own addresses and routes, and none of its
// processes involved. A zone names the container's interface.
func dialFrom(t *testing.T, container, to string, timeout time.Duration) error {
	t.Helper()
	return netns.Do(containerPid(t, container), func() error {
		// Go resolves zone names with the host's interfaces: use the
		// container's index instead.
		if ap, err := netip.ParseAddrPort(to); err == nil && ap.Addr().Zone() != "" {
			ifc, err := net.InterfaceByName(ap.Addr().Zone())
			if err != nil {
				return fmt.Errorf("zone of %s: %w", to, err)
			}
			to = netip.AddrPortFrom(ap.Addr().WithZone(strconv.Itoa(ifc.Index)), ap.Port()).String()
		}
		c, err := net.DialTimeout("tcp", to, timeout)
		if err != nil {
			return err
		}
		return c.Close()
	})
}
