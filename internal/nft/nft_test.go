package nft_test

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/darse/darse/internal/firewall/firewalltest"
	"github.com/darse/darse/internal/nft"
	"github.com/darse/darse/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// every is a table using each match and action of the package once.
func every(name string) *nft.Table {
	a4 := func(s string) nft.Address { return nft.Address(netip.MustParseAddr(s)) }
	return &nft.Table{Name: name, Sets: []*nft.Set{
		{Name: "tcp4addr", Key: []nft.Datatype{nft.InetService}, Data: nft.IPv4Addr, Elements: []nft.Element{
			{Key: []nft.Value{nft.Port(40080)}, Data: a4("172.20.0.3")},
			{Key: []nft.Value{nft.Port(40081)}, Data: a4("172.20.0.4")},
		}},
		{Name: "tcp4port", Key: []nft.Datatype{nft.InetService}, Data: nft.InetService, Elements: []nft.Element{
			{Key: []nft.Value{nft.Port(40080)}, Data: nft.Port(80)},
			{Key: []nft.Value{nft.Port(40081)}, Data: nft.Port(8080)},
		}},
		{Name: "udp6addr", Key: []nft.Datatype{nft.InetService}, Data: nft.IPv6Addr, Elements: []nft.Element{
			{Key: []nft.Value{nft.Port(40053)}, Data: a4("fd42:1::3")},
		}},
		{Name: "udp6port", Key: []nft.Datatype{nft.InetService}, Data: nft.InetService, Elements: []nft.Element{
			{Key: []nft.Value{nft.Port(40053)}, Data: nft.Port(53)},
		}},
		{Name: "in_tcp4", Key: []nft.Datatype{nft.IPv4Addr, nft.InetService}, Elements: []nft.Element{
			{Key: []nft.Value{a4("172.20.0.3"), nft.Port(80)}},
			{Key: []nft.Value{a4("172.20.0.4"), nft.Port(8080)}},
		}},
		{Name: "in_udp6", Key: []nft.Datatype{nft.IPv6Addr, nft.InetService}, Elements: []nft.Element{
			{Key: []nft.Value{a4("fd42:1::3"), nft.Port(53)}},
		}},
		{Name: "empty", Key: []nft.Datatype{nft.IPv4Addr, nft.InetService}},
		{Name: "bridges", Key: []nft.Datatype{nft.IfName}, Elements: []nft.Element{
			{Key: []nft.Value{nft.Interface("br-0123456789ab")}},
			{Key: []nft.Value{nft.Interface("docker0")}},
		}},
		{Name: "trusted4", Key: []nft.Datatype{nft.IPv4Addr}, Elements: []nft.Element{
			{Key: []nft.Value{a4("172.20.0.9")}},
		}},
		{Name: "trusted6", Key: []nft.Datatype{nft.IPv6Addr}},
	}, Chains: []*nft.Chain{
		{Name: "prerouting", Type: nft.NAT, Hook: nft.Prerouting, Priority: -110, Policy: nft.Accept, Rules: []nft.Rule{
			{Match: []nft.Match{nft.LocalDAddr{}}, Action: nft.Jump{Chain: "expose"}},
		}},
		{Name: "output", Type: nft.NAT, Hook: nft.Output, Priority: -110, Policy: nft.Accept, Rules: []nft.Rule{
			{Match: []nft.Match{nft.DAddr{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}, Action: nft.Return},
			{Match: []nft.Match{nft.DAddr{Prefix: netip.MustParsePrefix("::1/128")}}, Action: nft.Return},
			{Match: []nft.Match{nft.LocalDAddr{}}, Action: nft.Jump{Chain: "expose"}},
		}},
		{Name: "expose", Rules: []nft.Rule{
			{Match: []nft.Match{nft.NFProto(nft.IPv4), nft.DPort{Proto: nft.TCP, Port: 40022}},
				Action: nft.DNAT{To: netip.MustParseAddrPort("172.20.0.2:22")}, Comment: `web "1"`},
			{Match: []nft.Match{nft.DAddr{Prefix: netip.MustParsePrefix("192.0.2.10/32")}, nft.DPort{Proto: nft.UDP, Port: 40053}},
				Action: nft.DNAT{To: netip.MustParseAddrPort("172.20.0.2:53")}},
			{Match: []nft.Match{nft.NFProto(nft.IPv6), nft.DPort{Proto: nft.TCP, Port: 40022}},
				Action: nft.DNAT{To: netip.MustParseAddrPort("[fd42:1::2]:22")}},
			{Match: []nft.Match{nft.NFProto(nft.IPv4)}, Action: nft.DNATMap{Family: nft.IPv4, Proto: nft.TCP, AddrMap: "tcp4addr", PortMap: "tcp4port"}},
			{Match: []nft.Match{nft.NFProto(nft.IPv6)}, Action: nft.DNATMap{Family: nft.IPv6, Proto: nft.UDP, AddrMap: "udp6addr", PortMap: "udp6port"}},
		}},
		{Name: "forward", Type: nft.Filter, Hook: nft.Forward, Priority: -10, Policy: nft.Accept, Rules: []nft.Rule{
			{Match: []nft.Match{nft.CtEstablished | nft.CtRelated}, Action: nft.Accept},
			{Match: []nft.Match{nft.OIFName{Name: "br-0123456789ab"}}, Action: nft.Jump{Chain: "inbound"}},
		}},
		{Name: "inbound", Rules: []nft.Rule{
			{Match: []nft.Match{nft.IIFName{Name: "br-0123456789ab"}, nft.OIFName{Name: "br-0123456789ab"}}, Action: nft.Accept},
			{Match: []nft.Match{nft.DAddr{Prefix: netip.MustParsePrefix("172.20.0.2/32")}, nft.DPort{Proto: nft.TCP, Port: 22}, nft.CtDNAT{}}, Action: nft.Accept},
			{Match: []nft.Match{nft.DAddrDPortIn{Family: nft.IPv4, Proto: nft.TCP, Set: "in_tcp4"}, nft.CtDNAT{}}, Action: nft.Accept},
			{Match: []nft.Match{nft.DAddrDPortIn{Family: nft.IPv6, Proto: nft.UDP, Set: "in_udp6"}, nft.CtDNAT{}}, Action: nft.Accept},
			{Match: []nft.Match{nft.DAddrDPortIn{Family: nft.IPv4, Proto: nft.UDP, Set: "empty"}}, Action: nft.Accept},
			{Action: nft.Drop},
		}},
		{Name: "postrouting", Type: nft.NAT, Hook: nft.Postrouting, Priority: 90, Policy: nft.Accept, Rules: []nft.Rule{
			{Match: []nft.Match{nft.SAddr{Prefix: netip.MustParsePrefix("fd42:1::/64")}, nft.OIFName{Name: "br-0123456789ab", Not: true}}, Action: nft.Masquerade{}},
			{Match: []nft.Match{nft.SAddr{Prefix: netip.MustParsePrefix("10.1.16.0/20")}, nft.OIFName{Name: "br-0123456789ab", Not: true}}, Action: nft.Masquerade{}},
		}},
		{Name: "input", Type: nft.Filter, Hook: nft.Input, Priority: -10, Policy: nft.Drop, Rules: []nft.Rule{
			{Match: []nft.Match{nft.CtInvalid}, Action: nft.Drop},
			{Match: []nft.Match{nft.IIFName{Name: "lo"}}, Action: nft.Accept},
			{Match: []nft.Match{nft.L4Proto(nft.ICMP)}, Action: nft.Accept},
			{Match: []nft.Match{nft.L4Proto(nft.ICMPv6)}, Action: nft.Accept},
			{Match: []nft.Match{nft.DPort{Proto: nft.TCP, Port: 22}}, Action: nft.Accept},
			{Match: []nft.Match{nft.SAddr{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Not: true}, nft.DPort{Proto: nft.TCP, Port: 8080}}, Action: nft.Drop},
			{Match: []nft.Match{nft.SAddr{Prefix: netip.MustParsePrefix("fd42:1::/60")}, nft.DAddr{Prefix: netip.MustParsePrefix("fd42:2::1/128")}, nft.DPort{Proto: nft.UDP, Port: 53}}, Action: nft.Accept},
		}},
		{Name: "tenant", Type: nft.Filter, Hook: nft.Input, Priority: -20, Policy: nft.Accept, Rules: []nft.Rule{
			{Match: []nft.Match{nft.IIFNameIn{Set: "bridges"}}, Action: nft.Jump{Chain: "from_tenant"}},
		}},
		{Name: "from_tenant", Rules: []nft.Rule{
			{Match: []nft.Match{nft.SAddrIn{Family: nft.IPv4, Set: "trusted4"}}, Action: nft.Return},
			{Match: []nft.Match{nft.SAddrIn{Family: nft.IPv6, Set: "trusted6", Not: true}, nft.DPort{Proto: nft.TCP, Port: 22}}, Action: nft.Drop},
			{Match: []nft.Match{nft.OIFNameIn{Set: "bridges"}, nft.CtDNAT{}}, Action: nft.Drop},
		}},
	}}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestText(t *testing.T) {
	golden(t, "every.nft", every("darse").Text())
}

func TestHashFollowsContent(t *testing.T) {
	a, b := every("darse"), every("darse")
	if a.Hash() != b.Hash() {
		t.Fatal("equal tables hash differently")
	}
	b.Chains[2].Rules[0].Comment = "other"
	if a.Hash() == b.Hash() {
		t.Fatal("different tables hash the same")
	}
	b = every("darse")
	b.Sets[0].Elements[0].Data = nft.Address(netip.MustParseAddr("172.20.0.9"))
	if a.Hash() == b.Hash() {
		t.Fatal("different tables hash the same")
	}
}

// The batch only ever names darse's table: no flush ruleset, no message
// about any other table, one batch.
func TestBatchTouchesOnlyItsTable(t *testing.T) {
	var msgs []netlink.Message
	c := nft.New(nft.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		msgs = append(msgs, req...)
		return req, nil
	}))
	tbl := every("darse_x")
	if err := c.Apply(context.Background(), tbl); err != nil {
		t.Fatal(err)
	}
	const subsys = unix.NFNL_SUBSYS_NFTABLES << 8
	var kinds []string
	rules := 0
	for i, m := range msgs {
		typ := int(m.Header.Type)
		switch {
		case typ == unix.NFNL_MSG_BATCH_BEGIN:
			kinds = append(kinds, "begin")
			continue
		case typ == unix.NFNL_MSG_BATCH_END:
			kinds = append(kinds, "end")
			continue
		case typ&^0xff != subsys:
			t.Fatalf("message %d: not nftables: type %#x", i, typ)
		}
		if fam := m.Data[0]; fam != unix.NFPROTO_INET {
			t.Errorf("message %d: family %d, want inet", i, fam)
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			t.Fatal(err)
		}
		table := ""
		for ad.Next() {
			if ad.Type() == 1 { // NFTA_{TABLE_NAME,CHAIN_TABLE,RULE_TABLE}
				table = ad.String()
			}
		}
		if table != "darse_x" {
			t.Errorf("message %d (type %#x) names table %q", i, typ, table)
		}
		switch typ & 0xff {
		case unix.NFT_MSG_NEWTABLE:
			kinds = append(kinds, "newtable")
		case unix.NFT_MSG_DELTABLE:
			kinds = append(kinds, "deltable")
		case unix.NFT_MSG_NEWSET, unix.NFT_MSG_NEWSETELEM:
			if kinds[len(kinds)-1] != "newset" {
				kinds = append(kinds, "newset")
			}
		case unix.NFT_MSG_NEWCHAIN:
			if kinds[len(kinds)-1] != "newchain" {
				kinds = append(kinds, "newchain")
			}
		case unix.NFT_MSG_NEWRULE:
			rules++
			if kinds[len(kinds)-1] != "newrule" {
				kinds = append(kinds, "newrule")
			}
		default:
			t.Errorf("message %d: unexpected type %#x", i, typ)
		}
	}
	if got, want := strings.Join(kinds, " "), "begin newtable deltable newtable newset newchain newrule end"; got != want {
		t.Errorf("batch = %s, want %s", got, want)
	}
	want := 1 // the version rule
	for _, c := range tbl.Chains {
		want += len(c.Rules)
	}
	if rules != want {
		t.Errorf("%d rules sent, want %d", rules, want)
	}
}

