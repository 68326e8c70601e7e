package platform

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/darse/darse/internal/compose"
)

// ipv6.prefix: absent, the front networks keep the ULA; a global prefix
// reaches hosting and shard 0's network; anything else is refused naming
// the key and the rule.
func TestIPv6Prefix(t *testing.T) {
	cfg, err := Load(t.TempDir())
	if err != nil || cfg.RoutedPrefix().IsValid() || cfg.Hosting("/srv").FrontPrefix6.IsValid() {
		t.Fatalf("default: %+v, %v; want no prefix", cfg.IPv6, err)
	}
	if n, err := cfg.frontNetwork(); err != nil || n.Subnets[1] != compose.FrontSubnet6 {
		t.Fatalf("default front network: %+v, %v", n, err)
	}
	cfg, err = Load(writeConfig(t, "ipv6:\n  prefix: 2001:db8:42::/48\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Hosting("/srv").FrontPrefix6.String(); got != "2001:db8:42::/48" {
		t.Errorf("hosting prefix %q", got)
	}
	if n, err := cfg.frontNetwork(); err != nil || n.Subnets[0] != compose.FrontSubnet || n.Subnets[1] != "2001:db8:42::/64" {
		t.Errorf("front network with a prefix: %+v, %v", n, err)
	}
	for body, rule := range map[string]string{
		"ipv6: {prefix: 'fd00:42::/48'}\n":        "not a unique local one",
		"ipv6: {prefix: 'fe80::/64'}\n":           "not link-local",
		"ipv6: {prefix: 'ff00::/8'}\n":            "not multicast",
		"ipv6: {prefix: '2001:db8:42::/60'}\n":    "/57 or shorter",
		"ipv6: {prefix: '2001:db8:42::1/48'}\n":   "first address",
		"ipv6: {prefix: '192.0.2.0/24'}\n":        "must be an IPv6 prefix",
		"ipv6: {prefix: '2001:db8:42::'}\n":       "CIDR form",
		"ipv6: {}\n":                              "CIDR form",
		"ipv6: {prefix: '2001:db8::/48', x: 1}\n": "field x not found",
	} {
		_, err := Load(writeConfig(t, body))
		if err == nil || !strings.Contains(err.Error(), rule) || (!strings.Contains(err.Error(), "ipv6.prefix") && rule != "field x not found") {
			t.Errorf("%q: err = %v, want ipv6.prefix and %q", body, err, rule)
		}
	}
}

// fakeSubnets answers NetworkSubnets with its subnets.
type fakeSubnets []string

func (f fakeSubnets) NetworkSubnets(context.Context, string) ([]string, error) { return f, nil }

// A front network made before the prefix keeps its ULA: platform up says
// so (a warning naming the network and both subnets), and says nothing
// when the network already has the prefix's /64 or there is no prefix.
func TestStaleFrontWarns(t *testing.T) {
	withPrefix := Config{IPv6: &IPv6{Prefix: "2001:db8:42::/48"}}
	for _, c := range []struct {
		cfg  Config
		have []string
		warn bool
	}{
		{withPrefix, []string{compose.FrontSubnet, compose.FrontSubnet6}, true},
		{withPrefix, []string{compose.FrontSubnet, "2001:db8:42::/64"}, false},
		{withPrefix, []string{compose.FrontSubnet, "2001:db8:43::/64"}, true},
		{Config{}, []string{compose.FrontSubnet, compose.FrontSubnet6}, false},
		{Config{}, []string{compose.FrontSubnet, "2001:db8:42::/64"}, true},
	} {
		want, err := c.cfg.frontNetwork()
		if err != nil {
			t.Fatal(err)
		}
		why := staleFront(want, c.have)
		if (why != "") != c.warn || c.warn && (!strings.Contains(why, "front network front") || !strings.Contains(why, want.Subnets[1])) {
			t.Errorf("prefix %v, have %v: %q (want a warning: %v)", c.cfg.IPv6, c.have, why, c.warn)
		}
	}
	var logs bytes.Buffer
	want, _ := withPrefix.frontNetwork()
	have := fakeSubnets{compose.FrontSubnet, compose.FrontSubnet6}
	if err := checkFront(context.Background(), have, slog.New(slog.NewTextHandler(&logs, nil)), want); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "fd64:6172:7365::/64") {
		t.Errorf("no warning logged: %s", logs.String())
	}
}
