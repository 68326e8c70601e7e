// Package ops carries out the actions members and operators ask for as
// durable operations: each is recorded in the store first (queued), then
// a worker runs it through hosting (running → done | failed). The panel's
// workers and a CLI run may carry out operations side by side: the process
// running one keeps its heartbeat fresh, and an operation whose heartbeat
// has gone stale (its process died) is settled by the next process to
// look, so that the store and the site folders agree.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/store"
)

// Runner records operations and runs them with a few workers (Run), or
// one at a time for a caller that waits for it (RunOne). Operations on one
// site run one at a time, in the order they were asked.
type Runner struct {
	// Plans, when set, is shown the plan of every up, stop, restart,
	// forward and unforward this runner carries out (the CLI prints them).
	Plans func(op *store.Operation, plan reconcile.Plan)

	store   *store.Store
	hosting Hosting
	files   Files
	log     *slog.Logger
	workers int
	poll    time.Duration // idle workers and waiters look again this often
	beat    time.Duration // a running operation's heartbeat is refreshed this often
	lease   time.Duration // a heartbeat older than this: its process died
	retry   time.Duration // RunOne tries again this often while its operation waits
	wake    chan struct{}

	mu      sync.Mutex
	waiters map[int64][]chan struct{}
}

// New returns a Runner; files may be nil (no archive nor upload is then possible).
func New(st *store.Store, h Hosting, files Files, log *slog.Logger) *Runner {
	return &Runner{store: st, hosting: h, files: files, log: log, workers: 2, poll: 2 * time.Second,
		beat: time.Second, lease: 5 * time.Second, retry: 200 * time.Millisecond,
		wake: make(chan struct{}, 1), waiters: map[int64][]chan struct{}{}}
}

// Request is who asks for an operation, on which site.
type Request struct {
	Site  string
	Owner string // a creating kind: whose the new site is; others: the site's owner (filled in)
	User  string // who asks: a member, or cli:<OS user>
	Quota int    // a creating kind: how many sites Owner may have; negative: no limit
}

// Submit checks the operation (bad input is answered at once, with
// nothing recorded), records it and wakes a worker.
func (r *Runner) Submit(ctx context.Context, req Request, k Kind) (int64, error) {
	t := Target{Site: req.Site, Owner: req.Owner, User: req.User}
	if err := k.Check(ctx, r.env(nil), t); err != nil {
		return 0, err
	}
	_, creates := k.(creating)
	if _, wide := k.(platformWide); !creates && !wide {
		owner, err := r.hosting.SiteOwner(ctx, t.Site)
		if err != nil {
			return 0, err
		}
		t.Owner = owner
	}
	b, err := json.Marshal(k)
	if err != nil {
		return 0, fmt.Errorf("operation %s arguments: %w", k.Name(), err)
	}
	op := store.Operation{Kind: k.Name(), Site: t.Site, Owner: t.Owner, User: t.User, Args: b}
	var id int64
	if creates {
		id, err = r.store.EnqueueCreate(ctx, op, req.Quota)
	} else {
		id, err = r.store.EnqueueOp(ctx, op)
	}
	if err != nil {
		return 0, err
	}
	r.log.Info("operation queued", "op", id, "kind", op.Kind, "site", op.Site, "owner", op.Owner, "user", op.User)
	r.notify()
	return id, nil
}