func TestApplyRefusesBadTables(t *testing.T) {
	c := nft.New(nft.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		t.Fatal("a bad table reached netlink")
		return nil, nil
	}))
	for name, tbl := range map[string]*nft.Table{
		"table name": {Name: "bad name"},
		"jump":       {Name: "t", Chains: []*nft.Chain{{Name: "c", Rules: []nft.Rule{{Action: nft.Jump{Chain: "nowhere"}}}}}},
		"dnat family": {Name: "t", Chains: []*nft.Chain{{Name: "c", Rules: []nft.Rule{{
			Match: []nft.Match{nft.DPort{Proto: nft.TCP, Port: 1}}, Action: nft.DNAT{To: netip.MustParseAddrPort("10.0.0.1:1")}}}}}},
		"two families": {Name: "t", Chains: []*nft.Chain{{Name: "c", Rules: []nft.Rule{{
			Match: []nft.Match{nft.NFProto(nft.IPv4), nft.DAddr{Prefix: netip.MustParsePrefix("::1/128")}}, Action: nft.Accept}}}}},
		"unknown set": {Name: "t", Chains: []*nft.Chain{{Name: "c", Rules: []nft.Rule{{
			Match: []nft.Match{nft.DAddrDPortIn{Family: nft.IPv4, Proto: nft.TCP, Set: "nope"}}, Action: nft.Accept}}}}},
		"set type": {Name: "t", Sets: []*nft.Set{{Name: "s", Key: []nft.Datatype{nft.IPv6Addr, nft.InetService}}}, Chains: []*nft.Chain{{Name: "c", Rules: []nft.Rule{{
			Match: []nft.Match{nft.DAddrDPortIn{Family: nft.IPv4, Proto: nft.TCP, Set: "s"}}, Action: nft.Accept}}}}},
		"element": {Name: "t", Sets: []*nft.Set{{Name: "s", Key: []nft.Datatype{nft.IPv4Addr, nft.InetService},
			Elements: []nft.Element{{Key: []nft.Value{nft.Port(1), nft.Port(2)}}}}}},
		"ifname": {Name: "t", Chains: []*nft.Chain{{Name: "c", Rules: []nft.Rule{{
			Match: []nft.Match{nft.IIFName{Name: "a-very-long-interface-name"}}, Action: nft.Accept}}}}},
		"ifname element": {Name: "t", Sets: []*nft.Set{{Name: "s", Key: []nft.Datatype{nft.IfName},
			Elements: []nft.Element{{Key: []nft.Value{nft.Interface("a-very-long-interface-name")}}}}}},
		"ifname quote": {Name: "t", Sets: []*nft.Set{{Name: "s", Key: []nft.Datatype{nft.IfName},
			Elements: []nft.Element{{Key: []nft.Value{nft.Interface(`br"x`)}}}}}},
		"saddr set type": {Name: "t", Sets: []*nft.Set{{Name: "s", Key: []nft.Datatype{nft.IPv6Addr}}}, Chains: []*nft.Chain{{Name: "c", Rules: []nft.Rule{{
			Match: []nft.Match{nft.SAddrIn{Family: nft.IPv4, Set: "s"}}, Action: nft.Accept}}}}},
		"iifname set type": {Name: "t", Sets: []*nft.Set{{Name: "s", Key: []nft.Datatype{nft.IPv4Addr}}}, Chains: []*nft.Chain{{Name: "c", Rules: []nft.Rule{{
			Match: []nft.Match{nft.IIFNameIn{Set: "s"}}, Action: nft.Accept}}}}},
	} {
		if err := c.Apply(context.Background(), tbl); err == nil {
			t.Errorf("%s: applied", name)
		}
	}
}

