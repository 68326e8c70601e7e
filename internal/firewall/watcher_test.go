package firewall

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/nft"
)

func TestDebounce(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	for _, tc := range []struct {
		first, last time.Duration
		want        time.Duration
	}{
		{0, 0, 15 * ms},         // a lone event: min after it
		{0, 100 * ms, 115 * ms}, // a quiet gap: min after the latest
		{0, 140 * ms, 150 * ms}, // a long burst: capped at max after the first
		{0, 400 * ms, 150 * ms}, // (the cap has passed: fire now)
	} {
		got := debounce(t0.Add(tc.first), t0.Add(tc.last), 15*ms, 150*ms).Sub(t0)
		if got != tc.want {
			t.Errorf("debounce(first %v, last %v) = %v, want %v", tc.first, tc.last, got, tc.want)
		}
	}
}

// fakeEngine is an in-memory Source whose event stream the test drives
// and can break.
type fakeEngine struct {
	mu         sync.Mutex
	containers map[string]Container
	networks   []Network
	down       bool
	events     chan Event
	errs       chan error
	subscribed chan struct{}
	snapshots  int
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{containers: map[string]Container{}, subscribed: make(chan struct{}, 16)}
}

func (f *fakeEngine) Snapshot(ctx context.Context) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return State{}, errors.New("engine down")
	}
	f.snapshots++
	st := State{Networks: f.networks}
	for _, c := range f.containers {
		st.Containers = append(st.Containers, c)
	}
	return st, nil
}

func (f *fakeEngine) Container(ctx context.Context, id string) (Container, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return Container{}, false, errors.New("engine down")
	}
	c, ok := f.containers[id]
	return c, ok, nil
}

func (f *fakeEngine) Networks(ctx context.Context) ([]Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.networks, nil
}

func (f *fakeEngine) Events(ctx context.Context) (<-chan Event, <-chan error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, nil, errors.New("engine down")
	}
	f.events, f.errs = make(chan Event), make(chan error, 1)
	f.subscribed <- struct{}{}
	return f.events, f.errs, nil
}

// start runs a container (without an event: the caller sends it).
func (f *fakeEngine) start(c Container) {
	f.mu.Lock()
	f.containers[c.ID] = c
	f.mu.Unlock()
}

func (f *fakeEngine) stop(id string) {
	f.mu.Lock()
	delete(f.containers, id)
	f.mu.Unlock()
}

func (f *fakeEngine) send(ev Event) {
	f.mu.Lock()
	ch := f.events
	f.mu.Unlock()
	ch <- ev
}

// cut breaks the event stream and keeps the engine unreachable until
// restore.
func (f *fakeEngine) cut() {
	f.mu.Lock()
	f.down = true
	f.errs <- errors.New("connection reset")
	f.mu.Unlock()
}

func (f *fakeEngine) restore() {
	f.mu.Lock()
	f.down = false
	f.mu.Unlock()
}

// fakeKernel records applied tables; failing makes Apply fail.
type fakeKernel struct {
	mu      sync.Mutex
	table   *nft.Table
	applies int
	failing int // how many applies fail from now on
	applied chan *nft.Table
}

func newFakeKernel() *fakeKernel { return &fakeKernel{applied: make(chan *nft.Table, 100)} }

func (k *fakeKernel) Apply(ctx context.Context, t *nft.Table) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failing > 0 {
		k.failing--
		return errors.New("netlink: operation not supported")
	}
	k.table = t
	k.applies++
	k.applied <- t
	return nil
}

func (k *fakeKernel) Applied(ctx context.Context, name string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.table == nil {
		return "", nil
	}
	return k.table.Hash(), nil
}

func (k *fakeKernel) current() *nft.Table {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.table
}

func exposing(id string, created int64, hostPort int) Container {
	l, err := labels.Expose([]labels.Exposure{{Name: "ssh", Port: 22, HostPort: hostPort}})
	if err != nil {
		panic(err)
	}
	return Container{ID: id, Name: "c" + id, Created: time.Unix(created, 0), Labels: l,
		Endpoints: []Endpoint{{Network: "n", IPv4: netip.MustParseAddr("10.9.0." + id), IPv6: netip.MustParseAddr("fd42:9::" + id)}}}
}

