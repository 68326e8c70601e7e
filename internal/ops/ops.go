// Package ops carries out the actions members and operators ask for as
// durable operations: each is recorded in the store first (queued), then
// a worker runs it through hosting (running → done | failed). After a
// crash, Recover settles what was running so that the store and the site
// folders agree before any new work starts.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/darse/darse/internal/content"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// Kinds of operation.
const (
	Create  = "create"
	Up      = "up"
	Stop    = "stop"
	Restart = "restart"
	Remove  = "remove"
	Content = "content"
	// Forward and Unforward add and remove a port forward.
	Forward   = "forward"
	Unforward = "unforward"
)

// Hosting is what operations are carried out with (*hosting.Hosting).
type Hosting interface {
	Create(ctx context.Context, req hosting.CreateRequest) (site.Spec, error)
	Up(ctx context.Context, name string) (reconcile.Plan, error)
	Stop(ctx context.Context, name string) (reconcile.Plan, error)
	Restart(ctx context.Context, name string) (reconcile.Plan, error)
	Remove(ctx context.Context, name string, purge bool) error
	AddForward(ctx context.Context, name string, port int, proto string) (*store.Forward, reconcile.Plan, error)
	RemoveForward(ctx context.Context, name string, hostPort int) (reconcile.Plan, error)
	Status(ctx context.Context, name string) (*hosting.Status, error)
	Facts(ctx context.Context, name string) (hosting.CreateFacts, error)
	RecoverCreate(ctx context.Context, name string, before hosting.CreateFacts) error
}

// Files moves sites' files (package content).
type Files interface {
	// ArchiveData keeps a final archive of a site's data/ before it is deleted.
	ArchiveData(ctx context.Context, name string) (string, error)
	// Install swaps an uploaded archive's content in as data/.
	Install(ctx context.Context, name, archive, displayName, mode string) (content.Summary, error)
	// Cleanup drops the data/ folders Install set aside.
	Cleanup(name string) error
}

// CreateArgs are a create operation's arguments. Before is filled in by
// the worker just before it calls hosting, for Recover.
type CreateArgs struct {
	Template string               `json:"template"`
	Domain   string               `json:"domain,omitempty"`
	Owner    string               `json:"owner"`
	Set      map[string]string    `json:"set,omitempty"`
	Before   *hosting.CreateFacts `json:"before,omitempty"`
}

// ContentArgs are a content operation's arguments: an upload already
// checked and saved; the worker installs it, restarts the site and
// deletes the file.
type ContentArgs struct {
	Archive  string `json:"archive"`  // path of the saved upload
	Filename string `json:"filename"` // as the member named it
	Mode     string `json:"mode"`     // content.Replace or content.Merge
}

// ForwardArgs are the arguments of forward and unforward operations.
type ForwardArgs struct {
	Port     int    `json:"port,omitempty"`      // container port (forward)
	Proto    string `json:"proto,omitempty"`     // tcp or udp (forward)
	HostPort int    `json:"host_port,omitempty"` // allocated (forward) or to remove (unforward)
}

// RemoveArgs are a remove operation's arguments.
type RemoveArgs struct {
	// Purge deletes data/ too; without it the folder is kept as `site rm` does.
	Purge bool `json:"purge"`
	// Archive writes a final archive of data/ first (the panel's default).
	Archive bool   `json:"archive"`
	Path    string `json:"archive_path,omitempty"` // set once written
}

// Runner records operations and runs them with a few workers. Operations
// on one site run one at a time, in the order they were asked.
type Runner struct {
	store   *store.Store
	hosting Hosting
	files   Files
	log     *slog.Logger
	workers int
	poll    time.Duration
	settle  time.Duration // wait before resuming a dead worker's operations
	wake    chan struct{}

	mu      sync.Mutex
	waiters map[int64][]chan struct{}
}

// New returns a Runner; files may be nil (no archive nor upload is then possible).
func New(st *store.Store, h Hosting, files Files, log *slog.Logger) *Runner {
	return &Runner{store: st, hosting: h, files: files, log: log, workers: 2, poll: 2 * time.Second, settle: 3 * time.Second,
		wake: make(chan struct{}, 1), waiters: map[int64][]chan struct{}{}}
}

