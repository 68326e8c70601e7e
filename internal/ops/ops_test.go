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
	r.settle = 0
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
	ctx := context.Background()
	run(t, r)
	c, err := r.SubmitCreate(ctx, "alice", hosting.CreateRequest{Name: "blog", Template: "static", Owner: "alice"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Submit(ctx, Stop, "blog", "alice", nil)
	st, _ := r.Submit(ctx, Restart, "blog", "alice", nil)
	h.fail["bad"] = errors.New("engine said no")
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
