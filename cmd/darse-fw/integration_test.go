package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/firewall"
	"github.com/darse/darse/internal/firewall/firewalltest"
	"github.com/darse/darse/internal/nft"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/testenv"
)

// lab is one test's real parts: a dual-stack Docker network and a client
// namespace of its own, the echo image, and darse-fw managing only what
// carries the test's label, in a table of its own.
type lab struct {
	t      *testing.T
	id     string
	label  string // KEY=VALUE on every container and network of the test
	table  string
	image  string
	net    *firewalltest.Network
	client *firewalltest.Client
	bin    string
	eng    *engine.Engine
	// flags are darse-fw's extra flags, opts the same options for desired.
	flags []string
	opts  firewall.Options
}

func newLab(t *testing.T) *lab {
	t.Helper()
	testenv.NeedEngine(t)
	if m := firewalltest.MissingTool(); m != "" {
		t.Fatalf("needs %s", m)
	}
	id := fmt.Sprintf("%06x", rand.IntN(1<<24))
	l := &lab{t: t, id: id, label: "darse.fwtest=" + id, table: "darse_t" + id}
	a := build()
	if a.err != nil {
		t.Fatal(a.err)
	}
	l.image, l.bin = a.image, a.bin
	if drops, err := nft.New().ForwardDrops(context.Background()); err != nil {
		t.Fatal(err)
	} else if drops {
		t.Fatal("Docker's ip filter FORWARD policy is drop: IPv4 exposures of unpublished ports cannot be reached; scripts/host.sh sets it to accept (README, Firewall)")
	}
	eng, err := engine.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l.eng = eng
	t.Cleanup(func() { eng.Close() })
	l.net = firewalltest.NewTestNetwork(t, "dfwt-"+id, firewalltest.Subnet6(), l.label)
	t.Cleanup(func() {
		// Containers first (cleanups run last-in first-out, the network's
		// was registered before this one), then darse's table of the test.
		if ids, _ := firewalltest.Docker("ps", "-aq", "--filter", "label="+l.label); ids != "" {
			firewalltest.Docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		exec.Command("nft", "delete", "table", "inet", l.table).Run()
	})
	l.client = firewalltest.NewTestClient(t)
	return l
}

// artifacts are built once for all the tests: the echo image and darse-fw.
type artifacts struct {
	image, bin string
	err        error
}

var binDir = filepath.Join(os.TempDir(), fmt.Sprintf("darse-fw-test-%d", os.Getpid()))

var build = sync.OnceValue(func() artifacts {
	image, err := firewalltest.EchoImage()
	if err != nil {
		return artifacts{err: err}
	}
	bin := filepath.Join(binDir, "darse-fw")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return artifacts{err: fmt.Errorf("go build: %v: %s", err, out)}
	}
	return artifacts{image: image, bin: bin}
})

