package main

// End-to-end test of ipv6.prefix: a documentation prefix of this run's
// own, routed to the host from an "upstream" namespace, gives a site's
// containers global addresses on their front shard. From upstream, the
// site's SFTP port answers at its own address, its web port only once it
// is forwarded; Traefik serves it over IPv6; the site's outgoing IPv6 is
// not masqueraded; another tenant on the same bridge reaches none of it.

import (
	"context"
	"encoding/json"
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
	"github.com/darse/darse/internal/firewall/firewalltest"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// The front_addresses of `site status --json`, and the text line, from
// the status alone (no engine).
func TestSiteStatusFrontAddresses(t *testing.T) {
	st := hosting.Status{Name: "blog", Front: "front-1", Services: []hosting.ServiceStatus{
		{Service: "web", Addresses: []reconcile.Address{{Network: "blog_default", IPv4: "172.30.0.2"}, {Network: "front-1", IPv4: "172.25.0.2", IPv6: "2001:db8:42:1::2"}}},
		{Service: "ssh", Addresses: []reconcile.Address{{Network: "front-1", IPv4: "172.25.0.3"}}},
		{Service: "db", Addresses: []reconcile.Address{{Network: "blog_default", IPv4: "172.30.0.3"}}},
	}}
	fa := frontAddresses(st)
	if len(fa) != 2 || fa[0] != (frontAddress{"web", "172.25.0.2", "2001:db8:42:1::2"}) || fa[1] != (frontAddress{"ssh", "172.25.0.3", ""}) {
		t.Fatalf("front addresses %+v", fa)
	}
	if got := frontText(fa); got != "web 172.25.0.2 2001:db8:42:1::2, ssh 172.25.0.3" {
		t.Errorf("front text %q", got)
	}
	b, err := json.Marshal(siteStatusJSON{siteJSON(st), fa})
	if err != nil || !strings.Contains(string(b), `"front":"front-1"`) ||
		!strings.Contains(string(b), `"front_addresses":[{"service":"web","ipv4":"172.25.0.2","ipv6":"2001:db8:42:1::2"}`) {
		t.Errorf("status JSON %s %v", b, err)
	}
	st.Front = ""
	if fa := frontAddresses(st); len(fa) != 0 {
		t.Errorf("no front network: %+v", fa)
	}
}

// upstreamRoute makes the client namespace the host's uplink for prefix:
// the prefix is routed to the host through the veth pair.
func upstreamRoute(t *testing.T, c *firewalltest.Client, prefix netip.Prefix) {
	t.Helper()
	if _, err := c.Exec("", "ip", "-6", "route", "add", prefix.String(), "via", c.Host6.String()); err != nil {
		t.Fatal(err)
	}
}

// dialFrom opens (and closes) a TCP connection from the client namespace.
func dialFrom(c *firewalltest.Client, to netip.AddrPort, timeout time.Duration) error {
	return c.Do(func() error {
		conn, err := net.DialTimeout("tcp", to.String(), timeout)
		if err == nil {
			conn.Close()
		}
		return err
	})
}

// fillShards stores placeholder sites filling shards 0..k-1 (capacity
// each): the next site created lands on shard k, a shard of this run's
// own (the test engine's front networks are shared with other tests).
func fillShards(t *testing.T, srv string, k, capacity int) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(srv, "conf", "darse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range k * capacity {
		name := fmt.Sprintf("placeholder%d-%d", i, os.Getpid())
		if err := st.CreateSite(ctx, site.Spec{Name: name, Template: "static", Owner: "placeholder", Domain: name + ".invalid"}); err != nil {
			t.Fatal(err)
		}
		if got, err := st.AssignShard(ctx, name, capacity, compose.MaxShard); err != nil || got != i/capacity {
			t.Fatalf("placeholder %s on shard %d, %v; want %d", name, got, err, i/capacity)
		}
	}
}

// siteFront is `site status --json`'s front network and addresses.
type siteFront struct {
	Front          string         `json:"front"`
	FrontAddresses []frontAddress `json:"front_addresses"`
}

func (f siteFront) addr(t *testing.T, service string) (v4, v6 netip.Addr) {
	t.Helper()
	for _, a := range f.FrontAddresses {
		if a.Service == service {
			v4, err4 := netip.ParseAddr(a.IPv4)
			v6, err6 := netip.ParseAddr(a.IPv6)
			if err4 != nil || err6 != nil {
				t.Fatalf("service %s on %s: addresses %+v", service, f.Front, a)
			}
			return v4, v6
		}
	}
	t.Fatalf("no %s address on %s: %+v", service, f.Front, f.FrontAddresses)
	return
}