// PendingCreates are the creations of sites for owner still queued or running.
func (r *Runner) PendingCreates(ctx context.Context, owner string) ([]*store.Operation, error) {
	var out []*store.Operation
	for _, mk := range registry() {
		k := mk()
		if _, ok := k.(creating); !ok {
			continue
		}
		list, err := r.store.ListOps(ctx, store.OpFilter{Owner: owner, Kind: k.Name(), States: []string{store.OpQueued, store.OpRunning}, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, op := range list {
			if op.Owner == owner {
				out = append(out, op)
			}
		}
	}
	return out, nil
}

func (r *Runner) env(op *store.Operation) *Env {
	return &Env{Hosting: r.hosting, Files: r.files, runner: r, op: op}
}

func (r *Runner) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Wait blocks until the operation is done or failed (or ctx ends) and returns it.
func (r *Runner) Wait(ctx context.Context, id int64) (*store.Operation, error) {
	for {
		ch := r.waiter(id)
		op, err := r.store.GetOp(ctx, id)
		if err != nil {
			return nil, err
		}
		if finished(op) {
			return op, nil
		}
		select {
		case <-ch:
		case <-time.After(r.poll):
		case <-ctx.Done():
			return op, ctx.Err()
		}
	}
}

// waiter returns a channel closed when this process finishes operation id.
func (r *Runner) waiter(id int64) chan struct{} {
	ch := make(chan struct{})
	r.mu.Lock()
	r.waiters[id] = append(r.waiters[id], ch)
	r.mu.Unlock()
	return ch
}

// forget drops a waiter that is no longer waited on.
func (r *Runner) forget(id int64, ch chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws := r.waiters[id]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(r.waiters, id)
	} else {
		r.waiters[id] = ws
	}
}

func finished(op *store.Operation) bool {
	return op.State == store.OpDone || op.State == store.OpFailed
}

// ErrCancelled is the error of an operation given up by its asker before it began.
var ErrCancelled = errors.New("cancelled before it began")

// RunOne carries out the recorded operation id in this process and returns
// it once done or failed: the CLI's way, which needs no panel. If another
// process claimed it first, RunOne waits for that one to finish it; while
// it is queued behind another operation of its site, RunOne tries again
// every retry. Meanwhile, operations whose process died (stale heartbeat)
// are settled here, so that a dead process cannot hold the site forever.
// If ctx ends while the operation is still queued, it is cancelled
// (failed with ErrCancelled); once begun, it runs to its end.
func (r *Runner) RunOne(ctx context.Context, id int64) (*store.Operation, error) {
	swept := time.Now()
	ch := r.waiter(id)
	defer func() { r.forget(id, ch) }()
	for {
		if ctx.Err() != nil {
			return r.giveUp(ctx, id)
		}
		op, err := r.store.ClaimOpID(ctx, id)
		if err == nil {
			r.carryOut(context.WithoutCancel(ctx), op, r.execute)
			return r.store.GetOp(context.WithoutCancel(ctx), id)
		}
		if errors.Is(err, store.ErrNotFound) {
			op, err = r.store.GetOp(ctx, id)
		}
		if err != nil {
			if ctx.Err() != nil {
				return r.giveUp(ctx, id)
			}
			return nil, err
		}
		if finished(op) {
			return op, nil
		}
		if op.State == store.OpQueued && r.runHead(ctx, op) {
			continue
		}
		if time.Since(swept) >= r.lease {
			swept = time.Now()
			if err := r.settleStale(ctx); err != nil && ctx.Err() == nil {
				return op, err
			}
			continue
		}
		select {
		case <-ch:
			ch = r.waiter(id)
		case <-time.After(r.retry):
		case <-ctx.Done():
		}
	}
}

// runHead carries out the operation at the head of op's site queue when
// it is older than op and no process holds it: one left queued by a CLI
// run killed while it waited, which no panel may be running to pick up.
// It reports whether it ran one.
func (r *Runner) runHead(ctx context.Context, op *store.Operation) bool {
	queued, err := r.store.ListOps(ctx, store.OpFilter{Site: op.Site, States: []string{store.OpQueued}, Limit: 10000})
	if err != nil || len(queued) == 0 {
		return false
	}
	head := queued[len(queued)-1] // newest first
	if head.ID >= op.ID {
		return false
	}
	claimed, err := r.store.ClaimOpID(ctx, head.ID)
	if err != nil {
		return false
	}
	r.log.Info("carrying out an earlier operation on the site first", "op", claimed.ID, "kind", claimed.Kind, "site", claimed.Site)
	r.carryOut(context.WithoutCancel(ctx), claimed, r.execute)
	return true
}

// giveUp cancels operation id if it is still queued (once begun, it runs
// to its end wherever it runs) and returns it as it stands, with ctx's error.
func (r *Runner) giveUp(ctx context.Context, id int64) (*store.Operation, error) {
	bg := context.WithoutCancel(ctx)
	if err := r.store.CancelOp(bg, id, ErrCancelled); err == nil {
		r.log.Info("operation cancelled", "op", id)
		r.finished(id)
	}
	op, err := r.store.GetOp(bg, id)
	if err != nil {
		return nil, errors.Join(ctx.Err(), err)
	}
	return op, ctx.Err()
}

func (r *Runner) finished(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range r.waiters[id] {
		close(ch)
	}
	delete(r.waiters, id)
}

// Run works through the queue until ctx ends. Call Recover first. Every
// lease it also settles operations whose process died meanwhile (a CLI run
// killed while the panel runs).
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < r.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		every(ctx, r.lease, func() {
			if err := r.settleStale(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("settle interrupted operations", "err", err)
			}
		})
	}()
	wg.Wait()
}

// every calls fn each period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func()) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			fn()
		}
	}
}

