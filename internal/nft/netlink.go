package nft

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conn applies tables over netlink, in the network namespace it was opened
// for.
type Conn struct {
	opts []nftables.ConnOption
	test bool // netlink is a test double: no socket options
}

// Option configures a Conn.
type Option func(*Conn)

// WithNetNS makes the Conn act in the network namespace open at fd (a
// scratch namespace in tests and benchmarks). The caller keeps fd open.
func WithNetNS(fd int) Option {
	return func(c *Conn) { c.opts = append(c.opts, nftables.WithNetNSFd(fd)) }
}

// New returns a Conn; nothing is opened until it is used.
func New(opts ...Option) *Conn {
	c := &Conn{}
	for _, o := range opts {
		o(c)
	}
	return c
}

// socketBuffer is the size asked for both socket buffers: a batch of
// thousands of rules goes out in one sendmsg (EMSGSIZE past the send
// buffer) and brings back one ack per message (ENOBUFS past the receive
// buffer); the defaults (~200 KiB) fail around a hundred rules.
const socketBuffer = 32 << 20

func (c *Conn) dial() (*nftables.Conn, error) {
	opts := c.opts
	if !c.test {
		opts = append(opts, nftables.WithSockOptions(func(nl *netlink.Conn) error {
			// Acks without a copy of each request, and room for the batch
			// and its acks (SO_*BUFFORCE, as CAP_NET_ADMIN allows).
			if err := nl.SetOption(netlink.CapAcknowledge, true); err != nil {
				return fmt.Errorf("netlink cap_ack: %w", err)
			}
			if err := nl.SetWriteBuffer(socketBuffer); err != nil {
				return fmt.Errorf("netlink send buffer: %w", err)
			}
			return nl.SetReadBuffer(socketBuffer)
		}))
	}
	nc, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return nc, nil
}

// Apply replaces the inet table t.Name with t in one transaction: the
// table is created if missing, deleted, and defined anew, all in one
// netlink batch. If the kernel refuses any part, none of it takes effect
// and the previous table stays.
func (c *Conn) Apply(ctx context.Context, t *Table) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	nc, err := c.dial()
	if err != nil {
		return err
	}
	if err := queue(nc, t); err != nil {
		return fmt.Errorf("table inet %s: %w", t.Name, err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("apply table inet %s: %w", t.Name, err)
	}
	return nil
}

// queue adds t's replacement to nc's batch without sending it.
func queue(nc *nftables.Conn, t *Table) error {
	if !isIdent(t.Name) {
		return fmt.Errorf("bad table name %q", t.Name)
	}
	tbl := &nftables.Table{Name: t.Name, Family: nftables.TableFamilyINet}
	nc.AddTable(tbl)
	nc.DelTable(tbl)
	nc.AddTable(tbl)
	chains := append([]*Chain(nil), t.Chains...)
	chains = append(chains, &Chain{Name: versionChain, Rules: []Rule{t.versionRule()}})
	names := map[string]bool{}
	for _, c := range chains {
		if !isIdent(c.Name) || names[c.Name] {
			return fmt.Errorf("bad or repeated chain name %q", c.Name)
		}
		names[c.Name] = true
	}
	sets := map[string]*setInfo{}
	for i, s := range t.Sets {
		if !isIdent(s.Name) || sets[s.Name] != nil {
			return fmt.Errorf("bad or repeated set name %q", s.Name)
		}
		ns, err := s.nftSet(tbl, uint32(i+1))
		if err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		sets[s.Name] = &setInfo{set: s, nft: ns}
		if err := nc.AddSet(ns, nil); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		elems := make([]nftables.SetElement, len(s.Elements))
		for j, e := range s.Elements {
			if elems[j], err = s.element(e); err != nil {
				return fmt.Errorf("set %s element %s: %w", s.Name, e.text(), err)
			}
		}
		// A netlink attribute holds at most 64 KiB: elements go in chunks.
		for len(elems) > 0 {
			n := min(len(elems), 256)
			if err := nc.SetAddElements(ns, elems[:n]); err != nil {
				return fmt.Errorf("set %s: %w", s.Name, err)
			}
			elems = elems[n:]
		}
	}
	for _, c := range chains {
		ch := &nftables.Chain{Name: c.Name, Table: tbl}
		if c.Hook != "" {
			hook, err := c.Hook.num()
			if err != nil {
				return fmt.Errorf("chain %s: %w", c.Name, err)
			}
			prio := nftables.ChainPriority(c.Priority)
			ch.Hooknum, ch.Priority, ch.Type = hook, &prio, nftables.ChainType(c.Type)
			pol := nftables.ChainPolicyAccept
			if c.Policy == Drop {
				pol = nftables.ChainPolicyDrop
			}
			ch.Policy = &pol
		}
		nc.AddChain(ch)
	}
	for _, c := range chains {
		ch := &nftables.Chain{Name: c.Name, Table: tbl}
		for i, r := range c.Rules {
			b := &builder{chains: names, sets: sets}
			if err := r.compile(b); err != nil {
				return fmt.Errorf("chain %s rule %d (%s): %w", c.Name, i+1, r.text(), err)
			}
			nr := &nftables.Rule{Table: tbl, Chain: ch, Exprs: b.exprs}
			if r.Comment != "" {
				nr.UserData = userdata.AppendString(nil, userdata.TypeComment, cleanComment(r.Comment))
			}
			nc.AddRule(nr)
		}
	}
	return nil
}

