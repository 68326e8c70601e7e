package compose

import (
	"context"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// Shard 0 is the front network exactly as before; shard k has its own
// /22 and /64, a bridge name the kernel accepts, and front's options and
// labels; no two shards' subnets overlap, nor the engine's pool.
func TestFrontShard(t *testing.T) {
	if n, err := FrontShard(0); err != nil || !reflect.DeepEqual(n, Front()) {
		t.Fatalf("shard 0 = %+v, %v; want Front()", n, err)
	}
	n, err := FrontShard(1)
	want := Network{Key: "front-1", Name: "front-1", Subnets: []string{"172.25.0.0/22", "fd64:6172:7365:1::/64"}, EnableIPv6: true,
		Options: map[string]string{"com.docker.network.bridge.enable_icc": "false", "com.docker.network.bridge.name": "br-darse-f1"},
		Labels:  map[string]string{"darse.managed": "true"}}
	if err != nil || !reflect.DeepEqual(n, want) {
		t.Fatalf("shard 1 = %+v, %v\nwant %+v", n, err, want)
	}
	enginePool := netip.MustParsePrefix("172.16.0.0/13")
	var seen []netip.Prefix
	for k := 0; k <= MaxShard; k++ {
		n, err := FrontShard(k)
		if err != nil {
			t.Fatal(err)
		}
		if b := n.Options["com.docker.network.bridge.name"]; len(b) > 15 {
			t.Errorf("shard %d: bridge name %q is longer than 15 characters", k, b)
		}
		if n.Options["com.docker.network.bridge.enable_icc"] != "false" || n.Labels["darse.managed"] != "true" {
			t.Errorf("shard %d: not isolated like front: %+v", k, n)
		}
		for _, s := range n.Subnets {
			p := netip.MustParsePrefix(s)
			if p.Addr().Is4() && k > 0 && p.Bits() != 22 || p.Addr().Is6() && p.Bits() != 64 {
				t.Errorf("shard %d: subnet %s has the wrong size", k, s)
			}
			if p.Overlaps(enginePool) {
				t.Errorf("shard %d: subnet %s overlaps the engine's pool", k, s)
			}
			for _, q := range seen {
				if p.Overlaps(q) {
					t.Errorf("shard %d: subnet %s overlaps %s", k, s, q)
				}
			}
			seen = append(seen, p)
		}
	}
	for _, k := range []int{-1, MaxShard + 1} {
		if _, err := FrontShard(k); err == nil || !strings.Contains(err.Error(), "must be 0 to") {
			t.Errorf("FrontShard(%d) = %v, want a range error", k, err)
		}
	}
}

// A tenant may join any shard's network, and no other external network.
func TestTenantFrontShards(t *testing.T) {
	project := func(net string) string {
		return "services:\n  web:" + lockedWeb + "    networks: [" + net + "]\nnetworks:\n  " + net + ":\n    external: true\n"
	}
	for _, net := range []string{"front", "front-1", "front-64"} {
		if _, err := Load(context.Background(), folder(t, "site", project(net), ""), TenantPolicy); err != nil {
			t.Errorf("shard network %s refused: %v", net, err)
		}
	}
	for _, net := range []string{"front-0", "front-65", "front-x", "bridge"} {
		refused(t, folder(t, "site", project(net), ""), `external network "`+net+`"`, "not allowed")
	}
}