func (r *Runner) work(ctx context.Context) {
	tick := time.NewTicker(r.poll)
	defer tick.Stop()
	for {
		for ctx.Err() == nil {
			op, err := r.store.ClaimOp(ctx)
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if err != nil {
				if ctx.Err() == nil {
					r.log.Error("claim operation", "err", err)
				}
				break
			}
			r.notify() // another worker may take the next one meanwhile
			// Once begun, an operation runs to its end even if the panel
			// is asked to stop: a SIGTERM waits for it, only SIGKILL cuts it.
			r.carryOut(context.WithoutCancel(ctx), op, r.execute)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-tick.C:
		}
	}
}

// carryOut runs do on an operation this process holds, keeping its
// heartbeat fresh meanwhile, and records the outcome.
func (r *Runner) carryOut(ctx context.Context, op *store.Operation, do func(context.Context, *store.Operation) error) {
	stop := r.heartbeat(op.ID)
	err := do(ctx, op)
	stop()
	r.finish(op, err)
}

// heartbeat refreshes operation id's heartbeat every beat until stopped.
func (r *Runner) heartbeat(id int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		every(ctx, r.beat, func() {
			err := r.store.Heartbeat(ctx, id)
			switch {
			case ctx.Err() != nil:
			case errors.Is(err, store.ErrNotFound):
				// This process stalled past its lease and another one
				// settled the operation: two may have acted on the site.
				r.log.Error("operation settled by another process while still running here", "op", id)
			case err != nil:
				r.log.Warn("operation heartbeat", "op", id, "err", err)
			}
		})
	}()
	return func() { cancel(); <-done }
}

// finish records the outcome even when ctx has ended: the work is done.
func (r *Runner) finish(op *store.Operation, err error) {
	ctx := context.Background()
	if ferr := r.store.FinishOp(ctx, op.ID, err); ferr != nil {
		r.log.Error("record operation outcome", "op", op.ID, "err", ferr)
	}
	if err != nil {
		r.log.Warn("operation failed", "op", op.ID, "kind", op.Kind, "site", op.Site, "err", err)
	} else {
		r.log.Info("operation done", "op", op.ID, "kind", op.Kind, "site", op.Site)
	}
	r.finished(op.ID)
}

func (r *Runner) execute(ctx context.Context, op *store.Operation) error {
	k, err := Decode(op)
	if err != nil {
		return err
	}
	return k.Run(ctx, r.env(op), target(op))
}

func (r *Runner) resume(ctx context.Context, op *store.Operation) error {
	k, err := Decode(op)
	if err != nil {
		return err
	}
	return k.Resume(ctx, r.env(op), target(op))
}

// Recover settles the operations a crash left running, oldest first,
// before any new one starts, each by its kind's Resume.
//
// A running row may belong to a live process (the panel, or a CLI run):
// only rows whose heartbeat is older than the lease are settled. Recover
// first waits until each running row has either shown a new heartbeat
// (alive: left alone), finished, or gone stale — at most a lease. That
// wait also lets a dead process's last request to the engine land (a
// network being created is not yet visible, and a second one of the same
// name would be made).
func (r *Runner) Recover(ctx context.Context) error {
	running, err := r.store.ListOps(ctx, store.OpFilter{States: []string{store.OpRunning}, Limit: 10000})
	if err != nil {
		return err
	}
	undecided := map[int64]time.Time{}
	for _, op := range running {
		undecided[op.ID] = op.HeartbeatAt
	}
	for len(undecided) > 0 {
		for id, beat := range undecided {
			op, err := r.store.GetOp(ctx, id)
			if err != nil {
				return err
			}
			switch {
			case op.State != store.OpRunning, time.Since(beat) > r.lease:
				delete(undecided, id)
			case !op.HeartbeatAt.Equal(beat):
				r.log.Info("operation running in another process; left to it", "op", id, "kind", op.Kind, "site", op.Site, "user", op.User)
				delete(undecided, id)
			}
		}
		if len(undecided) == 0 {
			break
		}
		select {
		case <-time.After(r.retry):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return r.settleStale(ctx)
}

// settleStale settles, oldest first, the running operations whose
// heartbeat is older than the lease. Each is taken over first (its
// heartbeat refreshed in one statement), so two processes settling at
// once never resume the same operation twice.
func (r *Runner) settleStale(ctx context.Context) error {
	cut := time.Now().Add(-r.lease)
	stale, err := r.store.StaleOps(ctx, cut)
	if err != nil {
		return err
	}
	for _, op := range stale {
		op, err := r.store.TakeOverOp(ctx, op.ID, cut)
		if errors.Is(err, store.ErrNotFound) {
			continue // finished meanwhile, or another process settles it
		}
		if err != nil {
			return err
		}
		r.log.Warn("operation interrupted: the process running it stopped; settling it", "op", op.ID, "kind", op.Kind, "site", op.Site, "user", op.User)
		r.carryOut(context.WithoutCancel(ctx), op, r.resume)
	}
	return nil
}
