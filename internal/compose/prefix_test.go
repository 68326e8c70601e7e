package compose

import (
	"net/netip"
	"strings"
	"testing"
)

// Each shard takes its own /64 of the routed prefix (shard k the k-th),
// keeping its IPv4 subnet, bridge and isolation; without a prefix the
// shards keep the ULA.
func TestFrontShardIn(t *testing.T) {
	for _, c := range []struct {
		prefix string
		k      int
		want   string
	}{
		{"2001:db8:42::/48", 0, "2001:db8:42::/64"},
		{"2001:db8:42::/48", 1, "2001:db8:42:1::/64"},
		{"2001:db8:42::/48", 64, "2001:db8:42:40::/64"},
		{"2001:db8:42:ab00::/56", 10, "2001:db8:42:ab0a::/64"},
		{"2001:db8:42:ab00::/57", 64, "2001:db8:42:ab40::/64"},
		{"2a01:4f8:1:2::/60", 0, ""}, // too long: refused below
	} {
		p := netip.MustParsePrefix(c.prefix)
		n, err := FrontShardIn(c.k, p)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s shard %d: accepted %v", c.prefix, c.k, n.Subnets)
			}
			continue
		}
		plain, _ := FrontShard(c.k)
		if err != nil || n.Subnets[1] != c.want || n.Subnets[0] != plain.Subnets[0] || n.Name != plain.Name ||
			n.Options["com.docker.network.bridge.enable_icc"] != "false" {
			t.Errorf("%s shard %d = %+v, %v; want IPv6 %s beside %v", c.prefix, c.k, n, err, c.want, plain.Subnets)
		}
		if sub := netip.MustParsePrefix(n.Subnets[1]); !p.Contains(sub.Addr()) {
			t.Errorf("%s shard %d: %s outside the prefix", c.prefix, c.k, sub)
		}
	}
	// The shards' /64s are distinct.
	p := netip.MustParsePrefix("2001:db8:7::/57")
	seen := map[string]int{}
	for k := 0; k <= MaxShard; k++ {
		n, err := FrontShardIn(k, p)
		if err != nil {
			t.Fatal(err)
		}
		if j, dup := seen[n.Subnets[1]]; dup {
			t.Fatalf("shards %d and %d share %s", j, k, n.Subnets[1])
		}
		seen[n.Subnets[1]] = k
	}
	if n, err := FrontShardIn(3, netip.Prefix{}); err != nil || n.Subnets[1] != "fd64:6172:7365:3::/64" {
		t.Errorf("no prefix: %+v, %v; want the ULA", n, err)
	}
	// FrontShard itself is unchanged by a call with a prefix.
	if n, _ := FrontShard(0); n.Subnets[1] != FrontSubnet6 {
		t.Errorf("FrontShard(0) changed: %v", n.Subnets)
	}
}

func TestCheckRoutedPrefix(t *testing.T) {
	for _, ok := range []string{"2001:db8::/32", "2001:db8:42::/48", "2a01:4f8:c0c:1200::/56", "2001:db8:1:80::/57"} {
		if err := CheckRoutedPrefix(netip.MustParsePrefix(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, c := range []struct{ prefix, want string }{
		{"fd00:1::/48", "unique local"},
		{"fd64:6172:7365::/48", "unique local"},
		{"fe80::/48", "link-local"},
		{"ff02::/16", "multicast"},
		{"::/0", "within 2000::/3"},
		{"::ffff:10.0.0.0/104", "IPv6 prefix"},
		{"10.0.0.0/8", "IPv6 prefix"},
		{"3fff::/20", ""}, // RFC 9637's documentation prefix: global unicast, accepted
		{"2001:db8:42::1/48", "first address (2001:db8:42::/48)"},
		{"2001:db8:42:1::/64", "/57 or shorter"},
		{"2001:db8:42:100::/58", "/57 or shorter"},
	} {
		err := CheckRoutedPrefix(netip.MustParsePrefix(c.prefix))
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.prefix, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.prefix, err, c.want)
		}
	}
}