// Submit records an operation on an existing site and wakes a worker.
func (r *Runner) Submit(ctx context.Context, kind, siteName, user string, args any) (int64, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return 0, err
	}
	if args == nil {
		b = nil
	}
	id, err := r.store.EnqueueOp(ctx, store.Operation{Kind: kind, Site: siteName, User: user, Args: b})
	if err != nil {
		return 0, err
	}
	r.log.Info("operation queued", "op", id, "kind", kind, "site", siteName, "user", user)
	r.notify()
	return id, nil
}

// SubmitCreate records the creation of a site; quota < 0 means no limit.
// The caller validates the request first (hosting.Spec) so that bad input
// is answered at once rather than as a failed operation.
func (r *Runner) SubmitCreate(ctx context.Context, user string, req hosting.CreateRequest, quota int) (int64, error) {
	b, err := json.Marshal(CreateArgs{Template: req.Template, Domain: req.Domain, Owner: req.Owner, Set: req.Set})
	if err != nil {
		return 0, err
	}
	id, err := r.store.EnqueueCreate(ctx, store.Operation{Kind: Create, Site: req.Name, User: user, Args: b}, req.Owner, quota)
	if err != nil {
		return 0, err
	}
	r.log.Info("operation queued", "op", id, "kind", Create, "site", req.Name, "user", user)
	r.notify()
	return id, nil
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
		ch := make(chan struct{})
		r.mu.Lock()
		r.waiters[id] = append(r.waiters[id], ch)
		r.mu.Unlock()
		op, err := r.store.GetOp(ctx, id)
		if err != nil {
			return nil, err
		}
		if op.State == store.OpDone || op.State == store.OpFailed {
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

func (r *Runner) finished(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range r.waiters[id] {
		close(ch)
	}
	delete(r.waiters, id)
}

// Run works through the queue until ctx ends. Call Recover first.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < r.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx)
		}()
	}
	wg.Wait()
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
			r.finish(op, r.execute(context.WithoutCancel(ctx), op))
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-tick.C:
		}
	}
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
	switch op.Kind {
	case Create:
		var a CreateArgs
		if err := json.Unmarshal(op.Args, &a); err != nil {
			return fmt.Errorf("operation %d arguments: %w", op.ID, err)
		}
		facts, err := r.hosting.Facts(ctx, op.Site)
		if err != nil {
			return err
		}
		a.Before = &facts
		b, _ := json.Marshal(a)
		// Recorded before anything is written, for Recover.
		if err := r.store.SetOpArgs(ctx, op.ID, b); err != nil {
			return err
		}
		_, err = r.hosting.Create(ctx, hosting.CreateRequest{Name: op.Site, Template: a.Template, Domain: a.Domain, Owner: a.Owner, Set: a.Set})
		return err
	case Up:
		_, err := r.hosting.Up(ctx, op.Site)
		return err
	case Stop:
		_, err := r.hosting.Stop(ctx, op.Site)
		return err
	case Restart:
		_, err := r.hosting.Restart(ctx, op.Site)
		return err
	case Remove:
		var a RemoveArgs
		if len(op.Args) > 0 {
			if err := json.Unmarshal(op.Args, &a); err != nil {
				return fmt.Errorf("operation %d arguments: %w", op.ID, err)
			}
		}
		return r.remove(ctx, op, a, false)
	case Content:
		var a ContentArgs
		if err := json.Unmarshal(op.Args, &a); err != nil {
			return fmt.Errorf("operation %d arguments: %w", op.ID, err)
		}
		return r.install(ctx, op, a)
	case Forward, Unforward:
		var a ForwardArgs
		if err := json.Unmarshal(op.Args, &a); err != nil {
			return fmt.Errorf("operation %d arguments: %w", op.ID, err)
		}
		if op.Kind == Unforward {
			_, err := r.hosting.RemoveForward(ctx, op.Site, a.HostPort)
			return err
		}
		f, _, err := r.hosting.AddForward(ctx, op.Site, a.Port, a.Proto)
		if f != nil {
			a.HostPort = f.HostPort
			b, _ := json.Marshal(a)
			if serr := r.store.SetOpArgs(ctx, op.ID, b); serr != nil && err == nil {
				err = serr
			}
		}
		return err
	}
	return fmt.Errorf("operation %d: unknown kind %q", op.ID, op.Kind)
}

