package main

// End-to-end test of front shards: with front.shard_sites: 1, three sites
// land on front, front-1 and front-2, each reached by the real Traefik
// over IPv4 and IPv6, tenants kept apart within a shard and across.

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/hosting"
)

// webAddress is the site's web container's address on its front network.
func webAddress(t *testing.T, st hosting.Status) (v4, v6 string) {
	t.Helper()
	for _, svc := range st.Services {
		for _, ad := range svc.Addresses {
			if svc.Service == "web" && ad.Network == st.Front {
				return ad.IPv4, ad.IPv6
			}
		}
	}
	t.Fatalf("site %s has no web address on %q: %+v", st.Name, st.Front, st.Services)
	return "", ""
}

// unreachable fails if from's web container can open target (ADDR/PORT)
// 5 s after it is first tried: the firewall watcher may still be applying
// the rules of a network just made.
func unreachable(t *testing.T, from, target string) {
	t.Helper()
	probe := fmt.Sprintf("timeout 2 bash -c 'exec 3<>/dev/tcp/%s' && echo OPEN", target)
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("docker", "exec", from+"_web_1", "bash", "-c", probe).CombinedOutput()
		if !strings.Contains(string(out), "OPEN") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("from %s, %s is reachable", from, target)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// answers fails unless addr:8080 (a web container) accepts from the host:
// a probe that fails then fails for the firewall, not for want of a route.
func answers(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "8080"), 3*time.Second)
	if err != nil {
		t.Fatalf("%s from the host: %v", addr, err)
	}
	conn.Close()
}

func TestFrontShards(t *testing.T) {
	f := newFront(t, "front:\n  shard_sites: 1\n")
	// The shard networks outlive their sites (README "Front shards"); the
	// test removes the ones it made, which the engine refuses while a
	// container is still on one.
	t.Cleanup(func() { exec.Command("docker", "network", "rm", "front-1", "front-2").Run() })
	v4, v6 := fmt.Sprintf("127.0.0.1:%d", f.http), fmt.Sprintf("[::1]:%d", f.http)
	create := func(base string) (name, host, page string) {
		t.Helper()
		name = siteName(base)
		f.cleanup(name)
		f.ok("site", "create", name, "--template", "static")
		page = "<p>shard site " + name + "</p>\n"
		if err := os.WriteFile(filepath.Join(f.srv, "users", name, "data", "index.html"), []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		return name, name + "." + f.domain, page
	}
	type placed struct{ name, host, page, front string }
	var sites []placed
	for i, base := range []string{"sha", "shb", "shc"} {
		n, h, p := create(base)
		sites = append(sites, placed{n, h, p, compose.FrontShardName(i)})
	}

	for k, s := range sites {
		for _, addr := range []string{v4, v6} {
			eventually(t, addr, s.host, 200, s.page)
		}
		st := f.status(s.name)
		if st.Front != s.front {
			t.Fatalf("site %s: status front %q, want %s", s.name, st.Front, s.front)
		}
		a4, a6 := webAddress(t, st)
		n, err := compose.FrontShard(k)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range []string{a4, a6} {
			ip, err := netip.ParseAddr(a)
			if err != nil || !netip.MustParsePrefix(n.Subnets[i]).Contains(ip) {
				t.Errorf("site %s: address %q outside %s's %s", s.name, a, n.Name, n.Subnets[i])
			}
		}
		if out, err := exec.Command("ip", "link", "show", n.Options["com.docker.network.bridge.name"]).CombinedOutput(); err != nil {
			t.Errorf("shard %d's bridge: %v %s", k, err, out)
		}
	}

	// Across shards: site on front-2 cannot reach the one on front-1.
	b4, b6 := webAddress(t, f.status(sites[1].name))
	answers(t, b4)
	answers(t, b6)
	unreachable(t, sites[2].name, b4+"/8080")
	unreachable(t, sites[2].name, b6+"/8080")

	// Room for two a shard from now on: sites already placed stay, new
	// ones fill shard 0 then join front-1's tenant.
	conf := filepath.Join(f.srv, "conf", "darse.yml")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(strings.Replace(string(b), "shard_sites: 1", "shard_sites: 2", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"front", "front-1"} {
		n, h, p := create("sh" + want[len(want)-1:])
		sites = append(sites, placed{n, h, p, want})
	}
	for _, s := range sites {
		if st := f.status(s.name); st.Front != s.front {
			t.Errorf("site %s: front %q, want %s", s.name, st.Front, s.front)
		}
	}
	// Within front-1, as within front: tenants cannot reach each other
	// over IPv4 (Docker's icc off) nor IPv6 (darse-fw), and Traefik
	// still reaches both.
	e := sites[len(sites)-1]
	e4, e6 := webAddress(t, f.status(e.name))
	answers(t, e6)
	unreachable(t, e.name, b4+"/8080")
	unreachable(t, e.name, b6+"/8080")
	unreachable(t, sites[1].name, e4+"/8080")
	unreachable(t, sites[1].name, e6+"/8080")
	for _, s := range []placed{sites[1], e} {
		for _, addr := range []string{v4, v6} {
			eventually(t, addr, s.host, 200, s.page)
		}
	}

	// Removed, a site leaves no container and is no longer routed; the
	// shard networks stay, as front does.
	for _, s := range sites {
		f.ok("site", "rm", s.name, "--purge", "--yes")
		out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=darse.site="+s.name).Output()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("site %s removed, containers left: %q %v", s.name, out, err)
		}
		eventually(t, v4, s.host, 404, "")
	}
}
