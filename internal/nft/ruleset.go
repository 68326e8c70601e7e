// Package nft is darse's only door to nftables. It holds a small typed
// vocabulary of the rules darse writes (one inet table of chains whose
// rules are matches and one action), renders it as nft(8) text and applies
// it over netlink with github.com/google/nftables, replacing darse's table
// in one atomic transaction. It never flushes the ruleset and never writes
// a table it was not given: Docker's iptables-nft tables and anyone else's
// stay as they are.
//
// The text and the netlink forms are built from the same values; the
// tests load the text with nft -f and the netlink batch into two scratch
// network namespaces and compare nft's listings of both.
package nft

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
)

// Table is one table of the inet family, owned by darse and replaced as a
// whole on each apply.
type Table struct {
	Name   string
	Sets   []*Set
	Chains []*Chain
}

// Datatype is the type of a set key or map value.
type Datatype int

// The datatypes darse's sets use.
const (
	IPv4Addr Datatype = iota + 1
	IPv6Addr
	InetService
	// IfName is an interface name (16 bytes, NUL-padded).
	IfName
)

func (d Datatype) String() string {
	switch d {
	case IPv4Addr:
		return "ipv4_addr"
	case IPv6Addr:
		return "ipv6_addr"
	case InetService:
		return "inet_service"
	case IfName:
		return "ifname"
	}
	return "?"
}

// Set is a named set, or a map when Data is set. Rules look keys up in
// it: one lookup replaces a rule per element, which keeps both the batch
// and the packet path short with thousands of exposures.
type Set struct {
	Name string
	// Key has one datatype, or several for a concatenation.
	Key []Datatype
	// Data is the map's value type; 0 for a plain set.
	Data     Datatype
	Elements []Element
}

// Element is a set element, with its map value when the set is a map.
type Element struct {
	Key  []Value
	Data Value
}

// Value is a set key part or map value: Port, Address or Interface.
type Value interface {
	bytes() []byte
	text() string
}

// Port is an inet_service value.
type Port uint16

// Address is an ipv4_addr or ipv6_addr value.
type Address netip.Addr

// Interface is an ifname value.
type Interface string

// Hook is the netfilter hook of a base chain; empty for a regular chain.
type Hook string

// The hooks darse uses.
const (
	Prerouting  Hook = "prerouting"
	Input       Hook = "input"
	Forward     Hook = "forward"
	Output      Hook = "output"
	Postrouting Hook = "postrouting"
)

// ChainType is the type of a base chain.
type ChainType string

// The chain types darse uses.
const (
	Filter ChainType = "filter"
	NAT    ChainType = "nat"
)

// Chain is a base chain (Hook set) or a regular one (jumped to).
type Chain struct {
	Name     string
	Type     ChainType
	Hook     Hook
	Priority int
	// Policy is Accept or Drop for a base chain.
	Policy Verdict
	Rules  []Rule
}

// Rule matches every one of Match, then does Action.
type Rule struct {
	Match  []Match
	Action Action
	// Comment is kept with the rule in the kernel; it says which
	// container and exposure a rule is for. Quotes are replaced.
	Comment string
}

// Family is an address family.
type Family uint8

// The two address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// AddrType is the datatype of the family's addresses.
func (f Family) AddrType() Datatype {
	if f == IPv6 {
		return IPv6Addr
	}
	return IPv4Addr
}

// nftName is the payload protocol keyword: ip or ip6.
func (f Family) nftName() string {
	if f == IPv6 {
		return "ip6"
	}
	return "ip"
}

// FamilyOf returns the family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() || a.Is4In6() {
		return IPv4
	}
	return IPv6
}

// Proto is a layer 4 protocol number.
type Proto uint8

// The layer 4 protocols darse matches.
const (
	ICMP   Proto = 1
	TCP    Proto = 6
	UDP    Proto = 17
	ICMPv6 Proto = 58
)

func (p Proto) String() string {
	switch p {
	case ICMP:
		return "icmp"
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case ICMPv6:
		return "ipv6-icmp"
	}
	return fmt.Sprint(uint8(p))
}

// Match is one condition of a rule. The implementations are the types of
// this package.
type Match interface {
	text() string
	compile(b *builder) error
}

// NFProto matches the packet's address family.
type NFProto Family

// L4Proto matches the layer 4 protocol.
type L4Proto Proto

// IIFName matches the input interface by name.
type IIFName struct {
	Name string
	Not  bool
}