// Applied returns the hash of the table darse last applied under name
// (Table.Hash), or "" when there is no such table.
func (c *Conn) Applied(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	nc, err := c.dial()
	if err != nil {
		return "", err
	}
	tbl := &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
	rules, err := nc.GetRules(tbl, &nftables.Chain{Name: versionChain, Table: tbl})
	if errors.Is(err, unix.ENOENT) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read table inet %s: %w", name, err)
	}
	for _, r := range rules {
		if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok {
			if h, ok := strings.CutPrefix(s, "darse-fw "); ok {
				return h, nil
			}
		}
	}
	return "", nil
}

// Delete removes the inet table name, if present.
func (c *Conn) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	nc, err := c.dial()
	if err != nil {
		return err
	}
	tbl := &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
	// Adding first makes the delete succeed when the table is absent.
	nc.AddTable(tbl)
	nc.DelTable(tbl)
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("delete table inet %s: %w", name, err)
	}
	return nil
}

// ForwardDrops reports whether IPv4 forwarding is dropped by default by
// Docker's iptables-nft chain (table ip filter, chain FORWARD, policy
// drop): then only container ports Docker itself publishes can receive
// forwarded IPv4 connections. It only reads.
func (c *Conn) ForwardDrops(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	nc, err := c.dial()
	if err != nil {
		return false, err
	}
	ch, err := nc.ListChain(&nftables.Table{Name: "filter", Family: nftables.TableFamilyIPv4}, "FORWARD")
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read ip filter FORWARD: %w", err)
	}
	return ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop, nil
}

func (h Hook) num() (*nftables.ChainHook, error) {
	switch h {
	case Prerouting:
		return nftables.ChainHookPrerouting, nil
	case Input:
		return nftables.ChainHookInput, nil
	case Forward:
		return nftables.ChainHookForward, nil
	case Output:
		return nftables.ChainHookOutput, nil
	case Postrouting:
		return nftables.ChainHookPostrouting, nil
	}
	return nil, fmt.Errorf("unknown hook %q", h)
}

