package firewall

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/nft"
)

// Tenant egress: what a hosted site's containers may open connections to.
//
// Traffic from a container network is keyed by its bridge (an ifname set,
// so no container can slip through before the watcher has seen it) and
// exempted by source address for trusted containers: every container that
// is not a hosted site's (no darse.site label), platform containers
// included. The rest, tenants, may open from a container network:
//
//   - to the host itself (input hook, any of its addresses, IPv4 and
//     IPv6): ICMP, and only the TenantHostAllow ports (the front door:
//     Traefik on the host's network, so that sites reach one another, and
//     themselves, by their public names) and host-network exposures;
//     nothing on loopback addresses, nothing else (SSH, the panel,
//     Traefik's API, a TCP Docker engine...);
//   - through the host (forward hook): anywhere except link-local ranges
//     (metadata services) and EgressDeny.
//
// Exposures reached through a host address are translated before either
// hook and then follow the inbound rules, as they do from the Internet:
// a tenant reaches another site's forward (or its own) that way, and
// never a container's internal address.

// DefaultTenantHostAllow is the host ports tenants may reach: the front
// door (HTTP, HTTPS, HTTP/3).
var DefaultTenantHostAllow = []Port{{labels.TCP, 80}, {labels.TCP, 443}, {labels.UDP, 443}}

// LinkLocal is always denied to tenants: cloud metadata services
// (169.254.169.254) and the host's own link-local addresses.
var LinkLocal = []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10")}

// Names in the table.
const (
	setBridges      = "bridges"
	setIsolated     = "isolated" // isolation-only bridges (build.go)
	setTrusted4     = "trusted4"
	setTrusted6     = "trusted6"
	chainHostInput  = "host_input"
	chainTenantHost = "tenant_host"
	chainEgress     = "tenant_egress"
)

// prioHostInput runs before the input policy chain: an accept there does
// not undo a drop here, but this order drops tenant traffic first.
const prioHostInput = prioFilter - 10

// IsTenant reports whether a container with these labels belongs to a
// hosted site.
func IsTenant(l map[string]string) bool { return l[labels.SiteLabel] != "" }

// egress is the tenant egress part of the table.
type egress struct {
	sets   []*nft.Set
	chains []*nft.Chain
	// forward is the forward chain's rule sending new connections from
	// container networks through chainEgress.
	forward nft.Rule
}

// egressRules builds the sets and chains above. hostInput holds the
// host-network exposures, open to tenants as to anyone.
func egressRules(o Options, containers []*Container, networks []Network, hostInput []nft.Rule) egress {
	bridges := &nft.Set{Name: setBridges, Key: []nft.Datatype{nft.IfName}}
	seen := map[string]bool{}
	for _, n := range networks {
		// An isolation-only network belongs to another watcher.
		if n.Bridge == "" || n.IsolationOnly || seen[n.Bridge] {
			continue
		}
		seen[n.Bridge] = true
		bridges.Elements = append(bridges.Elements, nft.Element{Key: []nft.Value{nft.Interface(n.Bridge)}})
	}
	slices.SortFunc(bridges.Elements, func(a, b nft.Element) int {
		return cmp.Compare(a.Key[0].(nft.Interface), b.Key[0].(nft.Interface))
	})
	trusted := map[nft.Family]map[netip.Addr]bool{nft.IPv4: {}, nft.IPv6: {}}
	for _, c := range containers {
		if IsTenant(c.Labels) {
			continue
		}
		for _, ep := range c.Endpoints {
			// Its link-local address too: what it reaches the host's
			// link-local addresses from.
			for _, a := range []netip.Addr{ep.IPv4, ep.IPv6, ep.LinkLocal()} {
				if a.IsValid() {
					a = a.Unmap()
					trusted[nft.FamilyOf(a)][a] = true
				}
			}
		}
	}
	t4 := addrSet(setTrusted4, nft.IPv4, trusted[nft.IPv4])
	t6 := addrSet(setTrusted6, nft.IPv6, trusted[nft.IPv6])

	exempt := []nft.Rule{
		{Match: []nft.Match{nft.SAddrIn{Family: nft.IPv4, Set: setTrusted4}}, Action: nft.Return},
		{Match: []nft.Match{nft.SAddrIn{Family: nft.IPv6, Set: setTrusted6}}, Action: nft.Return},
	}
	host := []nft.Rule{{Match: []nft.Match{nft.CtEstablished | nft.CtRelated}, Action: nft.Return}}
	host = append(host, exempt...)
	host = append(host,
		nft.Rule{Match: []nft.Match{nft.DAddr{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}, Action: nft.Drop, Comment: "loopback"},
		nft.Rule{Match: []nft.Match{nft.DAddr{Prefix: netip.MustParsePrefix("::1/128")}}, Action: nft.Drop, Comment: "loopback"},
		// Neighbour discovery needs ICMPv6; pings are harmless.
		nft.Rule{Match: []nft.Match{nft.L4Proto(nft.ICMP)}, Action: nft.Return},
		nft.Rule{Match: []nft.Match{nft.L4Proto(nft.ICMPv6)}, Action: nft.Return},
	)
	for _, p := range o.TenantHostAllow {
		host = append(host, nft.Rule{Match: []nft.Match{nft.DPort{Proto: nftProto(p.Protocol), Port: uint16(p.Number)}}, Action: nft.Return})
	}
	for _, r := range hostInput {
		r.Action = nft.Return
		host = append(host, r)
	}
	host = append(host, nft.Rule{Action: nft.Drop})

	// Forwards (exposures) are for the Internet: a tenant reaches other
	// sites through the front door. Docker's isolation of bridges already
	// drops this over IPv4; over IPv6 only this rule does.
	out := append(slices.Clone(exempt), nft.Rule{Match: []nft.Match{nft.OIFNameIn{Set: setBridges}, nft.CtDNAT{}}, Action: nft.Drop, Comment: "forward from a container network"})
	for _, p := range LinkLocal {
		out = append(out, nft.Rule{Match: []nft.Match{nft.DAddr{Prefix: p}}, Action: nft.Drop, Comment: "link-local"})
	}
	for _, p := range o.EgressDeny {
		out = append(out, nft.Rule{Match: []nft.Match{nft.DAddr{Prefix: p.Masked()}}, Action: nft.Drop, Comment: "egress-deny"})
	}
	return egress{
		sets: []*nft.Set{bridges, t4, t6},
		chains: []*nft.Chain{
			// New connections from a container network to the host itself,
			// whatever --input says.
			{Name: chainHostInput, Type: nft.Filter, Hook: nft.Input, Priority: prioHostInput, Policy: nft.Accept, Rules: []nft.Rule{
				{Match: []nft.Match{nft.IIFNameIn{Set: setBridges}}, Action: nft.Jump{Chain: chainTenantHost}},
			}},
			{Name: chainTenantHost, Rules: host},
			{Name: chainEgress, Rules: out},
		},
		forward: nft.Rule{Match: []nft.Match{nft.IIFNameIn{Set: setBridges}}, Action: nft.Jump{Chain: chainEgress}},
	}
}

func addrSet(name string, f nft.Family, addrs map[netip.Addr]bool) *nft.Set {
	s := &nft.Set{Name: name, Key: []nft.Datatype{f.AddrType()}}
	for _, a := range slices.SortedFunc(maps.Keys(addrs), netip.Addr.Compare) {
		s.Elements = append(s.Elements, nft.Element{Key: []nft.Value{nft.Address(a)}})
	}
	return s
}
