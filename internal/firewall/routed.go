package firewall

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/darse/darse/internal/nft"
)

// Routed IPv6: a network whose IPv6 subnet is global (the front shards on
// a host with ipv6.prefix) gives its containers addresses the Internet
// routes to the host, with no translation on the way. The same rule holds
// there as for the host's addresses: a new connection from outside reaches
// a container only on a port it exposes — its container port, at its own
// address ("direct"). Everything else is dropped, and so is any direct
// connection from a container network: tenants reach each other through
// the front door, never by address (as with their private addresses).
//
// A watcher limited to a label does not own the shared front networks,
// but a global address must never be left open for that: it sends new
// connections to the routed addresses of the containers it watches there
// through the same inbound chain.

// routed reports whether p is a global IPv6 subnet: not the ULA darse
// masquerades, not link-local or multicast.
func routed(p netip.Prefix) bool {
	a := p.Addr()
	return a.Is6() && !a.Is4In6() && !ula.Contains(a) && !a.IsLinkLocalUnicast() && !a.IsMulticast() && !a.IsUnspecified() && !a.IsLoopback()
}

// routedAddr reports whether a lies in a routed subnet of one of networks.
func routedAddr(networks []Network, a netip.Addr) bool {
	for _, n := range networks {
		for _, p := range n.Subnets {
			if routed(p) && p.Masked().Contains(a) {
				return true
			}
		}
	}
	return false
}

// direct records that to6:port answers from outside at the container's
// own routed address, when the exposure is open on every IPv6 address of
// the host (not one address, not IPv4 only) and to6 is routed.
func (l *lookups) direct(networks []Network, cl claim, proto nft.Proto, to6 netip.Addr) (netip.AddrPort, bool) {
	if on, all := cl.family(nft.IPv6); !on || !all || !to6.IsValid() || !routedAddr(networks, to6) {
		return netip.AddrPort{}, false
	}
	ap := netip.AddrPortFrom(to6, uint16(cl.port))
	if l.directs[proto] == nil {
		l.directs[proto] = map[netip.AddrPort]bool{}
	}
	l.directs[proto][ap] = true
	return ap, true
}

// directSets returns the direct sets and the inbound rules that first
// drop what comes from a container network, then accept them. Nothing
// when no exposure is direct.
func (l *lookups) directSets(networks []Network) (sets []*nft.Set, rules []nft.Rule) {
	for _, p := range []nft.Proto{nft.TCP, nft.UDP} {
		ds := l.directs[p]
		if len(ds) == 0 {
			continue
		}
		k := lookupKey{nft.IPv6, p}
		set := &nft.Set{Name: k.name("direct"), Key: []nft.Datatype{nft.IPv6.AddrType(), nft.InetService}}
		for _, d := range slices.SortedFunc(maps.Keys(ds), netip.AddrPort.Compare) {
			set.Elements = append(set.Elements, nft.Element{Key: []nft.Value{nft.Address(d.Addr()), nft.Port(d.Port())}})
		}
		sets = append(sets, set)
		rules = append(rules, nft.Rule{Match: []nft.Match{nft.DAddrDPortIn{Family: nft.IPv6, Proto: p, Set: set.Name}}, Action: nft.Accept, Comment: "direct"})
	}
	if len(rules) == 0 {
		return nil, nil
	}
	guard := []nft.Rule{{Match: []nft.Match{nft.IIFNameIn{Set: setBridges}}, Action: nft.Drop, Comment: "not direct from a container network"}}
	for _, n := range sortedNetworks(networks) {
		if n.IsolationOnly && n.Bridge != "" {
			guard = append(guard, nft.Rule{Match: []nft.Match{nft.IIFName{Name: n.Bridge}}, Action: nft.Drop, Comment: "not direct from " + n.Name})
		}
	}
	return sets, append(guard, rules...)
}

// watchedRouted sends new connections to the routed addresses of the
// watched containers on isolation-only networks through "inbound".
func watchedRouted(containers []*Container, networks []Network) []nft.Rule {
	bridge := map[string]string{}
	for _, n := range networks {
		if n.IsolationOnly && n.Bridge != "" {
			bridge[n.Name] = n.Bridge
		}
	}
	type dest struct {
		network, bridge string
		addr            netip.Addr
	}
	seen := map[dest]bool{}
	for _, c := range containers {
		for _, ep := range c.Endpoints {
			a := ep.IPv6.Unmap()
			if br, ok := bridge[ep.Network]; ok && a.IsValid() && routedAddr(networks, a) {
				seen[dest{ep.Network, br, a}] = true
			}
		}
	}
	dests := slices.SortedFunc(maps.Keys(seen), func(a, b dest) int {
		return cmp.Or(cmp.Compare(a.network, b.network), a.addr.Compare(b.addr))
	})
	var out []nft.Rule
	for _, d := range dests {
		out = append(out, nft.Rule{Match: []nft.Match{nft.OIFName{Name: d.bridge}, nft.DAddr{Prefix: netip.PrefixFrom(d.addr, 128)}},
			Action: nft.Jump{Chain: "inbound"}, Comment: d.network})
	}
	return out
}

func sortedNetworks(networks []Network) []Network {
	nets := slices.Clone(networks)
	slices.SortFunc(nets, func(a, b Network) int { return cmp.Compare(a.Name, b.Name) })
	return nets
}