// isIdent keeps table and chain names to what nft accepts unquoted.
func isIdent(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !alpha && (i == 0 || !(c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// builder collects a rule's expressions, adding the protocol checks nft
// adds in front of a payload match (meta nfproto, meta l4proto) once, as
// nft does, so the kernel holds what `nft -f` of the text would.
type builder struct {
	exprs  []expr.Any
	family Family // established by a match, 0 if none yet
	proto  Proto
	chains map[string]bool
	sets   map[string]*setInfo
}

type setInfo struct {
	set *Set
	nft *nftables.Set
}

func (d Datatype) nft() (nftables.SetDatatype, error) {
	switch d {
	case IPv4Addr:
		return nftables.TypeIPAddr, nil
	case IPv6Addr:
		return nftables.TypeIP6Addr, nil
	case InetService:
		return nftables.TypeInetService, nil
	case IfName:
		return nftables.TypeIFName, nil
	}
	return nftables.SetDatatype{}, fmt.Errorf("unknown datatype %d", d)
}

// nftSet describes s for google/nftables. IDs are given here, unique in
// the batch, rather than by the library's global counter.
func (s *Set) nftSet(tbl *nftables.Table, id uint32) (*nftables.Set, error) {
	if len(s.Key) == 0 {
		return nil, errors.New("no key type")
	}
	keys := make([]nftables.SetDatatype, len(s.Key))
	for i, k := range s.Key {
		var err error
		if keys[i], err = k.nft(); err != nil {
			return nil, err
		}
	}
	ns := &nftables.Set{Table: tbl, Name: s.Name, ID: id, KeyType: keys[0], KeyByteOrder: binaryutil.BigEndian}
	if len(keys) == 1 && s.Key[0] == IfName {
		// nft keeps strings in host order and lists them by the set's
		// recorded byte order: big-endian would list the names empty.
		ns.KeyByteOrder = binaryutil.NativeEndian
	}
	if len(keys) > 1 {
		kt, err := nftables.ConcatSetType(keys...)
		if err != nil {
			return nil, err
		}
		ns.KeyType, ns.Concatenation = kt, true
	}
	if s.Data != 0 {
		dt, err := s.Data.nft()
		if err != nil {
			return nil, err
		}
		ns.IsMap, ns.DataType = true, dt
	}
	return ns, nil
}

// element encodes e: concatenated key parts are padded to 4 bytes each.
func (s *Set) element(e Element) (nftables.SetElement, error) {
	if len(e.Key) != len(s.Key) {
		return nftables.SetElement{}, fmt.Errorf("%d key parts, want %d", len(e.Key), len(s.Key))
	}
	var key []byte
	for i, v := range e.Key {
		if name, ok := v.(Interface); ok && !validIfName(string(name)) {
			return nftables.SetElement{}, fmt.Errorf("bad interface name %q", string(name))
		}
		b := v.bytes()
		if err := s.Key[i].check(b); err != nil {
			return nftables.SetElement{}, err
		}
		if len(s.Key) > 1 {
			b = append(b, make([]byte, (4-len(b)%4)%4)...)
		}
		key = append(key, b...)
	}
	el := nftables.SetElement{Key: key}
	if (s.Data != 0) != (e.Data != nil) {
		return nftables.SetElement{}, errors.New("map value missing or set with a value")
	}
	if e.Data != nil {
		b := e.Data.bytes()
		if err := s.Data.check(b); err != nil {
			return nftables.SetElement{}, err
		}
		el.Val = b
	}
	return el, nil
}

func (d Datatype) check(b []byte) error {
	want := map[Datatype]int{IPv4Addr: 4, IPv6Addr: 16, InetService: 2, IfName: unix.IFNAMSIZ}[d]
	if len(b) != want {
		return fmt.Errorf("%d bytes for %s", len(b), d)
	}
	return nil
}

func (p Port) bytes() []byte    { return binaryutil.BigEndian.PutUint16(uint16(p)) }
func (a Address) bytes() []byte { return netip.Addr(a).Unmap().AsSlice() }

// bytes pads the name as the kernel compares it; a name that does not fit
// comes out too long and is refused by check.
func (i Interface) bytes() []byte {
	b := make([]byte, max(unix.IFNAMSIZ, len(i)+1))
	copy(b, i)
	return b
}

func (b *builder) set(name string, key []Datatype, data Datatype) (*setInfo, error) {
	si := b.sets[name]
	if si == nil {
		return nil, fmt.Errorf("unknown set %q", name)
	}
	if !slices.Equal(si.set.Key, key) || si.set.Data != data {
		return nil, fmt.Errorf("set %s is %s, not what the rule looks up", name, si.set.typeText())
	}
	return si, nil
}

func (m DAddrDPortIn) compile(b *builder) error {
	si, err := b.set(m.Set, []Datatype{m.Family.AddrType(), InetService}, 0)
	if err != nil {
		return err
	}
	if m.Proto != TCP && m.Proto != UDP {
		return fmt.Errorf("dport needs tcp or udp, not %s", m.Proto)
	}
	if err := b.needFamily(m.Family); err != nil {
		return err
	}
	if err := b.needProto(m.Proto); err != nil {
		return err
	}
	// The address fills 32-bit registers from reg 1 (8); the port goes in
	// the next one (9 after an IPv4 address, 12 = reg 2 after IPv6).
	off, n, portReg := uint32(16), uint32(4), uint32(9)
	if m.Family == IPv6 {
		off, n, portReg = 24, 16, 2
	}
	b.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Payload{DestRegister: portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: si.nft.Name, SetID: si.nft.ID})
	return nil
}

func (m IIFNameIn) compile(b *builder) error { return ifnameIn(b, expr.MetaKeyIIFNAME, m.Set) }
func (m OIFNameIn) compile(b *builder) error { return ifnameIn(b, expr.MetaKeyOIFNAME, m.Set) }

func ifnameIn(b *builder, key expr.MetaKey, set string) error {
	si, err := b.set(set, []Datatype{IfName}, 0)
	if err != nil {
		return err
	}
	b.add(&expr.Meta{Key: key, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: si.nft.Name, SetID: si.nft.ID})
	return nil
}

func (m SAddrIn) compile(b *builder) error {
	si, err := b.set(m.Set, []Datatype{m.Family.AddrType()}, 0)
	if err != nil {
		return err
	}
	if err := b.needFamily(m.Family); err != nil {
		return err
	}
	off, n := uint32(12), uint32(4)
	if m.Family == IPv6 {
		off, n = 8, 16
	}
	b.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: si.nft.Name, SetID: si.nft.ID, Invert: m.Not})
	return nil
}