// install swaps the upload in, restarts what runs so that it serves the
// new data/, and forgets the upload. Run again after a crash, it does the
// same; once the upload file is gone, it was all done.
func (r *Runner) install(ctx context.Context, op *store.Operation, a ContentArgs) error {
	if r.files == nil {
		return errors.New("uploads are not possible here")
	}
	if _, err := os.Stat(a.Archive); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := r.files.Install(ctx, op.Site, a.Archive, a.Filename, a.Mode); err != nil {
		return err
	}
	st, err := r.hosting.Status(ctx, op.Site)
	if err != nil {
		return err
	}
	if st.State != hosting.StateStopped {
		if _, err := r.hosting.Restart(ctx, op.Site); err != nil {
			return fmt.Errorf("new content in place, but the site did not restart: %w", err)
		}
	}
	if err := r.files.Cleanup(op.Site); err != nil {
		r.log.Warn("remove the previous data/", "site", op.Site, "err", err)
	}
	return os.Remove(a.Archive)
}

// remove archives data/ if asked (once: the path is recorded) and removes
// the site. Resumed after a crash, a site already gone means the removal
// got to its last step.
func (r *Runner) remove(ctx context.Context, op *store.Operation, a RemoveArgs, resumed bool) error {
	if a.Archive && a.Path == "" {
		if r.files == nil {
			return errors.New("no archive can be kept here; remove with purge or without archive")
		}
		p, err := r.files.ArchiveData(ctx, op.Site)
		if err != nil {
			return fmt.Errorf("keep a final archive of data/: %w", err)
		}
		a.Path = p
		b, _ := json.Marshal(a)
		if err := r.store.SetOpArgs(ctx, op.ID, b); err != nil {
			return err
		}
	}
	err := r.hosting.Remove(ctx, op.Site, a.Purge)
	if resumed && errors.Is(err, hosting.ErrInput) {
		return nil
	}
	return err
}

// Recover settles the operations a crash left running, oldest first,
// before any new one starts:
//
//   - a create that had not begun writing is simply carried out now; one
//     that had is finished (row and folder complete: the site is brought
//     up) or undone (row, rendered files and new folder removed), never
//     left half-made;
//   - up, stop and restart are idempotent and run again;
//   - a remove runs again (its archive, if already written, is kept);
//   - content, forward and unforward run again: they end the same.
//
// Only one process may run operations: a running row means its worker died.
func (r *Runner) Recover(ctx context.Context) error {
	running, err := r.store.ListOps(ctx, store.OpFilter{States: []string{store.OpRunning}, Limit: 10000})
	if err != nil {
		return err
	}
	if len(running) > 0 {
		// The dead worker's last request to the engine may still be under
		// way inside dockerd (a network being created is not yet visible,
		// and a second one of the same name would be made): let it land.
		r.log.Warn("operations interrupted by a crash; settling them", "count", len(running), "after", r.settle)
		select {
		case <-time.After(r.settle):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for i := len(running) - 1; i >= 0; i-- {
		op := running[i]
		r.log.Warn("operation interrupted by a restart, settling it", "op", op.ID, "kind", op.Kind, "site", op.Site)
		r.finish(op, r.resume(ctx, op))
	}
	return nil
}

func (r *Runner) resume(ctx context.Context, op *store.Operation) error {
	switch op.Kind {
	case Create:
		var a CreateArgs
		if err := json.Unmarshal(op.Args, &a); err != nil {
			return fmt.Errorf("operation %d arguments: %w", op.ID, err)
		}
		if a.Before == nil {
			return r.execute(ctx, op)
		}
		return r.hosting.RecoverCreate(ctx, op.Site, *a.Before)
	case Remove:
		var a RemoveArgs
		if len(op.Args) > 0 {
			if err := json.Unmarshal(op.Args, &a); err != nil {
				return fmt.Errorf("operation %d arguments: %w", op.ID, err)
			}
		}
		return r.remove(ctx, op, a, true)
	case Unforward:
		// Already gone means the removal got through before the crash.
		if err := r.execute(ctx, op); err != nil && !errors.Is(err, hosting.ErrInput) {
			return err
		}
		return nil
	}
	// up, stop, restart, content and forward (AddForward returns the
	// forward already made) are safe to repeat.
	return r.execute(ctx, op)
}
