package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darse/darse/internal/content"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/store"
)

// fakeHosting records calls; a site listed in fail makes its calls fail.
type fakeHosting struct {
	mu     sync.Mutex
	calls  []string
	fail   map[string]error
	refuse map[string]error
	sites  map[string]bool
	delay  time.Duration
}

func (f *fakeHosting) call(c, name string) error {
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c+" "+name)
	return f.fail[name]
}

func (f *fakeHosting) Create(ctx context.Context, req hosting.CreateRequest) (reconcile.Plan, error) {
	err := f.call("create", req.Name)
	if err == nil {
		f.mu.Lock()
		f.sites[req.Name] = true
		f.mu.Unlock()
	}
	return nil, err
}

// refused answers the checks: a site listed in refuse is refused at once.
func (f *fakeHosting) refused(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refuse[name]
}
func (f *fakeHosting) SiteOwner(ctx context.Context, name string) (string, error) {
	return "alice", f.refused(name)
}
func (f *fakeHosting) CheckCreate(ctx context.Context, req hosting.CreateRequest) error {
	return f.refused(req.Name)
}
func (f *fakeHosting) CheckForward(ctx context.Context, name string, req hosting.ForwardRequest, queued []hosting.ForwardRequest) error {
	if err := f.refused(name); err != nil {
		return err
	}
	if len(queued) >= 2 {
		return fmt.Errorf("port %d: %d forwards already queued: %w", req.Port, len(queued), hosting.ErrInput)
	}
	return nil
}
func (f *fakeHosting) CheckRemoveForward(ctx context.Context, name string, hostPort int) error {
	return f.refused(name)
}
func (f *fakeHosting) Up(ctx context.Context, name string) (reconcile.Plan, error) {
	return nil, f.call("up", name)
}
func (f *fakeHosting) Stop(ctx context.Context, name string) (reconcile.Plan, error) {
	return nil, f.call("stop", name)
}
func (f *fakeHosting) Restart(ctx context.Context, name string) (reconcile.Plan, error) {
	return nil, f.call("restart", name)
}
func (f *fakeHosting) Remove(ctx context.Context, name string, purge bool) error {
	if err := f.call("remove", name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sites[name] {
		return hostingInputErr
	}
	delete(f.sites, name)
	return nil
}
func (f *fakeHosting) Status(ctx context.Context, name string) (*hosting.Status, error) {
	return &hosting.Status{Name: name, State: hosting.StateRunning}, nil
}
func (f *fakeHosting) AddForward(ctx context.Context, name string, req hosting.ForwardRequest) (*store.Forward, reconcile.Plan, error) {
	return &store.Forward{Site: name, ContainerPort: req.Port, Proto: req.Proto, HostPort: 40000}, nil, f.call("forward", name)
}
func (f *fakeHosting) Render(ctx context.Context, name string, force bool) ([]string, reconcile.Plan, error) {
	return nil, nil, f.call("render", name)
}
func (f *fakeHosting) RemoveForward(ctx context.Context, name string, hostPort int) (reconcile.Plan, error) {
	return nil, f.call("unforward", name)
}
func (f *fakeHosting) Facts(ctx context.Context, name string) (hosting.CreateFacts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return hosting.CreateFacts{RowExisted: f.sites[name]}, nil
}
func (f *fakeHosting) RecoverCreate(ctx context.Context, name string, before hosting.CreateFacts) error {
	return f.call("recover-create", name)
}

var hostingInputErr = fmt.Errorf("site: no such site: %w", hosting.ErrInput)

func newRunner(t *testing.T) (*Runner, *fakeHosting, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "darse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &fakeHosting{fail: map[string]error{}, refuse: map[string]error{}, sites: map[string]bool{}}
	r := New(st, h, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.poll = 20 * time.Millisecond
	r.beat = 10 * time.Millisecond
	r.lease = 150 * time.Millisecond
	r.retry = 10 * time.Millisecond
	return r, h, st
}

// submit records an operation of user's on site, owned by alice.
func submit(t *testing.T, r *Runner, site, user string, k Kind) int64 {
	t.Helper()
	id, err := r.Submit(context.Background(), Request{Site: site, User: user}, k)
	if err != nil {
		t.Fatalf("submit %s %s: %v", k.Name(), site, err)
	}
	return id
}

func run(t *testing.T, r *Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func wait(t *testing.T, r *Runner, id int64) *store.Operation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	op, err := r.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func TestSubmitAndRun(t *testing.T) {
	r, h, _ := newRunner(t)
	h.delay = 10 * time.Millisecond
	h.fail["bad"] = errors.New("engine said no")
	ctx := context.Background()
	run(t, r)
	c, err := r.Submit(ctx, Request{Site: "blog", Owner: "alice", User: "alice", Quota: 3}, &Create{Template: "static"})
	if err != nil {
		t.Fatal(err)
	}
	s := submit(t, r, "blog", "alice", &Stop{})
	st := submit(t, r, "blog", "alice", &Restart{})
	bad := submit(t, r, "bad", "alice", &Up{})
	for _, id := range []int64{c, s, st} {
		if op := wait(t, r, id); op.State != store.OpDone || op.Error != "" {
			t.Fatalf("op %d = %+v", id, op)
		}
	}
	if op := wait(t, r, bad); op.State != store.OpFailed || op.Error != "engine said no" {
		t.Fatalf("failing op = %+v", op)
	}
	// One site's operations ran in order.
	var blog []string
	for _, c := range h.calls {
		if strings.HasSuffix(c, " blog") {
			blog = append(blog, c)
		}
	}
	if strings.Join(blog, ",") != "create blog,stop blog,restart blog" {
		t.Fatalf("calls on blog: %v", blog)
	}
	// The facts noted before creating are in the operation.
	op, _ := r.store.GetOp(ctx, c)
	var a Create
	if err := json.Unmarshal(op.Args, &a); err != nil {
		t.Fatal(err)
	}
	if a.Before == nil || a.Before.RowExisted || op.Owner != "alice" || a.Template != "static" {
		t.Fatalf("create = %+v, args %s", op, op.Args)
	}
}

// Check answers bad input at once and records nothing: a removal asking
// for an archive where none can be kept, a site hosting refuses, a burst
// of forwards past what hosting allows beside those queued.
func TestSubmitChecksFirst(t *testing.T) {
	r, h, st := newRunner(t)
	ctx := context.Background()
	h.sites["blog"] = true
	if _, err := r.Submit(ctx, Request{Site: "blog", User: "alice"}, &Remove{Archive: true}); !errors.Is(err, errNoArchive) {
		t.Fatalf("remove with archive but no archiver: %v", err)
	}
	h.refuse["nope"] = hostingInputErr
	for _, k := range []Kind{&Up{}, &Stop{}, &Restart{}, &Remove{}, &Unforward{HostPort: 40001}, &Forward{Port: 80}} {
		if _, err := r.Submit(ctx, Request{Site: "nope", User: "alice"}, k); !errors.Is(err, hosting.ErrInput) {
			t.Errorf("%s of a refused site: %v", k.Name(), err)
		}
	}
	if _, err := r.Submit(ctx, Request{Site: "nope", Owner: "alice", User: "alice"}, &Create{Template: "static"}); !errors.Is(err, hosting.ErrInput) {
		t.Errorf("create refused: %v", err)
	}
	// The fake refuses a third forward while two are queued: Check sees the queue.
	submit(t, r, "blog", "alice", &Forward{Port: 80, Proto: "tcp"})
	submit(t, r, "blog", "alice", &Forward{Port: 81, Proto: "tcp"})
	if _, err := r.Submit(ctx, Request{Site: "blog", User: "alice"}, &Forward{Port: 82, Proto: "tcp"}); !errors.Is(err, hosting.ErrInput) {
		t.Errorf("third queued forward: %v", err)
	}
	list, err := st.ListOps(ctx, store.OpFilter{})
	if err != nil || len(list) != 2 {
		t.Fatalf("recorded %d operations (%v), want the two forwards only", len(list), err)
	}
	for _, op := range list {
		if op.Owner != "alice" || op.User != "alice" {
			t.Errorf("operation %+v: owner and user are its columns", op)
		}
	}
	if h.called() != "" {
		t.Fatalf("hosting called: %s", h.called())
	}
}

// Every kind in the registry decodes from what Submit recorded.
func TestRegistryRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, mk := range registry() {
		k := mk()
		if seen[k.Name()] {
			t.Fatalf("kind %q registered twice", k.Name())
		}
		seen[k.Name()] = true
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(&store.Operation{Kind: k.Name(), Args: b})
		if err != nil || got.Name() != k.Name() || got.Title() == "" || Title(k.Name()) != got.Title() {
			t.Fatalf("decode %s: %v, %v", k.Name(), got, err)
		}
	}
	if _, err := Decode(&store.Operation{ID: 7, Kind: "bogus"}); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Fatalf("unknown kind: %v", err)
	}
}

func TestRecover(t *testing.T) {
	r, h, st := newRunner(t)
	ctx := context.Background()
	h.sites["gone"] = false
	// Four operations a crash left running.
	notBegun, _ := r.Submit(ctx, Request{Site: "fresh", Owner: "alice", User: "alice", Quota: -1}, &Create{Template: "static"})
	begun, _ := r.Submit(ctx, Request{Site: "half", Owner: "alice", User: "alice", Quota: -1}, &Create{Template: "static"})
	stop := submit(t, r, "blog", "alice", &Stop{})
	rm := submit(t, r, "gone", "alice", &Remove{})
	for range 4 {
		if _, err := st.ClaimOp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.Marshal(Create{Template: "static", Before: &hosting.CreateFacts{}})
	st.SetOpArgs(ctx, begun, b)
	queued := submit(t, r, "blog", "alice", &Up{})

	if err := r.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	want := "create fresh,recover-create half,stop blog,remove gone"
	if got := strings.Join(h.calls, ","); got != want {
		t.Fatalf("recovery calls %q, want %q", got, want)
	}
	for _, id := range []int64{notBegun, begun, stop, rm} {
		op, _ := st.GetOp(ctx, id)
		if op.State != store.OpDone {
			t.Errorf("op %d %s %s: %s %q", id, op.Kind, op.Site, op.State, op.Error)
		}
	}
	if op, _ := st.GetOp(ctx, queued); op.State != store.OpQueued {
		t.Errorf("queued op touched by recovery: %+v", op)
	}
}

type fakeFiles struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeFiles) ArchiveData(ctx context.Context, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "archive "+name)
	return "/archives/" + name + ".tar.gz", nil
}
func (f *fakeFiles) Install(ctx context.Context, name, archive, display, mode string) (content.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "install "+name+" "+mode)
	return content.Summary{}, nil
}
func (f *fakeFiles) Cleanup(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "cleanup "+name)
	return nil
}