func (a DNATMap) compile(b *builder) error {
	addrs, err := b.set(a.AddrMap, []Datatype{InetService}, a.Family.AddrType())
	if err != nil {
		return err
	}
	ports, err := b.set(a.PortMap, []Datatype{InetService}, InetService)
	if err != nil {
		return err
	}
	if a.Proto != TCP && a.Proto != UDP {
		return fmt.Errorf("dport needs tcp or udp, not %s", a.Proto)
	}
	if b.family != a.Family {
		return fmt.Errorf("dnat to %s in a rule not restricted to %s", a.Family, a.Family)
	}
	if err := b.needProto(a.Proto); err != nil {
		return err
	}
	fam := uint32(unix.NFPROTO_IPV4)
	if a.Family == IPv6 {
		fam = unix.NFPROTO_IPV6
	}
	b.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: addrs.nft.Name, SetID: addrs.nft.ID},
		&expr.Payload{DestRegister: 2, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 2, DestRegister: 2, IsDestRegSet: true, SetName: ports.nft.Name, SetID: ports.nft.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
	return nil
}

func (b *builder) add(e ...expr.Any) { b.exprs = append(b.exprs, e...) }

func (b *builder) needFamily(f Family) error {
	if b.family == f {
		return nil
	}
	if b.family != 0 {
		return fmt.Errorf("matches both %s and %s", b.family, f)
	}
	b.family = f
	proto := byte(unix.NFPROTO_IPV4)
	if f == IPv6 {
		proto = unix.NFPROTO_IPV6
	}
	b.add(&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
	return nil
}

func (b *builder) needProto(p Proto) error {
	if b.proto == p {
		return nil
	}
	if b.proto != 0 {
		return fmt.Errorf("matches both %s and %s", b.proto, p)
	}
	b.proto = p
	b.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(p)}})
	return nil
}

func (r Rule) compile(b *builder) error {
	for _, m := range r.Match {
		if err := m.compile(b); err != nil {
			return err
		}
	}
	if r.Action == nil {
		return nil
	}
	return r.Action.compile(b)
}

func cmpOp(not bool) expr.CmpOp {
	if not {
		return expr.CmpOpNeq
	}
	return expr.CmpOpEq
}

func (m NFProto) compile(b *builder) error { return b.needFamily(Family(m)) }
func (m L4Proto) compile(b *builder) error { return b.needProto(Proto(m)) }

func (m IIFName) compile(b *builder) error { return ifname(b, expr.MetaKeyIIFNAME, m.Name, m.Not) }
func (m OIFName) compile(b *builder) error { return ifname(b, expr.MetaKeyOIFNAME, m.Name, m.Not) }

// validIfName keeps interface names to what the kernel allows and the
// text renders unchanged (no quotes, no wildcard).
func validIfName(name string) bool {
	return len(name) > 0 && len(name) < unix.IFNAMSIZ && !strings.ContainsAny(name, "\"\\*") && cleanComment(name) == name
}

