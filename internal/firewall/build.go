package firewall

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/nft"
)

// Options shape the ruleset beyond what the containers declare.
type Options struct {
	// Table is the name of darse's inet table; "darse" by default.
	Table string
	// Srv is the platform's root folder (/srv): containers of compose
	// projects under Srv/core and Srv/apps may be platform containers.
	Srv string
	// Input is the host's input policy: InputAccept (default) leaves the
	// host's own services alone; InputDrop drops every new inbound
	// connection to the host except InputAllow, ICMP, loopback and
	// host-network exposures.
	Input InputPolicy
	// InputAllow lists the host ports left open with InputDrop
	// (DefaultInputAllow when nil).
	InputAllow []Port
	// DockerForwardDrop says Docker's FORWARD chain drops forwarded IPv4
	// by default (nft.Conn.ForwardDrops): then an IPv4 exposure reaches
	// its container only if Docker publishes the container port too, and
	// Build says so for each exposure where it does not.
	DockerForwardDrop bool
	// TenantHostAllow lists the host ports tenant containers may open
	// connections to (DefaultTenantHostAllow when nil; empty for none).
	TenantHostAllow []Port
	// EgressDeny lists destinations tenant containers may not reach
	// through the host (management networks), besides LinkLocal.
	EgressDeny []netip.Prefix
}

// InputPolicy is the host's policy for inbound connections to itself.
type InputPolicy string

// The input policies.
const (
	InputAccept InputPolicy = "accept"
	InputDrop   InputPolicy = "drop"
)

// Port is a protocol and port number, written "tcp/22".
type Port struct {
	Protocol labels.Protocol
	Number   int
}

func (p Port) String() string { return fmt.Sprintf("%s/%d", p.Protocol, p.Number) }

// ParsePort reads "tcp/22", "udp/443" or a bare "22" (tcp).
func ParsePort(s string) (Port, error) {
	proto, num, ok := strings.Cut(s, "/")
	if !ok {
		proto, num = "tcp", s
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp") {
		return Port{}, fmt.Errorf("port %q: want tcp/N or udp/N with N in 1-65535", s)
	}
	return Port{Protocol: labels.Protocol(proto), Number: n}, nil
}

