package platform

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/site"
)

// IPv6 is darse.yml's ipv6 section.
type IPv6 struct {
	// Prefix is an IPv6 prefix the host's uplink routes to it (a /48 or
	// /56 from the provider): front shard k takes its k-th /64 instead
	// of the ULA, so each site's containers have a global address,
	// unmasqueraded, still reachable only on what they expose.
	Prefix string `yaml:"prefix"`
}

// validate checks the section; a nil section is no prefix.
func (v *IPv6) validate() error {
	if v == nil {
		return nil
	}
	p, err := netip.ParsePrefix(v.Prefix)
	if err != nil {
		return &site.FieldError{Field: "ipv6.prefix", Value: v.Prefix, Rule: "must be an IPv6 prefix in CIDR form, such as 2001:db8:42::/48"}
	}
	if err := compose.CheckRoutedPrefix(p); err != nil {
		return &site.FieldError{Field: "ipv6.prefix", Value: v.Prefix, Rule: err.Error()}
	}
	return nil
}

// RoutedPrefix is ipv6.prefix, parsed (validated when loaded); invalid
// when the section is absent: the front networks keep the ULA.
func (c Config) RoutedPrefix() netip.Prefix {
	if c.IPv6 == nil {
		return netip.Prefix{}
	}
	p, _ := netip.ParsePrefix(c.IPv6.Prefix)
	return p
}

// frontNetwork is shard 0's network as this configuration defines it.
func (c Config) frontNetwork() (compose.Network, error) {
	return compose.FrontShardIn(0, c.RoutedPrefix())
}

// staleFront says why the existing front network's subnets are not the
// configuration's, or "" when they are: a network's subnets cannot change
// while containers use it, so a front network made before ipv6.prefix was
// set (or changed) keeps its ULA (or old prefix) until it is recreated.
func staleFront(want compose.Network, have []string) string {
	v6 := func(subnets []string) string {
		for _, s := range subnets {
			if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is6() {
				return p.String()
			}
		}
		return ""
	}
	w, h := v6(want.Subnets), v6(have)
	if w == h || slices.Contains(have, w) {
		return ""
	}
	if h == "" {
		h = "none"
	}
	if w == "" {
		w = "none"
	}
	return fmt.Sprintf("front network %s has IPv6 subnet %s, not %s: it keeps it, and its sites their addresses, until it is recreated (README, A global IPv6 address per site)", want.Name, h, w)
}

// subnetReader is the one engine call checkFront makes.
type subnetReader interface {
	NetworkSubnets(ctx context.Context, name string) ([]string, error)
}

// checkFront warns when shard 0's existing network predates ipv6.prefix.
func checkFront(ctx context.Context, e subnetReader, log *slog.Logger, want compose.Network) error {
	have, err := e.NetworkSubnets(ctx, want.Name)
	if err != nil {
		return fmt.Errorf("front network: %w", err)
	}
	if why := staleFront(want, have); why != "" && log != nil {
		log.Warn(why, "network", want.Name)
	}
	return nil
}
