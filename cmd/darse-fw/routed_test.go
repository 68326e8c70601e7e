package main

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/darse/darse/internal/firewall/firewalltest"
	"github.com/darse/darse/internal/labels"
)

// On a network of the watcher's own with a routed (global) IPv6 subnet, as
// the front shards are on a host with ipv6.prefix: from the Internet (the
// client, which routes the subnet to the host), a container's exposed port
// answers at the container's own address, untranslated (it sees the
// client's address), and its forward still answers at the host's; a port
// it does not expose does not, though it listens; another tenant, on the
// same isolated bridge or on another network, reaches neither.
func TestRoutedSubnetDirect(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	sub := netip.MustParsePrefix(fmt.Sprintf("2001:db8:%s:%s::/64", l.id[:2], l.id[2:]))
	name := "dfwt-" + l.id + "-g"
	_, err := firewalltest.Docker("network", "create", "--ipv6", "--subnet", sub.String(), "--label", l.label,
		"-o", "com.docker.network.bridge.enable_icc=false", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// After the containers, which newLab's cleanup removes, registered
		// earlier: remove them here first.
		for _, c := range []string{"g", "o"} {
			firewalltest.Docker("rm", "-f", "dfwt-"+l.id+"-"+c)
		}
		firewalltest.Docker("network", "rm", name)
	})
	if _, err := l.client.Exec("", "ip", "-6", "route", "add", sub.String(), "via", l.client.Host6.String()); err != nil {
		t.Fatal(err)
	}
	fwd := hostPort()
	g := l.runOn(name, "g", append(exposeArgs("web", 8080, fwd, "tcp"), "--label", labels.SiteLabel+"=g"+l.id)...)
	same := l.runOn(name, "o", "--label", labels.SiteLabel+"=o"+l.id)
	elsewhere := l.run("t", "--label", labels.SiteLabel+"=t"+l.id)
	l.start()
	l.waitDesired(10 * time.Second)

	_, g6, err := firewalltest.Addresses(g, name)
	if err != nil {
		t.Fatal(err)
	}
	if !sub.Contains(g6) {
		t.Fatalf("container address %s outside %s", g6, sub)
	}
	got, _, err := l.client.WaitTCP(netip.AddrPortFrom(g6, 8080), 5*time.Second)
	if err != nil || got != l.client.Addr6.String() {
		t.Fatalf("[%s]:8080 from the client: %q %v; want the client's own %s", g6, got, err, l.client.Addr6)
	}
	l.reach(fwd)
	l.unreachable(netip.AddrPortFrom(g6, 8081))
	for _, from := range []string{same, elsewhere} {
		for _, port := range []int{8080, 8081} {
			to := netip.AddrPortFrom(g6, uint16(port)).String()
			if err := dialFrom(t, from, to, 500*time.Millisecond); err == nil {
				t.Errorf("tenant %s reaches %s", from, to)
			}
		}
	}
}