// OIFName matches the output interface by name.
type OIFName struct {
	Name string
	Not  bool
}

// SAddr matches the source address against a prefix (a single address
// is a full-length prefix).
type SAddr struct {
	Prefix netip.Prefix
	Not    bool
}

// DAddr matches the destination address against a prefix.
type DAddr struct {
	Prefix netip.Prefix
	Not    bool
}

// DPort matches the TCP or UDP destination port.
type DPort struct {
	Proto Proto
	Port  uint16
}

// IIFNameIn matches when the input interface's name is in Set, a set
// of IfName: one lookup for every container bridge.
type IIFNameIn struct{ Set string }

// OIFNameIn matches when the output interface's name is in Set.
type OIFNameIn struct{ Set string }

// SAddrIn matches when the source address is (or with Not, is not) in
// Set, a set of Family's addresses.
type SAddrIn struct {
	Family Family
	Set    string
	Not    bool
}

// LocalDAddr matches packets addressed to one of the host's own addresses
// (fib daddr type local).
type LocalDAddr struct{}

// CtState matches the connection tracking state against any of its bits.
type CtState uint32

// Connection tracking states, as the kernel numbers them.
const (
	CtInvalid     CtState = 1
	CtEstablished CtState = 2
	CtRelated     CtState = 4
	CtNew         CtState = 8
)

// CtDNAT matches connections whose destination was translated, by darse
// or by Docker (ct status dnat).
type CtDNAT struct{}

// Action ends a rule.
type Action interface {
	text() string
	compile(b *builder) error
}

// Verdict is accept, drop or return.
type Verdict int

// The plain verdicts.
const (
	Accept Verdict = iota + 1
	Drop
	Return
)

// Jump continues in another chain of the table.
type Jump struct{ Chain string }

// DNAT rewrites the destination to To; the family is To's.
type DNAT struct{ To netip.AddrPort }

// Masquerade rewrites the source to the output interface's address.
type Masquerade struct{}

// DAddrDPortIn matches when (destination address, destination port) is
// in Set, a set of Family's address . inet_service.
type DAddrDPortIn struct {
	Family Family
	Proto  Proto
	Set    string
}

// DNATMap translates the destination through two maps keyed by the
// destination port: AddrMap gives the address (of Family), PortMap the
// port. A port in neither leaves the packet alone.
type DNATMap struct {
	Family           Family
	Proto            Proto
	AddrMap, PortMap string
}

// Text renders the table as an nft script that replaces it atomically:
// nft -f loads it in one transaction.
func (t *Table) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\n", t.Name, t.Name)
	b.WriteString(t.body(true))
	return b.String()
}

// Hash identifies the table's content; the applied hash is kept in the
// kernel (see Conn.Applied) so that an unchanged table is not applied again.
func (t *Table) Hash() string {
	sum := sha256.Sum256([]byte(t.body(false)))
	return hex.EncodeToString(sum[:12])
}

// The version chain is never jumped to: its one rule carries the hash of
// the table in its comment.
const versionChain = "version"

func (t *Table) versionRule() Rule {
	return Rule{Action: Return, Comment: "darse-fw " + t.Hash()}
}

func (t *Table) body(withVersion bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", t.Name)
	for i, s := range t.Sets {
		if i > 0 {
			b.WriteString("\n")
		}
		s.write(&b)
	}
	for i, c := range t.Chains {
		if i > 0 || len(t.Sets) > 0 {
			b.WriteString("\n")
		}
		c.write(&b)
	}
	if withVersion {
		if len(t.Chains)+len(t.Sets) > 0 {
			b.WriteString("\n")
		}
		v := Chain{Name: versionChain, Rules: []Rule{t.versionRule()}}
		v.write(&b)
	}
	b.WriteString("}\n")
	return b.String()
}

func (s *Set) typeText() string {
	keys := make([]string, len(s.Key))
	for i, k := range s.Key {
		keys[i] = k.String()
	}
	t := strings.Join(keys, " . ")
	if s.Data != 0 {
		t += " : " + s.Data.String()
	}
	return t
}

func (s *Set) write(b *strings.Builder) {
	kind := "set"
	if s.Data != 0 {
		kind = "map"
	}
	fmt.Fprintf(b, "\t%s %s {\n\t\ttype %s\n", kind, s.Name, s.typeText())
	if len(s.Elements) > 0 {
		elems := make([]string, len(s.Elements))
		for i, e := range s.Elements {
			elems[i] = e.text()
		}
		fmt.Fprintf(b, "\t\telements = { %s }\n", strings.Join(elems, ",\n\t\t\t     "))
	}
	b.WriteString("\t}\n")
}