type watch struct {
	t      *testing.T
	eng    *fakeEngine
	kernel *fakeKernel
	w      *Watcher
	logs   *syncBuffer
	cancel func()
	done   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startWatch(t *testing.T, eng *fakeEngine, kernel *fakeKernel, cfg Config) *watch {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	}
	w := NewWatcher(eng, kernel, cfg, log)
	ctx, cancel := context.WithCancel(context.Background())
	wt := &watch{t: t, eng: eng, kernel: kernel, w: w, logs: logs, cancel: cancel, done: make(chan struct{})}
	go func() {
		w.Run(ctx)
		close(wt.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-wt.done
		if t.Failed() {
			t.Logf("watcher log:\n%s", logs.String())
		}
	})
	select {
	case <-eng.subscribed:
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher did not subscribe")
	}
	return wt
}

// waitExposed waits for an apply whose table exposes exactly the host
// ports given (over IPv4, which every test container has).
func (wt *watch) waitExposed(ports ...int) {
	wt.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case tbl := <-wt.kernel.applied:
			if slices.Equal(exposedPorts(tbl), ports) {
				return
			}
		case <-deadline:
			wt.t.Fatalf("no apply exposing %v; current table:\n%s", ports, textOf(wt.kernel.current()))
		}
	}
}

// exposedPorts lists the host ports of the IPv4 TCP exposures of tbl.
func exposedPorts(tbl *nft.Table) []int {
	var ports []int
	for _, s := range tbl.Sets {
		if s.Name == "expose_tcp4_addr" {
			for _, e := range s.Elements {
				ports = append(ports, int(e.Key[0].(nft.Port)))
			}
		}
	}
	slices.Sort(ports)
	return ports
}

// stats waits for the counters to settle (an apply is counted just
// after the kernel took it) and returns them.
func (wt *watch) stats(ok func(Stats) bool) Stats {
	wt.t.Helper()
	var s Stats
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if s = wt.w.Stats(); ok(s) {
			break
		}
	}
	return s
}

func textOf(t *nft.Table) string {
	if t == nil {
		return "(none)"
	}
	return t.Text()
}

func TestWatcherSyncsAtStartAndOnEvents(t *testing.T) {
	eng, kernel := newFakeEngine(), newFakeKernel()
	eng.start(exposing("1", 1, 40001))
	wt := startWatch(t, eng, kernel, Config{})
	wt.waitExposed(40001)

	eng.start(exposing("2", 2, 40002))
	eng.send(Event{Container: "2", Action: "start"})
	wt.waitExposed(40001, 40002)

	eng.stop("1")
	eng.send(Event{Container: "1", Action: "die"})
	wt.waitExposed(40002)
	if s := wt.stats(func(s Stats) bool { return s.Applies == 3 }); s.Applies != 3 || s.Failures != 0 || s.Events != 2 {
		t.Errorf("stats %+v, want 3 applies, 2 events", s)
	}
}

// A burst of events is handled by one apply; events that change nothing
// apply nothing.
func TestWatcherDebouncesAndSkipsUnchanged(t *testing.T) {
	eng, kernel := newFakeEngine(), newFakeKernel()
	wt := startWatch(t, eng, kernel, Config{DebounceMin: 100 * time.Millisecond, DebounceMax: 3 * time.Second})
	wt.waitExposed()
	var ports []int
	for i := 1; i <= 20; i++ {
		id := string(rune('a' + i))
		ports = append(ports, 40000+i)
		c := exposing("1", int64(i), 40000+i)
		c.ID, c.Name = id, "c"+id
		eng.start(c)
		eng.send(Event{Container: id, Action: "start"})
	}
	wt.waitExposed(ports...)
	if n := wt.stats(func(s Stats) bool { return s.Applies >= 2 }).Applies; n != 2 {
		t.Errorf("%d applies for one burst, want 2 (start, burst)", n)
	}
	// An event about a container without exposures: same ruleset.
	eng.start(Container{ID: "z", Name: "plain"})
	eng.send(Event{Container: "z", Action: "start"})
	wt.stats(func(s Stats) bool { return s.Syncs >= 3 })
	if n := wt.w.Stats().Applies; n != 2 {
		t.Errorf("%d applies after a no-op event, want 2", n)
	}
	if s := wt.w.Stats(); s.Syncs < 3 {
		t.Errorf("stats %+v: the no-op event was not synced", s)
	}
}