func TestContentAndArchive(t *testing.T) {
	r, h, _ := newRunner(t)
	files := &fakeFiles{}
	r.files = files
	run(t, r)
	ctx := context.Background()
	upload := filepath.Join(t.TempDir(), "upload")
	os.WriteFile(upload, []byte("archive"), 0o600)
	id := submit(t, r, "blog", "alice", &Content{Archive: upload, Filename: "site.zip", Mode: content.Merge})
	if op := wait(t, r, id); op.State != store.OpDone {
		t.Fatalf("content op: %+v", op)
	}
	if _, err := os.Stat(upload); !os.IsNotExist(err) {
		t.Error("upload kept after install")
	}
	// Again (as after a crash past the end): nothing more happens.
	k := &Content{Archive: upload, Filename: "site.zip", Mode: content.Merge}
	if _, err := r.Submit(ctx, Request{Site: "blog", User: "alice"}, k); err == nil {
		t.Fatal("an install of an upload already consumed was recorded")
	}
	op, _ := r.store.GetOp(ctx, id)
	if err := k.Resume(ctx, r.env(op), target(op)); err != nil {
		t.Fatalf("install resumed past its end: %v", err)
	}
	h.sites["blog"] = true
	id = submit(t, r, "blog", "alice", &Remove{Archive: true, Purge: true})
	if op := wait(t, r, id); op.State != store.OpDone || !strings.Contains(string(op.Args), "/archives/blog.tar.gz") {
		t.Fatalf("remove with archive: %+v %s", op, op.Args)
	}
	if got := strings.Join(files.calls, ","); got != "install blog merge,cleanup blog,archive blog" {
		t.Fatalf("files calls: %s", got)
	}
	if got := strings.Join(h.calls, ","); got != "restart blog,remove blog" {
		t.Fatalf("hosting calls: %s", got)
	}
}