func needNetns(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
	if m := firewalltest.MissingTool(); m != "" {
		if testenv.Required() {
			t.Fatalf("needs %s (DARSE_INTEGRATION=require)", m)
		}
		t.Skip("needs " + m)
	}
}

// What netlink puts in the kernel is what nft -f makes of the text: both
// loaded into scratch namespaces, nft lists them the same.
func TestApplyEqualsText(t *testing.T) {
	needNetns(t)
	ctx := context.Background()
	viaNetlink, viaText := firewalltest.Scratch(t), firewalltest.Scratch(t)
	tbl := every("darse")
	if err := nft.New(nft.WithNetNS(viaNetlink.FD())).Apply(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	if _, err := viaText.Exec(tbl.Text(), "nft", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	got, err := viaNetlink.List("darse")
	if err != nil {
		t.Fatal(err)
	}
	want, err := viaText.List("darse")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("netlink and nft -f differ:\n--- netlink\n%s--- nft -f\n%s", got, want)
	}
	h, err := nft.New(nft.WithNetNS(viaNetlink.FD())).Applied(ctx, "darse")
	if err != nil || h != tbl.Hash() {
		t.Errorf("Applied = %q, %v; want %q", h, err, tbl.Hash())
	}
}

// A batch the kernel refuses leaves the previous table as it was, and a
// foreign table (Docker's, say) is never touched.
func TestApplyAtomicAndForeignTablesKept(t *testing.T) {
	needNetns(t)
	ctx := context.Background()
	ns := firewalltest.Scratch(t)
	docker := `table ip filter {
	chain FORWARD {
		type filter hook forward priority filter; policy drop;
		oifname "docker0" ct state related,established counter accept
	}
}
table ip nat {
	chain PREROUTING {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local counter jump DOCKER
	}
	chain DOCKER {
	}
}
`
	if _, err := ns.Exec(docker, "nft", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	ruleset := func() string {
		out, err := ns.Exec("", "nft", "list", "ruleset")
		if err != nil {
			t.Fatal(err)
		}
		return firewalltest.Normalize(out)
	}
	foreign := ruleset()
	c := nft.New(nft.WithNetNS(ns.FD()))
	if drops, err := c.ForwardDrops(ctx); err != nil || !drops {
		t.Errorf("ForwardDrops = %v, %v; want true", drops, err)
	}
	good := every("darse")
	if err := c.Apply(ctx, good); err != nil {
		t.Fatal(err)
	}
	before, _ := ns.List("darse")
	// DNAT in a filter chain: the package lets it through, the kernel
	// refuses it, after the table was already deleted in the same batch.
	bad := every("darse")
	bad.Chains[3].Rules = append(bad.Chains[3].Rules, nft.Rule{
		Match: []nft.Match{nft.NFProto(nft.IPv4)}, Action: nft.DNAT{To: netip.MustParseAddrPort("10.0.0.1:1")}})
	if err := c.Apply(ctx, bad); err == nil {
		t.Fatal("the kernel accepted dnat in a filter chain")
	}
	after, _ := ns.List("darse")
	if after != before {
		t.Errorf("a failed apply changed the table:\n--- before\n%s--- after\n%s", before, after)
	}
	if h, _ := c.Applied(ctx, "darse"); h != good.Hash() {
		t.Errorf("Applied after a failure = %q, want the previous %q", h, good.Hash())
	}
	if err := c.Delete(ctx, "darse"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "darse"); err != nil {
		t.Errorf("deleting an absent table: %v", err)
	}
	if got := ruleset(); got != foreign {
		t.Errorf("foreign tables changed:\n--- before\n%s--- after\n%s", foreign, got)
	}
	if h, err := c.Applied(ctx, "darse"); h != "" || err != nil {
		t.Errorf("Applied without a table = %q, %v", h, err)
	}
}

// Thousands of rules in one batch: the kernel's acks must not overflow
// the socket (ENOBUFS).
func TestApplyLargeTable(t *testing.T) {
	needNetns(t)
	ns := firewalltest.Scratch(t)
	tbl := &nft.Table{Name: "darse", Chains: []*nft.Chain{{Name: "many"}}}
	for i := range 5000 {
		tbl.Chains[0].Rules = append(tbl.Chains[0].Rules, nft.Rule{
			Match:   []nft.Match{nft.DPort{Proto: nft.TCP, Port: uint16(10000 + i)}},
			Action:  nft.Accept,
			Comment: "a comment long enough to weigh on the acks of the batch",
		})
	}
	c := nft.New(nft.WithNetNS(ns.FD()))
	for range 2 {
		if err := c.Apply(context.Background(), tbl); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := c.Applied(context.Background(), "darse"); err != nil || h != tbl.Hash() {
		t.Errorf("Applied = %q, %v", h, err)
	}
}
