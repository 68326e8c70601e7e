package compose

import (
	"fmt"
	"net/netip"
)

// A host with a routed IPv6 prefix (ipv6.prefix in darse.yml) gives its
// front networks global /64s carved from it instead of the ULA: shard k
// takes the k-th /64, so every site's web and SSH containers have an
// address the Internet routes to (the firewall watcher still lets in only
// what they expose).

// MaxPrefixBits is the longest routed prefix with a /64 for every shard
// (0..MaxShard: 65 of them, which a /57's 128 hold and a /58's 64 do not).
const MaxPrefixBits = 57

// globalUnicast is IANA's global unicast space: what a provider routes.
var globalUnicast = netip.MustParsePrefix("2000::/3")

// CheckRoutedPrefix says why p cannot be the host's routed prefix, or nil:
// it must be an IPv6 global unicast network (2000::/3; the documentation
// range 2001:db8::/32 lies there, for tests), written as its first address,
// no longer than MaxPrefixBits. ULA, link-local, multicast and IPv4 are
// refused: their addresses are not routed to the host from outside.
func CheckRoutedPrefix(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case !p.IsValid() || !a.Is6() || a.Is4In6() || a.Zone() != "":
		return fmt.Errorf("must be an IPv6 prefix such as 2001:db8:42::/48")
	case a.IsLinkLocalUnicast():
		return fmt.Errorf("must be a global prefix, not link-local (fe80::/10)")
	case a.IsMulticast():
		return fmt.Errorf("must be a global prefix, not multicast (ff00::/8)")
	case a.IsPrivate():
		return fmt.Errorf("must be a global prefix, not a unique local one (fc00::/7): darse already gives front networks its own ULA")
	case !globalUnicast.Contains(a) || p.Bits() < globalUnicast.Bits():
		return fmt.Errorf("must be a global unicast prefix (within 2000::/3)")
	case p.Masked() != p:
		return fmt.Errorf("must be written as its first address (%s)", p.Masked())
	case p.Bits() > MaxPrefixBits:
		return fmt.Errorf("must be /%d or shorter: each of the %d front shards takes a /64 of it", MaxPrefixBits, MaxShard+1)
	}
	return nil
}

// RoutedSubnet6 is shard k's /64 in the routed prefix p (checked by
// CheckRoutedPrefix; the caller checks k).
func RoutedSubnet6(p netip.Prefix, k int) netip.Prefix {
	b := p.Addr().As16()
	// Bits p.Bits()..63 number the /64s: k (at most MaxShard, below
	// 2^(64-MaxPrefixBits)) goes in the low end of the first 64 bits.
	v := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	v |= uint64(k)
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// FrontShardIn is shard k's network (FrontShard) on a host whose routed
// prefix is p: the same network with RoutedSubnet6(p, k) for its IPv6
// subnet. An invalid p (no ipv6.prefix) is FrontShard(k) and its ULA.
func FrontShardIn(k int, p netip.Prefix) (Network, error) {
	n, err := FrontShard(k)
	if err != nil || !p.IsValid() {
		return n, err
	}
	if err := CheckRoutedPrefix(p); err != nil {
		return Network{}, fmt.Errorf("ipv6 prefix %s: %w", p, err)
	}
	// FrontShard returns a fresh slice: changing it is safe.
	n.Subnets[1] = RoutedSubnet6(p, k).String()
	return n, nil
}
