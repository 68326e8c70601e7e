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
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// fakeHosting records calls; a site listed in fail makes its calls fail.
type fakeHosting struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]error
	sites map[string]bool
	delay time.Duration
}

func (f *fakeHosting) call(c, name string) error {
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c+" "+name)
	return f.fail[name]
}

func (f *fakeHosting) Create(ctx context.Context, req hosting.CreateRequest) (site.Spec, error) {
	err := f.call("create", req.Name)
	if err == nil {
		f.mu.Lock()
		f.sites[req.Name] = true
		f.mu.Unlock()
	}
	return site.Spec{Name: req.Name}, err
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
func (f *fakeHosting) AddForward(ctx context.Context, name string, port int, proto string) (*store.Forward, reconcile.Plan, error) {
	return &store.Forward{Site: name, ContainerPort: port, Proto: proto, HostPort: 40000}, nil, f.call("forward", name)
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
	h := &fakeHosting{fail: map[string]error{}, sites: map[string]bool{}}
	r := New(st, h, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.poll = 20 * time.Millisecond
	r.beat = 10 * time.Millisecond
	r.lease = 150 * time.Millisecond
	r.retry = 10 * time.Millisecond
	return r, h, st
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
	c, err := r.SubmitCreate(ctx, "alice", hosting.CreateRequest{Name: "blog", Template: "static", Owner: "alice"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Submit(ctx, Stop, "blog", "alice", nil)
	st, _ := r.Submit(ctx, Restart, "blog", "alice", nil)
	bad, _ := r.Submit(ctx, Up, "bad", "alice", nil)
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
	var a CreateArgs
	json.Unmarshal(op.Args, &a)
	if a.Before == nil || a.Before.RowExisted || a.Owner != "alice" || a.Template != "static" {
		t.Fatalf("create args = %s", op.Args)
	}
}

func TestRemoveArchive(t *testing.T) {
	r, h, _ := newRunner(t)
	run(t, r)
	ctx := context.Background()
	h.sites["blog"] = true
	id, _ := r.Submit(ctx, Remove, "blog", "alice", RemoveArgs{Archive: true})
	if op := wait(t, r, id); op.State != store.OpFailed || !strings.Contains(op.Error, "no archive") {
		t.Fatalf("remove with archive but no archiver: %+v", op)
	}
	if !h.sites["blog"] {
		t.Fatal("site removed although its archive could not be written")
	}
}

func TestRecover(t *testing.T) {
	r, h, st := newRunner(t)
	ctx := context.Background()
	h.sites["gone"] = false
	// Four operations a crash left running.
	notBegun, _ := r.SubmitCreate(ctx, "alice", hosting.CreateRequest{Name: "fresh", Template: "static", Owner: "alice"}, -1)
	begun, _ := r.SubmitCreate(ctx, "alice", hosting.CreateRequest{Name: "half", Template: "static", Owner: "alice"}, -1)
	stop, _ := r.Submit(ctx, Stop, "blog", "alice", nil)
	rm, _ := r.Submit(ctx, Remove, "gone", "alice", RemoveArgs{})
	for range 4 {
		if _, err := st.ClaimOp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.Marshal(CreateArgs{Template: "static", Owner: "alice", Before: &hosting.CreateFacts{}})
	st.SetOpArgs(ctx, begun, b)
	queued, _ := r.Submit(ctx, Up, "blog", "alice", nil)

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
	id, _ := r.Submit(ctx, Content, "blog", "alice", ContentArgs{Archive: upload, Filename: "site.zip", Mode: content.Merge})
	if op := wait(t, r, id); op.State != store.OpDone {
		t.Fatalf("content op: %+v", op)
	}
	if _, err := os.Stat(upload); !os.IsNotExist(err) {
		t.Error("upload kept after install")
	}
	// Again (as after a crash past the end): nothing more happens.
	id, _ = r.Submit(ctx, Content, "blog", "alice", ContentArgs{Archive: upload, Filename: "site.zip", Mode: content.Merge})
	wait(t, r, id)
	h.sites["blog"] = true
	id, _ = r.Submit(ctx, Remove, "blog", "alice", RemoveArgs{Archive: true, Purge: true})
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
	h := &fakeHosting{fail: map[string]error{}, sites: map[string]bool{}}
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
	live, _ := r.Submit(ctx, Up, "live", "cli:root", nil)
	done := make(chan *store.Operation)
	go func() {
		op, err := r.RunOne(ctx, live)
		if err != nil {
			t.Error(err)
		}
		done <- op
	}()
	dead, _ := r.Submit(ctx, Stop, "dead", "alice", nil)
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
	id, _ := r.Submit(ctx, Restart, "blog", "alice", nil)
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
	ctx := context.Background()
	var plans []int64
	r.Plans = func(op *store.Operation, _ reconcile.Plan) { plans = append(plans, op.ID) }

	// Behind an operation a live process runs: RunOne waits for its turn.
	first, _ := r.Submit(ctx, Up, "blog", "alice", nil)
	if _, err := st.ClaimOpID(ctx, first); err != nil {
		t.Fatal(err)
	}
	stop := r.heartbeat(first)
	second, _ := r.Submit(ctx, Stop, "blog", "cli:root", nil)
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
	case <-time.After(3 * r.lease):
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
	dead, _ := r.Submit(ctx, Restart, "blog", "alice", nil)
	if _, err := st.ClaimOpID(ctx, dead); err != nil {
		t.Fatal(err)
	}
	mine, _ := r.Submit(ctx, Up, "blog", "cli:root", nil)
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
	blocker, _ := r.Submit(ctx, Up, "blog", "alice", nil)
	st.ClaimOpID(ctx, blocker)
	stop = r.heartbeat(blocker)
	defer stop()
	late, _ := r.Submit(ctx, Stop, "blog", "cli:root", nil)
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
	orphan, _ := r.Submit(ctx, Restart, "blog", "cli:root", nil)
	mine, _ := r.Submit(ctx, Stop, "blog", "cli:root", nil)
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
	id, _ := r.Submit(ctx, Stop, "blog", "cli:root", nil)
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