func TestMain(m *testing.M) {
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// hostPort is a member port for this test, away from other tests' ports.
func hostPort() int { return 40000 + rand.IntN(10001) }

// fw is a running darse-fw.
type fw struct {
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan struct{}
}

type lockedBuffer = testenv.Buffer

// start runs darse-fw for the lab; env adds variables (DOCKER_HOST).
func (l *lab) start(env ...string) *fw {
	l.t.Helper()
	args := []string{"--table", l.table, "--label", l.label,
		"--debounce-min", "5ms", "--debounce-max", "50ms", "--resync", "2s", "--retry-max", "500ms", "--log-level", "debug"}
	cmd := exec.Command(l.bin, append(args, l.flags...)...)
	cmd.Env = append(os.Environ(), env...)
	f := &fw{cmd: cmd, logs: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = f.logs, f.logs
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { cmd.Wait(); close(f.done) }()
	l.t.Cleanup(func() {
		f.kill()
		if l.t.Failed() {
			l.t.Logf("darse-fw log:\n%s", f.logs.String())
		}
	})
	return f
}

// kill stops darse-fw the hard way (SIGKILL: no chance to tidy up).
func (f *fw) kill() {
	f.cmd.Process.Signal(syscall.SIGKILL)
	<-f.done
}

// run starts an echo container of the lab with extra docker run
// arguments and returns its name.
func (l *lab) run(name string, args ...string) string {
	l.t.Helper()
	name = "dfwt-" + l.id + "-" + name
	a := append([]string{"run", "-d", "--name", name, "--label", l.label, "--network", l.net.Name}, args...)
	a = append(a, l.image, "tcp:8080", "tcp:8081", "udp:5353")
	if _, err := firewalltest.Docker(a...); err != nil {
		l.t.Fatal(err)
	}
	return name
}

// exposeArgs labels an exposure: the labels alone make the port reachable,
// Docker publishes nothing.
func exposeArgs(name string, port, hostPort int, proto string) []string {
	p := fmt.Sprintf("darse.expose.%s.", name)
	return []string{
		"--label", p + "port=" + strconv.Itoa(port),
		"--label", p + "hostport=" + strconv.Itoa(hostPort),
		"--label", p + "protocol=" + proto,
	}
}

// desired is the table darse-fw should hold now, listed by nft after
// loading `darse fw render`'s text into a scratch namespace.
func (l *lab) desired() string {
	l.t.Helper()
	ctx := context.Background()
	st, err := l.eng.Firewall(l.label).Snapshot(ctx)
	if err != nil {
		l.t.Fatal(err)
	}
	drops, err := nft.New().ForwardDrops(ctx)
	if err != nil {
		l.t.Fatal(err)
	}
	o := l.opts
	o.Table, o.Srv, o.DockerForwardDrop = l.table, "/srv", drops
	r := firewall.Build(st, o)
	ns := firewalltest.Scratch(l.t)
	if _, err := ns.Exec(r.Text(), "nft", "-f", "-"); err != nil {
		l.t.Fatal(err)
	}
	want, err := ns.List(l.table)
	if err != nil {
		l.t.Fatal(err)
	}
	return want
}

// waitDesired waits until the host's table equals desired().
func (l *lab) waitDesired(within time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(within)
	var got, want string
	for time.Now().Before(deadline) {
		want = l.desired()
		var err error
		if got, err = firewalltest.HostList(l.table); err != nil {
			l.t.Fatal(err)
		}
		if got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.t.Fatalf("table inet %s is not the desired one after %s:\n--- host\n%s--- desired\n%s", l.table, within, got, want)
}

// reach checks a TCP exposure from the client over both families: the
// container answers with the client's own address.
func (l *lab) reach(hostPort int) {
	l.t.Helper()
	for _, c := range []struct{ host, client netip.Addr }{{l.client.Host4, l.client.Addr4}, {l.client.Host6, l.client.Addr6}} {
		got, _, err := l.client.WaitTCP(netip.AddrPortFrom(c.host, uint16(hostPort)), 3*time.Second)
		if err != nil {
			l.t.Fatal(err)
		}
		if got != c.client.String() {
			l.t.Errorf("via %s:%d the container saw %q, want the client's %s", c.host, hostPort, got, c.client)
		}
	}
}

// unreachable checks that nothing answers at to from the client.
func (l *lab) unreachable(to netip.AddrPort) {
	l.t.Helper()
	if got, err := l.client.TCP(to, 300*time.Millisecond); err == nil {
		l.t.Errorf("%s answered %q from the client; it must not be reachable", to, got)
	}
}

// dockerTables is Docker's ip filter and ip nat tables, normalised.
func dockerTables(t *testing.T, keep ...string) string {
	t.Helper()
	var b strings.Builder
	for _, tbl := range []string{"filter", "nat"} {
		out, err := exec.Command("nft", "list", "table", "ip", tbl).CombinedOutput()
		if err != nil {
			t.Fatalf("nft list table ip %s: %v: %s", tbl, err, out)
		}
		for _, line := range strings.Split(firewalltest.Normalize(string(out)), "\n") {
			structural := strings.Contains(line, "table ") || strings.Contains(line, "chain ") || strings.Contains(line, "policy")
			mine := false
			for _, k := range keep {
				mine = mine || strings.Contains(line, k)
			}
			if structural || mine {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// The "what it must show", on a real engine and real packets.
// Not parallel: it measures latency, so it runs alone before the others.
func TestExposeDualStack(t *testing.T) {
	l := newLab(t)
	// A container already on the network, as Traefik is on "front": the
	// bridge has finished its own duplicate address detection (~1-2s after
	// its first port comes up) when the measured container starts.
	l.run("anchor")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out, _ := exec.Command("ip", "-6", "addr", "show", "dev", l.net.Bridge).Output(); !strings.Contains(string(out), "tentative") {
			break
		}
	}
	l.start()
	l.waitDesired(10 * time.Second) // the first, empty, apply

	tcpPort, udpPort := hostPort(), hostPort()
	for udpPort == tcpPort {
		udpPort = hostPort()
	}
	// The start event, as the engine stamps it.
	events := exec.Command("docker", "events", "--filter", "label="+l.label, "--filter", "event=start", "--format", "{{.TimeNano}}")
	stdout, _ := events.StdoutPipe()
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	defer events.Process.Kill()
	startNano := make(chan int64, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		n, _ := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
		startNano <- n
	}()
	time.Sleep(100 * time.Millisecond) // let docker events subscribe
	// Probe both families from the client while the container starts.
	type hit struct {
		family string
		at     time.Time
		err    error
	}
	hits := make(chan hit, 2)
	for _, host := range []netip.Addr{l.client.Host4, l.client.Host6} {
		go func() {
			_, at, err := l.client.WaitTCP(netip.AddrPortFrom(host, uint16(tcpPort)), 20*time.Second)
			hits <- hit{nft.FamilyOf(host).String(), at, err}
		}()
	}
	// When the IPv6 DNAT rule is in the kernel.
	ruled := make(chan time.Time, 1)
	go func() {
		for range 4000 {
			out, _ := exec.Command("nft", "list", "map", "inet", l.table, "expose_tcp6_addr").Output()
			if strings.Contains(string(out), fmt.Sprintf("%d : ", tcpPort)) {
				ruled <- time.Now()
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		ruled <- time.Time{}
	}()
	args := append(exposeArgs("web", 8080, tcpPort, "tcp"), exposeArgs("dns", 5353, udpPort, "udp")...)
	name := l.run("web", args...)
	var started time.Time
	select {
	case n := <-startNano:
		started = time.Unix(0, n)
	case <-time.After(10 * time.Second):
		t.Fatal("no start event")
	}
	if at := <-ruled; at.IsZero() {
		t.Fatal("no IPv6 DNAT rule in the kernel")
	} else {
		t.Logf("IPv6 rule in the kernel %v after the start event", at.Sub(started).Round(time.Millisecond))
		if at.Sub(started) > 200*time.Millisecond {
			t.Errorf("IPv6 rule in the kernel %v after the start event, want within 200ms", at.Sub(started))
		}
	}
	for range 2 {
		h := <-hits
		if h.err != nil {
			t.Fatal(h.err)
		}
		lat := h.at.Sub(started)
		t.Logf("%s reachable %v after the start event", h.family, lat.Round(time.Millisecond))
		if lat > 200*time.Millisecond {
			t.Errorf("%s: reachable %v after the start event, want within 200ms", h.family, lat)
		}
	}
	l.reach(tcpPort)
	for _, c := range []struct{ host, client netip.Addr }{{l.client.Host4, l.client.Addr4}, {l.client.Host6, l.client.Addr6}} {
		got, err := l.client.UDP(netip.AddrPortFrom(c.host, uint16(udpPort)), 2*time.Second)
		if err != nil || got != c.client.String() {
			t.Errorf("udp via %s:%d: got %q, %v; want the client's %s", c.host, udpPort, got, err, c.client)
		}
	}

	// Ports the container did not expose: not on the host, and not at the
	// container's own addresses either (only translated connections enter
	// a container network).
	c4, c6, err := firewalltest.Addresses(name, l.net.Name)
	if err != nil {
		t.Fatal(err)
	}
	l.unreachable(netip.AddrPortFrom(l.client.Host4, 8081))
	l.unreachable(netip.AddrPortFrom(l.client.Host6, 8081))
	l.unreachable(netip.AddrPortFrom(c6, 8081))
	l.unreachable(netip.AddrPortFrom(c6, 8080))
	l.unreachable(netip.AddrPortFrom(c4, 8081))

	// More applies leave Docker's chains, and its rules for this network
	// and container, as they were.
	before := dockerTables(t, l.net.Bridge, c4.String())
	other := l.run("other", exposeArgs("web", 8080, hostPort(), "tcp")...)
	l.waitDesired(5 * time.Second)
	firewalltest.Docker("rm", "-f", other)
	l.waitDesired(5 * time.Second)
	if after := dockerTables(t, l.net.Bridge, c4.String()); after != before {
		t.Errorf("Docker's tables changed:\n--- before\n%s--- after\n%s", before, after)
	}

	// Stopping removes the rules; removing too.
	if _, err := firewalltest.Docker("stop", "-t", "0", name); err != nil {
		t.Fatal(err)
	}
	l.waitDesired(5 * time.Second)
	if got, _ := firewalltest.HostList(l.table); strings.Contains(got, "dnat ip") { // "dnat ip to", "dnat ip6 to"; not "ct status dnat"
		t.Errorf("rules left after stop:\n%s", got)
	}
	l.unreachable(netip.AddrPortFrom(l.client.Host4, uint16(tcpPort)))
	l.unreachable(netip.AddrPortFrom(l.client.Host6, uint16(tcpPort)))
	if _, err := firewalltest.Docker("start", name); err != nil {
		t.Fatal(err)
	}
	l.reach(tcpPort)
	if _, err := firewalltest.Docker("rm", "-f", name); err != nil {
		t.Fatal(err)
	}
	l.waitDesired(5 * time.Second)
	l.unreachable(netip.AddrPortFrom(l.client.Host6, uint16(tcpPort)))
}

// The host's own connections to an exposed port are translated too
// (output path), and a container's outgoing IPv6 from the network's
// private prefix leaves with the host's address (masquerade), as IPv4
// does through Docker's own rule.
func TestLocalAndOutgoing(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.start()
	port := hostPort()
	name := l.run("web", exposeArgs("web", 8080, port, "tcp")...)
	l.waitDesired(5 * time.Second)
	for _, host := range []netip.Addr{l.client.Host4, l.client.Host6} {
		to := netip.AddrPortFrom(host, uint16(port))
		var got string
		var err error
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got, err = dialLine(to); err == nil {
				break
			}
		}
		if err != nil || got != host.String() {
			t.Errorf("from the host to %s: got %q, %v; want the container to see %s", to, got, err, host)
		}
	}
	for _, c := range []struct{ listen, want netip.Addr }{{l.client.Addr4, l.client.Host4}, {l.client.Addr6, l.client.Host6}} {
		at := netip.AddrPortFrom(c.listen, 9000)
		l.client.ServeTCP(t, at)
		got, err := firewalltest.Docker("exec", name, "/echo", "dial", at.String())
		if err != nil || got != c.want.String() {
			t.Errorf("from the container to %s: the client saw %q (%v), want the host's %s", at, got, err, c.want)
		}
	}
}

// dialLine connects from the host itself and reads one line.
func dialLine(to netip.AddrPort) (string, error) {
	c, err := net.DialTimeout("tcp", to.String(), 300*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// Ports an operator's compose project publishes are exposed by darse-fw
// too: over IPv6 the container sees the client itself, not Docker's
// userland proxy.
func TestPublishedPorts(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.start()
	port := hostPort()
	l.run("published", "-p", fmt.Sprintf("%d:8080", port))
	l.waitDesired(5 * time.Second)
	l.reach(port)
}

// Killing darse-fw, changing containers, restarting it: the table is the
// desired one after its resync.
func TestRestartResyncs(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	f := l.start()
	portA, portB := hostPort(), hostPort()
	a := l.run("a", exposeArgs("web", 8080, portA, "tcp")...)
	l.waitDesired(5 * time.Second)
	l.reach(portA)

	f.kill()
	if _, err := firewalltest.Docker("rm", "-f", a); err != nil {
		t.Fatal(err)
	}
	l.run("b", exposeArgs("web", 8080, portB, "tcp")...)
	l.start()
	l.waitDesired(5 * time.Second)
	l.reach(portB)
	l.unreachable(netip.AddrPortFrom(l.client.Host6, uint16(portA)))
}

// A Docker engine that goes away and comes back (cut here at a socket
// proxy, so other tests on the engine are not disturbed): events missed
// meanwhile leave neither stale nor missing rules.
func TestEngineReconnect(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	p := newSocketProxy(t, platform.EngineSocket(os.Getenv("DOCKER_HOST")))
	f := l.start("DOCKER_HOST=unix://" + p.path)
	portA, portB := hostPort(), hostPort()
	a := l.run("a", exposeArgs("web", 8080, portA, "tcp")...)
	l.waitDesired(5 * time.Second)

	p.cut()
	if _, err := firewalltest.Docker("rm", "-f", a); err != nil {
		t.Fatal(err)
	}
	l.run("b", exposeArgs("web", 8080, portB, "tcp")...)
	time.Sleep(300 * time.Millisecond)
	if !strings.Contains(f.logs.String(), "engine unreachable") {
		t.Errorf("darse-fw did not notice the engine going away")
	}
	p.restore()
	l.waitDesired(5 * time.Second)
	l.reach(portB)
	l.unreachable(netip.AddrPortFrom(l.client.Host4, uint16(portA)))
}

// Malformed labels are reported and ignored for that exposure; the
// container's other exposures and other containers keep working.
func TestMalformedLabels(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	f := l.start()
	good, port2 := hostPort(), hostPort()
	bad := l.run("bad",
		append(exposeArgs("ok", 8080, good, "tcp"),
			"--label", "darse.expose.port.port=eighty", "--label", "darse.expose.port.hostport=40001",
			"--label", "darse.expose.proto.port=8081", "--label", "darse.expose.proto.hostport=40002", "--label", "darse.expose.proto.protocol=icmp",
			"--label", "darse.expose.range.port=8081", "--label", "darse.expose.range.hostport=2222")...)
	l.run("fine", exposeArgs("web", 8080, port2, "tcp")...)
	l.waitDesired(5 * time.Second)
	l.reach(good)
	l.reach(port2)
	logs := f.logs.String()
	for _, want := range []string{
		"container=" + bad + ` exposure=port reason="port \"eighty\": must be a number"`,
		"container=" + bad + ` exposure=proto reason="protocol \"icmp\": must be tcp or udp"`,
		"container=" + bad + ` exposure=range reason="hostport \"2222\": must be between 40000 and 50000`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// socketProxy forwards a unix socket to the engine's and can be cut and
// restored, as an engine restart looks to a client.
type socketProxy struct {
	t      *testing.T
	path   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newSocketProxy(t *testing.T, target string) *socketProxy {
	p := &socketProxy{t: t, path: filepath.Join(t.TempDir(), "docker.sock"), target: target, conns: map[net.Conn]bool{}}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *socketProxy) restore() {
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
}

func (p *socketProxy) serve(c net.Conn) {
	up, err := net.Dial("unix", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// cut closes the listener and every connection: the engine is gone.
func (p *socketProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
	os.Remove(p.path)
}