func TestIPv6PrefixGlobalAddresses(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/sftp:bookworm")
	if m := firewalltest.MissingTool(); m != "" {
		t.Fatalf("needs %s", m)
	}
	pid := os.Getpid()
	prefix := netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", pid&0xffff))
	// Shards 1 and 2 are TestFrontShards'; 32-63 are far from what other
	// tests and benchmarks fill.
	k := 32 + pid%32
	shard := compose.FrontShardName(k)
	subnet := compose.RoutedSubnet6(prefix, k)
	// A shard network left by an earlier run (another prefix) would be
	// kept as it is: remove it first, and at the end (after the sites,
	// whose cleanups run before this one's).
	exec.Command("docker", "network", "rm", shard).Run()
	t.Cleanup(func() { exec.Command("docker", "network", "rm", shard).Run() })

	f := newFront(t, fmt.Sprintf("front:\n  shard_sites: 2\nipv6:\n  prefix: %s\n", prefix))
	// Shard 0 (shared, made before with the ULA) keeps it: platform up says so.
	if _, errs, code := f.run("platform", "up"); code != 0 || !strings.Contains(errs, "front network front has IPv6 subnet fd64:6172:7365::/64, not "+compose.RoutedSubnet6(prefix, 0).String()+":") {
		t.Errorf("platform up with shard 0 on the ULA: exit %d, want a warning naming both subnets:\n%s", code, errs)
	}
	fillShards(t, f.srv, k, 2)
	a, b := siteName("v6a"), siteName("v6b")
	for _, n := range []string{a, b} {
		f.cleanup(n)
		f.ok("site", "create", n, "--template", "static")
	}
	page := "<p>global " + a + "</p>\n"
	if err := os.WriteFile(filepath.Join(f.srv, "users", a, "data", "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	key := newClientKey(t, t.TempDir(), "dave")
	f.ok("key", "add", a, key.file+".pub")

	var st siteFront
	if err := json.Unmarshal([]byte(f.ok("site", "status", a, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Front != shard {
		t.Fatalf("site %s on %q, want %s", a, st.Front, shard)
	}
	web4, web6 := st.addr(t, "web")
	_, ssh6 := st.addr(t, "ssh")
	n, _ := compose.FrontShard(k)
	for _, ad := range []netip.Addr{web6, ssh6} {
		if !subnet.Contains(ad) {
			t.Errorf("address %s outside %s's /64 of the prefix, %s", ad, shard, subnet)
		}
	}
	if !netip.MustParsePrefix(n.Subnets[0]).Contains(web4) {
		t.Errorf("IPv4 %s outside %s", web4, n.Subnets[0])
	}
	if text := f.ok("site", "status", a); !strings.Contains(text, "front:    "+shard+": ") || !strings.Contains(text, "web "+web4.String()+" "+web6.String()) ||
		!strings.Contains(text, "ssh ") {
		t.Errorf("site status does not show the front addresses:\n%s", text)
	}
	// B, the other tenant, shares the bridge.
	var other siteFront
	if err := json.Unmarshal([]byte(f.ok("site", "status", b, "--json")), &other); err != nil || other.Front != shard {
		t.Fatalf("site %s: %+v %v, want it on %s", b, other, err, shard)
	}

	// The watcher: limited to site A's containers, in a table of its own.
	testWatcher(t, fmt.Sprintf("darse-v6%d", pid), "darse.site="+a, "--debounce-min", "5ms", "--debounce-max", "50ms")
	up := firewalltest.NewTestClient(t)
	upstreamRoute(t, up, prefix)

	// Exposed: the SFTP port, at the ssh container's own global address.
	banner, _, err := up.WaitTCP(netip.AddrPortFrom(ssh6, 22), 10*time.Second)
	if err != nil || !strings.HasPrefix(banner, "SSH-2.0-") {
		t.Fatalf("sftp at [%s]:22 from upstream: %q %v", ssh6, banner, err)
	}
	// Not exposed: the web container's own port, which answers the host
	// (Traefik's path) but not the outside.
	answers(t, web6.String())
	webDirect := netip.AddrPortFrom(web6, 8080)
	if err := dialFrom(up, webDirect, 2*time.Second); err == nil {
		t.Errorf("unexposed %s answers from upstream", webDirect)
	}
	// Traefik serves the site over IPv6, to upstream.
	front6 := netip.AddrPortFrom(up.Host6, uint16(f.http))
	var status, body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if status, body, err = httpFrom(up, front6, a+"."+f.domain); err == nil && strings.Contains(status, " 200 ") {
			break
		}
	}
	if err != nil || !strings.Contains(status, " 200 ") || !strings.HasSuffix(body, page) {
		t.Fatalf("through Traefik at %s: %q %q %v", front6, status, body, err)
	}
	// Outgoing IPv6 leaves with the site's own address (no masquerade).
	echo := netip.AddrPortFrom(up.Addr6, 7007)
	up.ServeTCP(t, echo)
	out, err := exec.Command("docker", "exec", a+"_web_1", "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && timeout 3 head -n1 <&3", echo.Addr(), echo.Port())).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != web6.String() {
		t.Errorf("upstream saw the site's connection from %q (%v), want %s", out, err, web6)
	}

	// Forwarded, the web port answers at the container's address too (the
	// forward recreates the web container: its address may change).
	f.ok("forward", "add", a, "8080")
	if err := json.Unmarshal([]byte(f.ok("site", "status", a, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	web4, web6 = st.addr(t, "web")
	if !subnet.Contains(web6) {
		t.Errorf("forwarded web container's address %s outside %s", web6, subnet)
	}
	webDirect = netip.AddrPortFrom(web6, 8080)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if status, body, err = httpFrom(up, webDirect, a+"."+f.domain); err == nil && strings.Contains(status, " 200 ") {
			break
		}
	}
	if err != nil || !strings.Contains(status, " 200 ") || !strings.HasSuffix(body, page) {
		t.Fatalf("forwarded %s from upstream: %q %q %v", webDirect, status, body, err)
	}

	// Another tenant, on the same bridge, reaches none of it: not the
	// exposed ports by address, not the unexposed one, either family.
	for _, target := range []string{
		ssh6.String() + "/22", web6.String() + "/8080", web4.String() + "/8080",
	} {
		unreachable(t, b, target)
	}
}