// A failing apply keeps the previous table, is counted and retried until
// the kernel takes it.
func TestWatcherRetriesFailedApply(t *testing.T) {
	eng, kernel := newFakeEngine(), newFakeKernel()
	eng.start(exposing("1", 1, 40001))
	wt := startWatch(t, eng, kernel, Config{})
	wt.waitExposed(40001)
	before := kernel.current()

	kernel.mu.Lock()
	kernel.failing = 3
	kernel.mu.Unlock()
	eng.start(exposing("2", 2, 40002))
	eng.send(Event{Container: "2", Action: "start"})
	time.Sleep(5 * time.Millisecond)
	if kernel.current() != before {
		t.Error("the table changed while applies fail")
	}
	wt.waitExposed(40001, 40002)
	if s := wt.stats(func(s Stats) bool { return s.Applies == 2 }); s.Failures != 3 || s.Applies != 2 {
		t.Errorf("stats %+v, want 3 failures then 2 applies", s)
	}
	if !strings.Contains(wt.logs.String(), "apply failed; the previous rules stay") {
		t.Error("failure not logged")
	}
}

// Events missed while the engine is unreachable do not leave stale or
// missing rules: the reconnect resyncs fully.
func TestWatcherResyncsAfterReconnect(t *testing.T) {
	eng, kernel := newFakeEngine(), newFakeKernel()
	eng.start(exposing("1", 1, 40001))
	wt := startWatch(t, eng, kernel, Config{})
	wt.waitExposed(40001)

	eng.cut()
	eng.stop("1")
	eng.start(exposing("2", 2, 40002)) // no events: the stream is down
	time.Sleep(30 * time.Millisecond)
	eng.restore()
	select {
	case <-eng.subscribed:
	case <-time.After(5 * time.Second):
		t.Fatal("no resubscription")
	}
	wt.waitExposed(40002)
	if s := wt.stats(func(s Stats) bool { return s.Reconnects > 0 }); s.Reconnects == 0 {
		t.Errorf("stats %+v: no reconnect counted", s)
	}
}

// A restarted watcher that finds its ruleset already in the kernel does
// not apply it again; a periodic resync repairs a table changed behind
// its back.
func TestWatcherUsesKernelState(t *testing.T) {
	eng, kernel := newFakeEngine(), newFakeKernel()
	eng.start(exposing("1", 1, 40001))
	kernel.table = Build(State{Containers: []Container{exposing("1", 1, 40001)}}, Options{}).Table
	wt := startWatch(t, eng, kernel, Config{Resync: 50 * time.Millisecond})
	time.Sleep(20 * time.Millisecond)
	if n := wt.w.Stats().Applies; n != 0 {
		t.Fatalf("%d applies of a ruleset already in the kernel", n)
	}
	kernel.mu.Lock()
	kernel.table = &nft.Table{Name: "darse"} // someone emptied it
	kernel.mu.Unlock()
	wt.waitExposed(40001)
}

// Problems are logged when they appear, once, not on every sync.
func TestWatcherLogsProblemsOnce(t *testing.T) {
	eng, kernel := newFakeEngine(), newFakeKernel()
	bad := exposing("1", 1, 40001)
	bad.Labels["darse.expose.ssh.protocol"] = "sctp"
	eng.start(bad)
	eng.start(exposing("2", 2, 40002))
	wt := startWatch(t, eng, kernel, Config{Resync: 20 * time.Millisecond})
	wt.waitExposed(40002)
	time.Sleep(100 * time.Millisecond)
	logs := wt.logs.String()
	if n := strings.Count(logs, "exposure refused"); n != 1 {
		t.Errorf("refusal logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, "container=c1 exposure=ssh") || !strings.Contains(logs, `protocol \"sctp\": must be tcp or udp`) {
		t.Errorf("refusal log lacks the container, exposure or reason:\n%s", logs)
	}
}

// A stop event is trusted over an engine that still says "running" for a
// moment; a start later in the same burst wins again.
func TestWatcherTrustsStopEvents(t *testing.T) {
	eng, kernel := newFakeEngine(), newFakeKernel()
	eng.start(exposing("1", 1, 40001))
	eng.start(exposing("2", 2, 40002))
	wt := startWatch(t, eng, kernel, Config{DebounceMin: 20 * time.Millisecond})
	wt.waitExposed(40001, 40002)
	eng.send(Event{Container: "1", Action: "die", Stopped: true}) // the fake still lists it
	eng.send(Event{Container: "1", Action: "disconnect"})
	eng.send(Event{Container: "2", Action: "die", Stopped: true})
	eng.send(Event{Container: "2", Action: "start"})
	wt.waitExposed(40002)
}
