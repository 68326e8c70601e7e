package firewall

import (
	"net/netip"
	"strings"
	"testing"
)

// An exposure answers at its container's own address only when that
// address is routed (global) and the exposure is open on every IPv6
// address; a ULA network keeps translation only, and masquerade.
func TestRoutedDirect(t *testing.T) {
	state := func(subnet6, addr6, hostip string) State {
		l := map[string]string{"darse.site": "s", "darse.expose.x.port": "22", "darse.expose.x.hostport": "40022"}
		if hostip != "" {
			l["darse.expose.x.hostip"] = hostip
		}
		return State{
			Containers: []Container{{ID: "1", Name: "s_ssh_1", Labels: l,
				Endpoints: []Endpoint{{Network: "front", IPv4: netip.MustParseAddr("172.24.0.2"), IPv6: netip.MustParseAddr(addr6)}}}},
			Networks: []Network{{Name: "front", Bridge: "br-darse-front", Isolated: true,
				Subnets: []netip.Prefix{netip.MustParsePrefix("172.24.0.0/16"), netip.MustParsePrefix(subnet6)}}},
		}
	}
	for _, c := range []struct {
		subnet6, addr6, hostip, direct string
		masq                           bool
	}{
		{"2001:db8:42::/64", "2001:db8:42::2", "", "[2001:db8:42::2]:22", false},
		{"2001:db8:42::/64", "2001:db8:42::2", "::", "[2001:db8:42::2]:22", false},
		{"2001:db8:42::/64", "2001:db8:42::2", "0.0.0.0", "", false},
		{"2001:db8:42::/64", "2001:db8:42::2", "2001:db8:ffff::1", "", false},
		{"fd64:6172:7365::/64", "fd64:6172:7365::2", "", "", true},
	} {
		r := Build(state(c.subnet6, c.addr6, c.hostip), Options{Srv: "/srv"})
		if len(r.Exposures) != 1 {
			t.Fatalf("%+v: exposures %v, problems %v", c, r.Exposures, r.Problems)
		}
		got := ""
		if d := r.Exposures[0].Direct; d.IsValid() {
			got = d.String()
		}
		text := r.Text()
		if got != c.direct || strings.Contains(text, "@direct_tcp6 accept") != (c.direct != "") {
			t.Errorf("%+v: direct %q, want %q\n%s", c, got, c.direct, text)
		}
		if strings.Contains(text, "masquerade") != c.masq {
			t.Errorf("%+v: masquerade %v, want %v", c, !c.masq, c.masq)
		}
		// A direct accept always comes after the drop of what a container
		// network sends: tenants never reach each other by address.
		if c.direct != "" && strings.Index(text, "iifname @bridges drop") > strings.Index(text, "@direct_tcp6 accept") {
			t.Errorf("%+v: direct accepted before container networks are dropped\n%s", c, text)
		}
	}
}