// ParsePorts reads a comma-separated list of ParsePort's forms; "" is
// none (an empty, non-nil list).
func ParsePorts(s string) ([]Port, error) {
	out := []Port{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := ParsePort(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePrefixes reads "10.0.0.0/8,fd00:ec2::254" (a bare address is a
// full-length prefix), as Options.EgressDeny takes it.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q: want an address or CIDR, such as 10.0.0.0/8 or fd00:ec2::254", f)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// DefaultInputAllow is what InputDrop leaves open: SSH, HTTP, HTTPS
// (and HTTP/3).
var DefaultInputAllow = []Port{{labels.TCP, 22}, {labels.TCP, 80}, {labels.TCP, 443}, {labels.UDP, 443}}

// DefaultTable is the name of darse's nftables table.
const DefaultTable = "darse"

// Chain priorities: the NAT chains run just before Docker's (dstnat -100,
// srcnat 100) so that darse's translation is the one made for an exposed
// port; the filter chains before Docker's filter (0).
const (
	prioDNAT   = -110
	prioSNAT   = 90
	prioFilter = -10
)

// Ruleset is Build's result.
type Ruleset struct {
	Table *nft.Table
	// Exposures are the exposures the ruleset opens.
	Exposures []Exposure
	// Problems are what was refused or only partly done, and why.
	Problems []Problem
}

// Exposure is one exposure the ruleset opens.
type Exposure struct {
	ContainerID string
	Container   string
	// Name is the label's exposure name, or "ports:<port>/<proto>" for a
	// port Docker publishes.
	Name     string
	Protocol labels.Protocol
	Port     int
	HostPort int
	// HostIP: zero for every address of both families, 0.0.0.0 or :: for
	// every address of one, else that address only.
	HostIP netip.Addr
	// To4 and To6 are the container addresses traffic goes to; zero when
	// the container has none in that family (or the exposure is limited
	// to the other family).
	To4, To6 netip.Addr
	// Direct is To6 and the container port when To6 is a routed (global)
	// address that answers from outside without translation (routed.go).
	Direct netip.AddrPort
}

func (e Exposure) String() string {
	where := "*"
	if e.HostIP.IsValid() {
		where = e.HostIP.String()
		if e.HostIP.Is6() {
			where = "[" + where + "]"
		}
	}
	s := fmt.Sprintf("%s %s %s:%d/%s -> %d", e.Container, e.Name, where, e.HostPort, e.Protocol, e.Port)
	if e.Direct.IsValid() {
		s += fmt.Sprintf(", direct %s/%s", e.Direct, e.Protocol)
	}
	return s
}

// Problem is an exposure refused (Refused) or opened only in part.
type Problem struct {
	ContainerID string
	Container   string
	Exposure    string
	Refused     bool
	Reason      string
}

func (p Problem) String() string {
	kind := "warning"
	if p.Refused {
		kind = "refused"
	}
	return fmt.Sprintf("%s: container %s: exposure %q: %s", kind, p.Container, p.Exposure, p.Reason)
}

// ContainerIDs returns the IDs of the containers the ruleset exposes.
func (r *Ruleset) ContainerIDs() map[string]bool {
	ids := map[string]bool{}
	for _, e := range r.Exposures {
		ids[e.ContainerID] = true
	}
	return ids
}

// Text renders the ruleset as an nft script, preceded by comments listing
// the exposures and the problems. Loading it with nft -f replaces darse's
// table as the watcher would.
func (r *Ruleset) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# darse-fw: table inet %s, %d exposures, %d problems\n", r.Table.Name, len(r.Exposures), len(r.Problems))
	for _, e := range r.Exposures {
		fmt.Fprintf(&b, "# exposed: %s\n", e)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "# %s\n", p)
	}
	b.WriteString(r.Table.Text())
	return b.String()
}

// claim is a candidate exposure before conflicts are settled.
type claim struct {
	c      *Container
	name   string
	proto  labels.Protocol
	port   int
	hostP  int
	hostIP netip.Addr
}

// family reports whether the claim answers on family f at all, and
// whether on every address of f.
func (c claim) family(f nft.Family) (any, all bool) {
	ip := c.hostIP
	switch {
	case !ip.IsValid():
		return true, true
	case nft.FamilyOf(ip) != f:
		return false, false
	case ip.IsUnspecified():
		return true, true
	}
	return true, false
}

func (c claim) overlaps(o claim) bool {
	if c.proto != o.proto || c.hostP != o.hostP {
		return false
	}
	for _, f := range []nft.Family{nft.IPv4, nft.IPv6} {
		a, aAll := c.family(f)
		b, bAll := o.family(f)
		if a && b && (aAll || bAll || c.hostIP == o.hostIP) {
			return true
		}
	}
	return false
}

// IsPlatform reports whether a container with these labels is a platform
// container: labelled darse.platform=true, not a hosted site, and in a
// compose project under srv/core or srv/apps.
func IsPlatform(l map[string]string, srv string) bool {
	if l[labels.PlatformLabel] != "true" || l[labels.SiteLabel] != "" {
		return false
	}
	dir := l[labelWorkingDir]
	if dir == "" || !filepath.IsAbs(dir) || srv == "" {
		return false
	}
	dir = filepath.Clean(dir)
	for _, root := range []string{"core", "apps"} {
		if strings.HasPrefix(dir, filepath.Join(srv, root)+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// labelWorkingDir is compose's project folder label
// (compose.LabelWorkingDir; not imported to keep the core's imports small).
const labelWorkingDir = "com.docker.compose.project.working_dir"

// Build computes the ruleset for s. It is a pure function: same state and
// options, same ruleset, byte for byte.
func Build(s State, o Options) *Ruleset {
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.Input == "" {
		o.Input = InputAccept
	}
	if o.InputAllow == nil {
		o.InputAllow = DefaultInputAllow
	}
	if o.TenantHostAllow == nil {
		o.TenantHostAllow = DefaultTenantHostAllow
	}
	r := &Ruleset{}
	containers := make([]*Container, len(s.Containers))
	for i := range s.Containers {
		containers[i] = &s.Containers[i]
	}
	// Earlier containers keep contested host ports.
	slices.SortStableFunc(containers, func(a, b *Container) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	refuse := func(c *Container, exposure, reason string) {
		r.Problems = append(r.Problems, Problem{ContainerID: c.ID, Container: c.Name, Exposure: exposure, Refused: true, Reason: reason})
	}
	warn := func(c *Container, exposure, reason string) {
		r.Problems = append(r.Problems, Problem{ContainerID: c.ID, Container: c.Name, Exposure: exposure, Reason: reason})
	}
	var accepted []claim
	for _, c := range containers {
		platform := IsPlatform(c.Labels, o.Srv)
		exps, errs := labels.ParseExposures(c.Labels)
		for _, err := range errs {
			name := "?"
			if ee, ok := err.(*labels.ExposureError); ok {
				name = ee.Name
				err = ee.Err
			}
			refuse(c, name, err.Error())
		}
		var claims []claim
		for _, e := range exps {
			if err := e.CheckHostPort(platform); err != nil {
				refuse(c, e.Name, err.Error())
				continue
			}
			claims = append(claims, claim{c: c, name: e.Name, proto: e.Protocol, port: e.Port, hostP: e.HostPort, hostIP: e.HostIP})
		}
		claims = append(claims, publishedClaims(c, refuse)...)
	next:
		for _, cl := range claims {
			for _, a := range accepted {
				if cl.overlaps(a) {
					refuse(c, cl.name, fmt.Sprintf("host port %d/%s is already exposed by container %s (exposure %q)", cl.hostP, cl.proto, a.c.Name, a.name))
					continue next
				}
			}
			accepted = append(accepted, cl)
		}
	}
	bridges := map[string]string{} // network name -> bridge
	for _, n := range s.Networks {
		if n.Bridge != "" {
			bridges[n.Name] = n.Bridge
		}
	}
	var (
		expose, hostInput []nft.Rule // exposures on one host address; host-network ones
		lookups           = newLookups()
	)
	for _, cl := range accepted {
		e := Exposure{ContainerID: cl.c.ID, Container: cl.c.Name, Name: cl.name, Protocol: cl.proto, Port: cl.port, HostPort: cl.hostP, HostIP: cl.hostIP}
		comment := cl.c.Name + " " + cl.name
		proto := nftProto(cl.proto)
		if hostNetwork(cl.c) {
			// The container listens on the host itself: nothing to
			// translate, only the input policy to open.
			if cl.port != cl.hostP {
				refuse(cl.c, cl.name, fmt.Sprintf("a host-network container cannot map host port %d to port %d", cl.hostP, cl.port))
				continue
			}
			hostInput = append(hostInput, nft.Rule{Match: addrMatch(cl.hostIP, nft.DPort{Proto: proto, Port: uint16(cl.hostP)}), Action: nft.Accept, Comment: comment})
			r.Exposures = append(r.Exposures, e)
			continue
		}
		opened := false
		for _, f := range []nft.Family{nft.IPv4, nft.IPv6} {
			on, _ := cl.family(f)
			if !on {
				continue
			}
			to := target(cl.c, f)
			if !to.IsValid() {
				if cl.hostIP.IsValid() {
					refuse(cl.c, cl.name, fmt.Sprintf("the container has no %s address", f))
				} else {
					warn(cl.c, cl.name, fmt.Sprintf("the container has no %s address: exposed over %s only", f, other(f)))
				}
				continue
			}
			opened = true
			if f == nft.IPv4 {
				e.To4 = to
				if o.DockerForwardDrop && !dockerPublishes(cl.c, cl.proto, cl.port) {
					warn(cl.c, cl.name, fmt.Sprintf("Docker's ip filter FORWARD policy is drop: IPv4 from outside the host cannot reach %d/%s, which Docker does not publish; turn IPv4 forwarding on before dockerd starts, or set that policy to accept (scripts/host.sh does both)", cl.port, cl.proto))
				}
			} else {
				e.To6 = to
				if ap, ok := lookups.direct(s.Networks, cl, proto, to); ok {
					e.Direct = ap
				}
			}
			if cl.hostIP.IsValid() && !cl.hostIP.IsUnspecified() {
				expose = append(expose, nft.Rule{
					Match:   []nft.Match{nft.DAddr{Prefix: netip.PrefixFrom(cl.hostIP, cl.hostIP.BitLen())}, nft.DPort{Proto: proto, Port: uint16(cl.hostP)}},
					Action:  nft.DNAT{To: netip.AddrPortFrom(to, uint16(cl.port))},
					Comment: comment,
				})
			} else {
				lookups.dnat(f, proto, cl.hostP, to, cl.port)
			}
			lookups.inbound(f, proto, to, cl.port)
		}
		if opened {
			r.Exposures = append(r.Exposures, e)
		}
	}
	r.Table = table(o, s.Networks, expose, hostInput, watchedRouted(containers, s.Networks), lookups, egressRules(o, containers, s.Networks, hostInput))
	return r
}

// lookups gathers the exposures on every host address into maps, and the
// translated destinations into sets, one per family and protocol: a
// lookup each instead of a rule per exposure.
type lookups struct {
	dnats    map[lookupKey][]dnatTo
	inbounds map[lookupKey]map[netip.AddrPort]bool
	directs  map[nft.Proto]map[netip.AddrPort]bool // IPv6 only (routed.go)
}

type lookupKey struct {
	family nft.Family
	proto  nft.Proto
}

type dnatTo struct {
	hostPort int
	to       netip.AddrPort
}

func newLookups() *lookups {
	return &lookups{dnats: map[lookupKey][]dnatTo{}, inbounds: map[lookupKey]map[netip.AddrPort]bool{}, directs: map[nft.Proto]map[netip.AddrPort]bool{}}
}

func (l *lookups) dnat(f nft.Family, p nft.Proto, hostPort int, to netip.Addr, port int) {
	k := lookupKey{f, p}
	l.dnats[k] = append(l.dnats[k], dnatTo{hostPort, netip.AddrPortFrom(to, uint16(port))})
}

func (l *lookups) inbound(f nft.Family, p nft.Proto, to netip.Addr, port int) {
	k := lookupKey{f, p}
	if l.inbounds[k] == nil {
		l.inbounds[k] = map[netip.AddrPort]bool{}
	}
	l.inbounds[k][netip.AddrPortFrom(to, uint16(port))] = true
}

// all lists the family/protocol pairs in a fixed order.
func (lookupKey) all() []lookupKey {
	return []lookupKey{{nft.IPv4, nft.TCP}, {nft.IPv4, nft.UDP}, {nft.IPv6, nft.TCP}, {nft.IPv6, nft.UDP}}
}

func (k lookupKey) name(what string) string {
	n := 4
	if k.family == nft.IPv6 {
		n = 6
	}
	return fmt.Sprintf("%s_%s%d", what, k.proto, n)
}

// sets returns the maps and sets, and the rules looking them up: DNAT for
// the expose chain, accept for the inbound chain.
func (l *lookups) sets() (sets []*nft.Set, dnat, accept []nft.Rule) {
	for _, k := range (lookupKey{}).all() {
		if ds := l.dnats[k]; len(ds) > 0 {
			slices.SortFunc(ds, func(a, b dnatTo) int { return cmp.Compare(a.hostPort, b.hostPort) })
			addrs := &nft.Set{Name: k.name("expose") + "_addr", Key: []nft.Datatype{nft.InetService}, Data: k.family.AddrType()}
			ports := &nft.Set{Name: k.name("expose") + "_port", Key: []nft.Datatype{nft.InetService}, Data: nft.InetService}
			for _, d := range ds {
				key := []nft.Value{nft.Port(d.hostPort)}
				addrs.Elements = append(addrs.Elements, nft.Element{Key: key, Data: nft.Address(d.to.Addr())})
				ports.Elements = append(ports.Elements, nft.Element{Key: key, Data: nft.Port(d.to.Port())})
			}
			sets = append(sets, addrs, ports)
			dnat = append(dnat, nft.Rule{Match: []nft.Match{nft.NFProto(k.family)},
				Action: nft.DNATMap{Family: k.family, Proto: k.proto, AddrMap: addrs.Name, PortMap: ports.Name}})
		}
	}
	for _, k := range (lookupKey{}).all() {
		in := l.inbounds[k]
		if len(in) == 0 {
			continue
		}
		dests := slices.SortedFunc(maps.Keys(in), func(a, b netip.AddrPort) int { return a.Compare(b) })
		set := &nft.Set{Name: k.name("inbound"), Key: []nft.Datatype{k.family.AddrType(), nft.InetService}}
		for _, d := range dests {
			set.Elements = append(set.Elements, nft.Element{Key: []nft.Value{nft.Address(d.Addr()), nft.Port(d.Port())}})
		}
		sets = append(sets, set)
		accept = append(accept, nft.Rule{Match: []nft.Match{nft.DAddrDPortIn{Family: k.family, Proto: k.proto, Set: set.Name}, nft.CtDNAT{}}, Action: nft.Accept})
	}
	return sets, dnat, accept
}

// publishedClaims turns Docker's host bindings into claims: one per
// container port, host port and address, 0.0.0.0 and :: merged into "all".
// Loopback bindings are local-only and not exposures. Hosted sites expose
// through labels only.
func publishedClaims(c *Container, refuse func(*Container, string, string)) []claim {
	type key struct {
		proto       string
		port, hostP int
		ip          netip.Addr
	}
	seen := map[key]bool{}
	var out []claim
	unspec := map[key]int{} // bindings on 0.0.0.0 / :: per port
	for _, p := range c.Published {
		if p.HostIP.IsLoopback() || p.HostPort == 0 {
			continue
		}
		name := fmt.Sprintf("ports:%d/%s", p.Port, p.Protocol)
		if c.Labels[labels.SiteLabel] != "" {
			refuse(c, name, "a hosted site exposes ports through darse.expose labels, not compose ports")
			continue
		}
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			refuse(c, name, "only tcp and udp can be exposed")
			continue
		}
		ip := p.HostIP
		if !ip.IsValid() || ip.IsUnspecified() {
			k := key{p.Protocol, p.Port, p.HostPort, netip.Addr{}}
			unspec[k]++
			if !seen[k] {
				seen[k] = true
				out = append(out, claim{c: c, name: name, proto: labels.Protocol(p.Protocol), port: p.Port, hostP: p.HostPort, hostIP: ip})
			}
			continue
		}
		k := key{p.Protocol, p.Port, p.HostPort, ip}
		if !seen[k] {
			seen[k] = true
			out = append(out, claim{c: c, name: name, proto: labels.Protocol(p.Protocol), port: p.Port, hostP: p.HostPort, hostIP: ip})
		}
	}
	// Docker binds "8080:80" on 0.0.0.0 and ::: both mean every address.
	// One unspecified binding of one family is kept as that family only.
	for i, cl := range out {
		if cl.hostIP.IsValid() && cl.hostIP.IsUnspecified() && unspec[key{string(cl.proto), cl.port, cl.hostP, netip.Addr{}}] > 1 {
			out[i].hostIP = netip.Addr{}
		}
	}
	return out
}

func dockerPublishes(c *Container, proto labels.Protocol, port int) bool {
	for _, p := range c.Published {
		if p.Port == port && p.Protocol == string(proto) {
			return true
		}
	}
	return false
}

func hostNetwork(c *Container) bool {
	return len(c.Endpoints) == 1 && c.Endpoints[0].Network == "host"
}

// target is the container address of family f that exposures go to: the
// one on the first network by name that has one.
func target(c *Container, f nft.Family) netip.Addr {
	eps := slices.Clone(c.Endpoints)
	slices.SortFunc(eps, func(a, b Endpoint) int { return cmp.Compare(a.Network, b.Network) })
	for _, ep := range eps {
		a := ep.IPv4
		if f == nft.IPv6 {
			a = ep.IPv6
		}
		if a.IsValid() {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

func other(f nft.Family) nft.Family {
	if f == nft.IPv4 {
		return nft.IPv6
	}
	return nft.IPv4
}

func nftProto(p labels.Protocol) nft.Proto {
	if p == labels.UDP {
		return nft.UDP
	}
	return nft.TCP
}

// addrMatch limits m to host address ip when ip is a specific address.
func addrMatch(ip netip.Addr, m ...nft.Match) []nft.Match {
	switch {
	case !ip.IsValid():
		return m
	case ip.IsUnspecified():
		return append([]nft.Match{nft.NFProto(nft.FamilyOf(ip))}, m...)
	}
	return append([]nft.Match{nft.DAddr{Prefix: netip.PrefixFrom(ip, ip.BitLen())}}, m...)
}

// ula is IPv6's private range: containers on such a network reach out
// through the host's address.
var ula = netip.MustParsePrefix("fc00::/7")

func table(o Options, networks []Network, expose, hostInput, routedJumps []nft.Rule, l *lookups, eg egress) *nft.Table {
	sets, dnat, inbound := l.sets()
	dsets, direct := l.directSets(networks)
	sets = append(sets, dsets...)
	inbound = append(inbound, direct...)
	sets = append(sets, eg.sets...)
	expose = append(expose, dnat...)
	nets := slices.Clone(networks)
	slices.SortFunc(nets, func(a, b Network) int { return cmp.Compare(a.Name, b.Name) })
	var isolate, toBridge, sameBridge, masq []nft.Rule
	isolated := &nft.Set{Name: setIsolated, Key: []nft.Datatype{nft.IfName}}
	for _, n := range nets {
		if n.Bridge == "" {
			continue
		}
		if n.IsolationOnly {
			isolate = append(isolate, nft.Rule{Match: []nft.Match{nft.IIFName{Name: n.Bridge}, nft.OIFName{Name: n.Bridge}}, Action: nft.Drop, Comment: n.Name})
			isolated.Elements = append(isolated.Elements, nft.Element{Key: []nft.Value{nft.Interface(n.Bridge)}})
			continue
		}
		toBridge = append(toBridge, nft.Rule{Match: []nft.Match{nft.OIFName{Name: n.Bridge}}, Action: nft.Jump{Chain: "inbound"}, Comment: n.Name})
		same := nft.Rule{Match: []nft.Match{nft.IIFName{Name: n.Bridge}, nft.OIFName{Name: n.Bridge}}, Action: nft.Accept, Comment: n.Name}
		if n.Isolated {
			same.Action = nft.Drop
		}
		sameBridge = append(sameBridge, same)
		for _, p := range n.Subnets {
			if p.Addr().Is6() && ula.Contains(p.Addr()) {
				masq = append(masq, nft.Rule{Match: []nft.Match{nft.SAddr{Prefix: p.Masked()}, nft.OIFName{Name: n.Bridge, Not: true}}, Action: nft.Masquerade{}, Comment: n.Name})
			}
		}
	}
	if len(isolated.Elements) > 1 {
		// The front shards are one shared network cut in bridges: their
		// tenants are kept apart across shards as within one. Docker
		// isolates bridges from each other over IPv4 only; a watcher
		// owning the networks drops this in "inbound" already.
		sets = append(sets, isolated)
		isolate = append(isolate, nft.Rule{Match: []nft.Match{nft.IIFNameIn{Set: setIsolated}, nft.OIFNameIn{Set: setIsolated}}, Action: nft.Drop, Comment: "between isolated networks"})
	}
	t := &nft.Table{Name: o.Table, Sets: sets}
	t.Chains = append(t.Chains,
		&nft.Chain{Name: "prerouting", Type: nft.NAT, Hook: nft.Prerouting, Priority: prioDNAT, Policy: nft.Accept, Rules: []nft.Rule{
			{Match: []nft.Match{nft.LocalDAddr{}}, Action: nft.Jump{Chain: "expose"}},
		}},
		// The host's own connections to an exposed port; loopback is left
		// to Docker's userland proxy (a DNAT from 127.0.0.1 would need
		// route_localnet and would not come back).
		&nft.Chain{Name: "output", Type: nft.NAT, Hook: nft.Output, Priority: prioDNAT, Policy: nft.Accept, Rules: []nft.Rule{
			{Match: []nft.Match{nft.DAddr{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}, Action: nft.Return},
			{Match: []nft.Match{nft.DAddr{Prefix: netip.MustParsePrefix("::1/128")}}, Action: nft.Return},
			{Match: []nft.Match{nft.LocalDAddr{}}, Action: nft.Jump{Chain: "expose"}},
		}},
		&nft.Chain{Name: "expose", Rules: expose},
		&nft.Chain{Name: "forward", Type: nft.Filter, Hook: nft.Forward, Priority: prioFilter, Policy: nft.Accept, Rules: append(append([]nft.Rule{
			{Match: []nft.Match{nft.CtEstablished | nft.CtRelated}, Action: nft.Accept},
			eg.forward,
		}, append(isolate, routedJumps...)...), toBridge...)},
		// New connections into a container network: from the same network
		// (bridged), or to an exposed port once translated; nothing else,
		// over IPv4 or IPv6.
		&nft.Chain{Name: "inbound", Rules: append(append(sameBridge, inbound...), nft.Rule{Action: nft.Drop})},
		&nft.Chain{Name: "postrouting", Type: nft.NAT, Hook: nft.Postrouting, Priority: prioSNAT, Policy: nft.Accept, Rules: masq},
	)
	t.Chains = append(t.Chains, eg.chains...)
	if o.Input == InputDrop {
		rules := []nft.Rule{
			{Match: []nft.Match{nft.CtEstablished | nft.CtRelated}, Action: nft.Accept},
			{Match: []nft.Match{nft.CtInvalid}, Action: nft.Drop},
			{Match: []nft.Match{nft.IIFName{Name: "lo"}}, Action: nft.Accept},
			{Match: []nft.Match{nft.L4Proto(nft.ICMP)}, Action: nft.Accept},
			{Match: []nft.Match{nft.L4Proto(nft.ICMPv6)}, Action: nft.Accept},
		}
		for _, p := range o.InputAllow {
			rules = append(rules, nft.Rule{Match: []nft.Match{nft.DPort{Proto: nftProto(p.Protocol), Port: uint16(p.Number)}}, Action: nft.Accept})
		}
		rules = append(rules, hostInput...)
		t.Chains = append(t.Chains, &nft.Chain{Name: "input", Type: nft.Filter, Hook: nft.Input, Priority: prioFilter, Policy: nft.Drop, Rules: rules})
	}
	return t
}
