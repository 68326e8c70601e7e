package firewall

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/darse/darse/internal/firewall/firewalltest"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/nft"
	"github.com/darse/darse/internal/testenv"
)

func needNetns(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
	if m := firewalltest.MissingTool(); m != "" {
		if testenv.Required() {
			t.Fatalf("integration test cannot run: needs %s (DARSE_INTEGRATION=require)", m)
		}
		t.Skip("integration test: needs " + m)
	}
}

// Every golden ruleset loads in a real kernel, and the netlink batch the
// watcher sends makes the same ruleset as nft -f of the rendered text (what
// `darse fw render` prints).
func TestGoldenRulesetsInKernel(t *testing.T) {
	needNetns(t)
	ctx := context.Background()
	for _, dir := range cases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			s, o := loadCase(t, dir)
			r := Build(s, o)
			viaNetlink, viaText := firewalltest.Scratch(t), firewalltest.Scratch(t)
			if err := nft.New(nft.WithNetNS(viaNetlink.FD())).Apply(ctx, r.Table); err != nil {
				t.Fatal(err)
			}
			if _, err := viaText.Exec(r.Text(), "nft", "-f", "-"); err != nil {
				t.Fatal(err)
			}
			got, err := viaNetlink.List(r.Table.Name)
			if err != nil {
				t.Fatal(err)
			}
			want, err := viaText.List(r.Table.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("netlink and nft -f differ:\n%s", diff(want, got))
			}
		})
	}
}

// The "drop" input policy, in a namespace standing for the host: allowed
// ports and replies get in, anything else is dropped (not refused), over
// IPv4 and IPv6.
func TestInputDropPolicy(t *testing.T) {
	needNetns(t)
	host, client := firewalltest.Scratch(t), firewalltest.Scratch(t)
	link := "dfwi" + host.Name[len(host.Name)-4:]
	if out, err := exec.Command("ip", "link", "add", link, "netns", host.Name, "type", "veth", "peer", "name", link+"c", "netns", client.Name).CombinedOutput(); err != nil {
		t.Fatalf("veth: %v: %s", err, out)
	}
	setup := []struct {
		ns   *firewalltest.Netns
		args []string
	}{
		{host, []string{"ip", "addr", "add", "198.18.251.1/30", "dev", link}},
		{host, []string{"ip", "-6", "addr", "add", "fd4d:6172:7365:fb::1/64", "dev", link, "nodad"}},
		{host, []string{"ip", "link", "set", link, "up"}},
		{client, []string{"ip", "addr", "add", "198.18.251.2/30", "dev", link + "c"}},
		{client, []string{"ip", "-6", "addr", "add", "fd4d:6172:7365:fb::2/64", "dev", link + "c", "nodad"}},
		{client, []string{"ip", "link", "set", link + "c", "up"}},
	}
	for _, s := range setup {
		if _, err := s.ns.Exec("", s.args...); err != nil {
			t.Fatal(err)
		}
	}
	r := Build(State{}, Options{Input: InputDrop, InputAllow: []Port{{labels.TCP, 22}}})
	if err := nft.New(nft.WithNetNS(host.FD())).Apply(context.Background(), r.Table); err != nil {
		t.Fatal(err)
	}
	listen := func(ns *firewalltest.Netns, addr string) {
		var l net.Listener
		if err := ns.Do(func() (err error) { l, err = net.Listen("tcp", addr); return err }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("hi\n"))
				c.Close()
			}
		}()
	}
	dial := func(ns *firewalltest.Netns, addr string) error {
		return ns.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	listen(host, ":22")
	listen(host, ":8080")
	listen(client, ":9000")
	for _, h := range []string{"198.18.251.1", "[fd4d:6172:7365:fb::1]"} {
		if err := dial(client, h+":22"); err != nil {
			t.Errorf("allowed port %s:22: %v", h, err)
		}
		err := dial(client, h+":8080")
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Errorf("port %s:8080 not allowed: got %v, want a timeout (dropped)", h, err)
		}
	}
	for _, c := range []string{"198.18.251.2:9000", "[fd4d:6172:7365:fb::2]:9000"} {
		if err := dial(host, c); err != nil {
			t.Errorf("the host's own connection to %s (replies come back in): %v", c, err)
		}
	}
}