func (e Element) text() string {
	keys := make([]string, len(e.Key))
	for i, k := range e.Key {
		keys[i] = k.text()
	}
	t := strings.Join(keys, " . ")
	if e.Data != nil {
		t += " : " + e.Data.text()
	}
	return t
}

func (p Port) text() string      { return fmt.Sprint(uint16(p)) }
func (a Address) text() string   { return netip.Addr(a).String() }
func (i Interface) text() string { return quote(string(i)) }

func (c *Chain) write(b *strings.Builder) {
	fmt.Fprintf(b, "\tchain %s {\n", c.Name)
	if c.Hook != "" {
		fmt.Fprintf(b, "\t\ttype %s hook %s priority %d; policy %s;\n", c.Type, c.Hook, c.Priority, c.Policy.text())
	}
	for _, r := range c.Rules {
		b.WriteString("\t\t")
		b.WriteString(r.text())
		b.WriteString("\n")
	}
	b.WriteString("\t}\n")
}

func (r Rule) text() string {
	var parts []string
	for _, m := range r.Match {
		parts = append(parts, m.text())
	}
	if r.Action != nil {
		parts = append(parts, r.Action.text())
	}
	if r.Comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", cleanComment(r.Comment)))
	}
	return strings.Join(parts, " ")
}

// cleanComment keeps comments printable and quote-free: they come from
// container names. The kernel keeps at most 128 bytes.
func cleanComment(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, s)
	if len(s) > 127 {
		s = s[:127]
	}
	return s
}

func (m NFProto) text() string   { return "meta nfproto " + Family(m).String() }
func (m L4Proto) text() string   { return "meta l4proto " + Proto(m).String() }
func (m IIFName) text() string   { return "iifname " + neg(m.Not) + quote(m.Name) }
func (m OIFName) text() string   { return "oifname " + neg(m.Not) + quote(m.Name) }
func (m SAddr) text() string     { return addrText("saddr", m.Prefix, m.Not) }
func (m DAddr) text() string     { return addrText("daddr", m.Prefix, m.Not) }
func (m DPort) text() string     { return fmt.Sprintf("%s dport %d", m.Proto, m.Port) }
func (LocalDAddr) text() string  { return "fib daddr type local" }
func (m IIFNameIn) text() string { return "iifname @" + m.Set }
func (m OIFNameIn) text() string { return "oifname @" + m.Set }
func (m SAddrIn) text() string {
	return fmt.Sprintf("%s saddr %s@%s", m.Family.nftName(), neg(m.Not), m.Set)
}
func (CtDNAT) text() string { return "ct status dnat" }

func (m CtState) text() string {
	var names []string
	for _, s := range []struct {
		bit  CtState
		name string
	}{{CtInvalid, "invalid"}, {CtEstablished, "established"}, {CtRelated, "related"}, {CtNew, "new"}} {
		if m&s.bit != 0 {
			names = append(names, s.name)
		}
	}
	return "ct state " + strings.Join(names, ",")
}

func neg(not bool) string {
	if not {
		return "!= "
	}
	return ""
}

func quote(s string) string { return `"` + cleanComment(s) + `"` }

func addrText(field string, p netip.Prefix, not bool) string {
	s := p.String()
	if p.IsSingleIP() {
		s = p.Addr().String()
	}
	return fmt.Sprintf("%s %s %s%s", FamilyOf(p.Addr()).nftName(), field, neg(not), s)
}

func (v Verdict) text() string {
	switch v {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case Return:
		return "return"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

func (a Jump) text() string { return "jump " + a.Chain }

func (a DNAT) text() string {
	if FamilyOf(a.To.Addr()) == IPv6 {
		return fmt.Sprintf("dnat ip6 to [%s]:%d", a.To.Addr(), a.To.Port())
	}
	return fmt.Sprintf("dnat ip to %s:%d", a.To.Addr(), a.To.Port())
}

func (Masquerade) text() string { return "masquerade" }

func (m DAddrDPortIn) text() string {
	return fmt.Sprintf("%s daddr . %s dport @%s", m.Family.nftName(), m.Proto, m.Set)
}

func (a DNATMap) text() string {
	return fmt.Sprintf("dnat %s to %s dport map @%s : %s dport map @%s", a.Family.nftName(), a.Proto, a.AddrMap, a.Proto, a.PortMap)
}