// another is a second process's Runner on the same store, with its own hosting.
func another(t *testing.T, r *Runner) (*Runner, *fakeHosting) {
	h := &fakeHosting{fail: map[string]error{}, refuse: map[string]error{}, sites: map[string]bool{}}
	o := New(r.store, h, nil, r.log)
	o.poll, o.beat, o.lease, o.retry = r.poll, r.beat, r.lease, r.retry
	return o, h
}

func (f *fakeHosting) called() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, ",")
}

func TestRecoverLeavesLiveOperations(t *testing.T) {
	r, h, st := newRunner(t)
	ctx := context.Background()
	h.delay = 4 * r.lease
	// A live process (r) runs an up on "live"; a dead one left a stop on "dead".
	live := submit(t, r, "live", "cli:root", &Up{})
	done := make(chan *store.Operation)
	go func() {
		op, err := r.RunOne(ctx, live)
		if err != nil {
			t.Error(err)
		}
		done <- op
	}()
	dead := submit(t, r, "dead", "alice", &Stop{})
	for {
		if op, _ := st.GetOp(ctx, live); op.State == store.OpRunning {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := st.ClaimOpID(ctx, dead); err != nil {
		t.Fatal(err)
	}

	// The panel starts: it settles the dead process's stop only.
	panel, ph := another(t, r)
	start := time.Now()
	if err := panel.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < r.lease {
		t.Errorf("Recover settled after %v, before the lease (%v) ran out", took, r.lease)
	}
	if got := ph.called(); got != "stop dead" {
		t.Fatalf("recovery calls %q, want only the dead process's stop", got)
	}
	if op, _ := st.GetOp(ctx, dead); op.State != store.OpDone {
		t.Fatalf("dead process's op after recovery: %+v", op)
	}
	if op, _ := st.GetOp(ctx, live); op.State != store.OpRunning {
		t.Fatalf("live process's op touched by recovery: %+v", op)
	}
	if op := <-done; op.State != store.OpDone || h.called() != "up live" {
		t.Fatalf("live op = %+v, calls %q", op, h.called())
	}
}

func TestRunOneWaitsForAnotherRunner(t *testing.T) {
	r, h, st := newRunner(t)
	ctx := context.Background()
	h.delay = 3 * r.lease
	run(t, r) // the panel
	id := submit(t, r, "blog", "alice", &Restart{})
	for {
		if op, _ := st.GetOp(ctx, id); op.State == store.OpRunning {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cli, ch := another(t, r)
	op, err := cli.RunOne(ctx, id)
	if err != nil || op.State != store.OpDone {
		t.Fatalf("RunOne of an op another runner holds: %+v, %v", op, err)
	}
	if h.called() != "restart blog" || ch.called() != "" {
		t.Fatalf("panel calls %q, CLI calls %q: the op ran once, in the panel", h.called(), ch.called())
	}
}

func TestRunOneQueuedBehind(t *testing.T) {
	r, h, st := newRunner(t)
	// A lease the heartbeat cannot miss on a loaded machine (150 ms did:
	// one slow write, and the running op was taken for dead).
	r.lease = time.Second
	ctx := context.Background()
	var plans []int64
	r.Plans = func(op *store.Operation, _ reconcile.Plan) { plans = append(plans, op.ID) }

	// Behind an operation a live process runs: RunOne waits for its turn.
	first := submit(t, r, "blog", "alice", &Up{})
	if _, err := st.ClaimOpID(ctx, first); err != nil {
		t.Fatal(err)
	}
	stop := r.heartbeat(first)
	second := submit(t, r, "blog", "cli:root", &Stop{})
	done := make(chan *store.Operation)
	go func() {
		op, err := r.RunOne(ctx, second)
		if err != nil {
			t.Error(err)
		}
		done <- op
	}()
	select {
	case op := <-done:
		t.Fatalf("RunOne did not wait for the running op: %+v", op)
	case <-time.After(r.lease / 2):
	}
	stop()
	st.FinishOp(ctx, first, nil)
	if op := <-done; op.State != store.OpDone || h.called() != "stop blog" {
		t.Fatalf("queued op = %+v, calls %q", op, h.called())
	}
	if len(plans) != 1 || plans[0] != second {
		t.Fatalf("plans shown for %v, want [%d]", plans, second)
	}

	// Behind an operation whose process died: RunOne settles it, then runs its own.
	h.calls = nil
	dead := submit(t, r, "blog", "alice", &Restart{})
	if _, err := st.ClaimOpID(ctx, dead); err != nil {
		t.Fatal(err)
	}
	mine := submit(t, r, "blog", "cli:root", &Up{})
	op, err := r.RunOne(ctx, mine)
	if err != nil || op.State != store.OpDone {
		t.Fatalf("RunOne behind a dead op: %+v, %v", op, err)
	}
	if got := h.called(); got != "restart blog,up blog" {
		t.Fatalf("calls %q", got)
	}
	if op, _ := st.GetOp(ctx, dead); op.State != store.OpDone {
		t.Fatalf("dead op = %+v", op)
	}

	// Given up while still queued: cancelled, never run.
	h.calls = nil
	blocker := submit(t, r, "blog", "alice", &Up{})
	st.ClaimOpID(ctx, blocker)
	stop = r.heartbeat(blocker)
	defer stop()
	late := submit(t, r, "blog", "cli:root", &Stop{})
	cctx, cancel := context.WithTimeout(ctx, r.lease/2)
	defer cancel()
	op, err = r.RunOne(cctx, late)
	if !errors.Is(err, context.DeadlineExceeded) || op.State != store.OpFailed || op.Error != ErrCancelled.Error() {
		t.Fatalf("RunOne given up: %+v, %v", op, err)
	}
	if h.called() != "" {
		t.Fatalf("cancelled op ran: %q", h.called())
	}
}

// Behind an operation left queued by a CLI run killed while it waited (no
// panel runs to pick it up): RunOne carries it out first, then its own.
func TestRunOneRunsAnOrphanFirst(t *testing.T) {
	r, h, st := newRunner(t)
	ctx := context.Background()
	var plans []int64
	r.Plans = func(op *store.Operation, _ reconcile.Plan) { plans = append(plans, op.ID) }
	orphan := submit(t, r, "blog", "cli:root", &Restart{})
	mine := submit(t, r, "blog", "cli:root", &Stop{})
	op, err := r.RunOne(ctx, mine)
	if err != nil || op.State != store.OpDone {
		t.Fatalf("RunOne behind an orphan: %+v, %v", op, err)
	}
	if got := h.called(); got != "restart blog,stop blog" {
		t.Fatalf("calls %q, want the orphan first", got)
	}
	if op, _ := st.GetOp(ctx, orphan); op.State != store.OpDone {
		t.Fatalf("orphan = %+v", op)
	}
	if len(plans) != 2 || plans[0] != orphan || plans[1] != mine {
		t.Fatalf("plans for %v, want [%d %d]", plans, orphan, mine)
	}
}

// A running panel settles an operation whose process died after it started.
func TestRunSettlesStaleOperations(t *testing.T) {
	r, h, st := newRunner(t)
	ctx := context.Background()
	id := submit(t, r, "blog", "cli:root", &Stop{})
	if _, err := st.ClaimOpID(ctx, id); err != nil { // by a CLI run that then died
		t.Fatal(err)
	}
	start := time.Now()
	run(t, r) // the panel, already past its Recover
	if op := wait(t, r, id); op.State != store.OpDone {
		t.Fatalf("op = %+v", op)
	}
	if took := time.Since(start); took < r.lease {
		t.Errorf("settled after %v, within the lease (%v)", took, r.lease)
	}
	if got := h.called(); got != "stop blog" {
		t.Fatalf("calls %q: the op ran once", got)
	}
}