func ifname(b *builder, key expr.MetaKey, name string, not bool) error {
	if !validIfName(name) {
		return fmt.Errorf("bad interface name %q", name)
	}
	data := make([]byte, unix.IFNAMSIZ)
	copy(data, name)
	b.add(&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: cmpOp(not), Register: 1, Data: data})
	return nil
}

func (m SAddr) compile(b *builder) error { return addr(b, m.Prefix, true, m.Not) }
func (m DAddr) compile(b *builder) error { return addr(b, m.Prefix, false, m.Not) }

// addr loads as many bytes of the address as the prefix covers and masks
// the last one when the prefix is not on a byte boundary, as nft does.
func addr(b *builder, p netip.Prefix, src, not bool) error {
	if !p.IsValid() {
		return errors.New("invalid prefix")
	}
	p = p.Masked()
	f := FamilyOf(p.Addr())
	if err := b.needFamily(f); err != nil {
		return err
	}
	var off uint32
	switch {
	case f == IPv4 && src:
		off = 12
	case f == IPv4:
		off = 16
	case src:
		off = 8
	default:
		off = 24
	}
	bits := p.Bits()
	full := p.Addr().AsSlice()
	if bits == 0 {
		return nil // the whole family: nfproto alone
	}
	// On a byte boundary nft loads only the prefix's bytes; otherwise the
	// whole address, masked.
	if bits%8 == 0 {
		raw := full[:bits/8]
		b.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(len(raw))},
			&expr.Cmp{Op: cmpOp(not), Register: 1, Data: raw})
		return nil
	}
	n := uint32(len(full))
	mask := make([]byte, n)
	for i := range bits / 8 {
		mask[i] = 0xff
	}
	mask[bits/8] = byte(0xff << (8 - bits%8))
	b.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
		&expr.Cmp{Op: cmpOp(not), Register: 1, Data: full})
	return nil
}

func (m DPort) compile(b *builder) error {
	if m.Proto != TCP && m.Proto != UDP {
		return fmt.Errorf("dport needs tcp or udp, not %s", m.Proto)
	}
	if err := b.needProto(m.Proto); err != nil {
		return err
	}
	b.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(m.Port)})
	return nil
}

func (LocalDAddr) compile(b *builder) error {
	b.add(&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)})
	return nil
}

func (m CtState) compile(b *builder) error { return ctBits(b, expr.CtKeySTATE, uint32(m)) }

// IPS_DST_NAT in the conntrack status bits.
const ipsDstNAT = 1 << 5

func (CtDNAT) compile(b *builder) error { return ctBits(b, expr.CtKeySTATUS, ipsDstNAT) }

func ctBits(b *builder, key expr.CtKey, bits uint32) error {
	b.add(&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	return nil
}

func (v Verdict) compile(b *builder) error {
	switch v {
	case Accept:
		b.add(&expr.Verdict{Kind: expr.VerdictAccept})
	case Drop:
		b.add(&expr.Verdict{Kind: expr.VerdictDrop})
	case Return:
		b.add(&expr.Verdict{Kind: expr.VerdictReturn})
	default:
		return fmt.Errorf("unknown verdict %d", int(v))
	}
	return nil
}

func (a Jump) compile(b *builder) error {
	if !b.chains[a.Chain] {
		return fmt.Errorf("jump to unknown chain %q", a.Chain)
	}
	b.add(&expr.Verdict{Kind: expr.VerdictJump, Chain: a.Chain})
	return nil
}

func (a DNAT) compile(b *builder) error {
	if !a.To.IsValid() || a.To.Port() == 0 {
		return fmt.Errorf("bad dnat target %s", a.To)
	}
	to := a.To.Addr().Unmap()
	f := FamilyOf(to)
	// nft refuses "dnat ip to" without the rule being about IPv4.
	if b.family != f {
		return fmt.Errorf("dnat to %s in a rule not restricted to %s", to, f)
	}
	fam := uint32(unix.NFPROTO_IPV4)
	if f == IPv6 {
		fam = unix.NFPROTO_IPV6
	}
	b.add(&expr.Immediate{Register: 1, Data: to.AsSlice()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(a.To.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
	return nil
}

func (Masquerade) compile(b *builder) error {
	b.add(&expr.Masq{})
	return nil
}
