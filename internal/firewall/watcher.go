package firewall

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/darse/darse/internal/nft"
)

// Source is what the watcher reads from the container engine
// (engine.FirewallSource).
type Source interface {
	// Snapshot lists every running container and bridge network.
	Snapshot(ctx context.Context) (State, error)
	// Container inspects one container; ok is false when it no longer
	// runs.
	Container(ctx context.Context, id string) (c Container, ok bool, err error)
	// Networks lists the bridge networks.
	Networks(ctx context.Context) ([]Network, error)
	// Events subscribes to the engine's events; the subscription is live
	// when it returns. The error channel reports the end of the stream.
	Events(ctx context.Context) (<-chan Event, <-chan error, error)
}

// Event is an engine event that may change the ruleset.
type Event struct {
	// Container is the ID of a container whose state may have changed.
	Container string
	// Stopped says the container no longer runs (it died or was
	// removed): no need to ask, and the engine may still answer
	// "running" for a moment.
	Stopped bool
	// Networks is set when networks were created or removed.
	Networks bool
	Action   string
	Time     time.Time
}

// Applier puts a table in the kernel (nft.Conn).
type Applier interface {
	Apply(ctx context.Context, t *nft.Table) error
	// Applied returns the hash of the table in the kernel, "" if none.
	Applied(ctx context.Context, table string) (string, error)
}

// forwardChecker is the optional part of an Applier that reads Docker's
// forward policy (nft.Conn.ForwardDrops).
type forwardChecker interface {
	ForwardDrops(ctx context.Context) (bool, error)
}

// Config tunes the watcher; zero fields take the defaults.
type Config struct {
	Options Options
	// DebounceMin is how long the watcher waits after an event for more
	// (default 10ms); DebounceMax bounds the wait after the first event of
	// a burst (default 50ms), so that a busy engine cannot hold a change
	// back.
	DebounceMin, DebounceMax time.Duration
	// Resync is the period of the full resync (default 1m).
	Resync time.Duration
	// RetryMin and RetryMax bound the backoff between failed applies and
	// between reconnects to the engine (default 100ms and 10s).
	RetryMin, RetryMax time.Duration
	// OnApply, if set, is called after each successful apply.
	OnApply func(Applied)
}

// Applied describes a successful apply.
type Applied struct {
	Ruleset *Ruleset
	Hash    string
	At      time.Time
	Took    time.Duration
	// Since is when the oldest event this apply answers happened (the
	// engine's time), zero when no event waited for it (a resync that
	// found drift): At less Since is the event-to-rule latency.
	Since time.Time
}

// Stats counts what the watcher did.
type Stats struct {
	Syncs, Applies, Failures, Events, Reconnects uint64
}

// Watcher keeps darse's table equal to what the running containers
// expose. Create it with NewWatcher and call Run once.
type Watcher struct {
	src Source
	fw  Applier
	cfg Config
	log *slog.Logger

	syncs, applies, failures, events, reconnects atomic.Uint64

	// Owned by Run's goroutine.
	containers map[string]Container
	networks   []Network
	applied    string // hash of the table in the kernel, as far as known
	problems   map[string]Problem
	retryWait  time.Duration
	since      time.Time // the oldest event not yet answered by an apply
}

// NewWatcher returns a watcher reading src and applying through fw.
func NewWatcher(src Source, fw Applier, cfg Config, log *slog.Logger) *Watcher {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DebounceMin, 10*time.Millisecond)
	def(&cfg.DebounceMax, 50*time.Millisecond)
	def(&cfg.Resync, time.Minute)
	def(&cfg.RetryMin, 100*time.Millisecond)
	def(&cfg.RetryMax, 10*time.Second)
	if cfg.Options.Table == "" {
		cfg.Options.Table = DefaultTable
	}
	return &Watcher{src: src, fw: fw, cfg: cfg, log: log, problems: map[string]Problem{}}
}

// Stats returns the counters so far; safe from any goroutine.
func (w *Watcher) Stats() Stats {
	return Stats{Syncs: w.syncs.Load(), Applies: w.applies.Load(), Failures: w.failures.Load(),
		Events: w.events.Load(), Reconnects: w.reconnects.Load()}
}

// debounce returns when to handle a burst of events that began at first
// and whose latest event came at last: min after the latest, but no later
// than max after the first.
func debounce(first, last time.Time, min, max time.Duration) time.Time {
	at := last.Add(min)
	if limit := first.Add(max); limit.Before(at) {
		return limit
	}
	return at
}

// Run watches until ctx is done, reconnecting to the engine with backoff
// whenever the event stream breaks. The rules stay in the kernel when it
// returns.
func (w *Watcher) Run(ctx context.Context) error {
	wait := w.cfg.RetryMin
	for {
		synced, err := w.session(ctx)
		if ctx.Err() != nil {
			s := w.Stats()
			w.log.Info("stopped", "applies", s.Applies, "failures", s.Failures, "syncs", s.Syncs, "events", s.Events, "reconnects", s.Reconnects)
			return nil
		}
		if synced {
			wait = w.cfg.RetryMin
		}
		w.reconnects.Add(1)
		w.log.Warn("engine unreachable; the rules in place stay, resync on reconnect", "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			continue
		}
		wait = min(2*wait, w.cfg.RetryMax)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// session subscribes to events, resyncs fully, then follows the events
// until the stream breaks. synced reports whether the full resync
// succeeded.
func (w *Watcher) session(ctx context.Context) (synced bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evc, errc, err := w.src.Events(ctx)
	if err != nil {
		return false, err
	}
	retryC, err := w.fullSync(ctx, "connect")
	if err != nil {
		return false, err
	}
	resync := time.NewTicker(w.cfg.Resync)
	defer resync.Stop()
	var (
		first, last time.Time
		dirty       = map[string]bool{} // container ID -> known stopped
		netsDirty   bool
		debounceT   = time.NewTimer(time.Hour)
	)
	debounceT.Stop()
	defer debounceT.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-errc:
			return true, fmt.Errorf("event stream: %w", err)
		case ev := <-evc:
			w.events.Add(1)
			if ev.Container != "" {
				// A stop holds until a later start in the same burst.
				stopped, seen := dirty[ev.Container]
				switch {
				case ev.Stopped:
					dirty[ev.Container] = true
				case ev.Action == "start" || !seen:
					dirty[ev.Container] = false
				default:
					dirty[ev.Container] = stopped
				}
			}
			netsDirty = netsDirty || ev.Networks
			now := time.Now()
			if w.since.IsZero() {
				w.since = cmp.Or(ev.Time, now)
			}
			if first.IsZero() {
				first = now
			}
			last = now
			debounceT.Reset(time.Until(debounce(first, last, w.cfg.DebounceMin, w.cfg.DebounceMax)))
		case <-debounceT.C:
			if err := w.update(ctx, dirty, netsDirty); err != nil {
				return true, err
			}
			first, last, netsDirty = time.Time{}, time.Time{}, false
			clear(dirty)
			retryC = w.reconcile(ctx, "event")
		case <-resync.C:
			if retryC, err = w.fullSync(ctx, "periodic"); err != nil {
				return true, err
			}
		case <-retryC:
			retryC = w.reconcile(ctx, "retry")
		}
	}
}

// fullSync replaces the known state with a snapshot, reads what the
// kernel holds and applies if they differ. The channel is reconcile's.
func (w *Watcher) fullSync(ctx context.Context, why string) (<-chan time.Time, error) {
	st, err := w.src.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	w.containers = make(map[string]Container, len(st.Containers))
	for _, c := range st.Containers {
		w.containers[c.ID] = c
	}
	w.networks = st.Networks
	if fc, ok := w.fw.(forwardChecker); ok {
		if drops, err := fc.ForwardDrops(ctx); err == nil {
			if drops != w.cfg.Options.DockerForwardDrop {
				w.log.Info("Docker's FORWARD policy", "drops_ipv4", drops)
			}
			w.cfg.Options.DockerForwardDrop = drops
		}
	}
	if h, err := w.fw.Applied(ctx, w.cfg.Options.Table); err != nil {
		w.log.Warn("cannot read the table in the kernel; applying", "err", err)
		w.applied = ""
	} else {
		w.applied = h
	}
	return w.reconcile(ctx, why), nil
}

// update refreshes the containers named by events (ids maps each to
// whether it is known to be stopped), and the networks.
func (w *Watcher) update(ctx context.Context, ids map[string]bool, nets bool) error {
	if nets {
		ns, err := w.src.Networks(ctx)
		if err != nil {
			return err
		}
		w.networks = ns
	}
	// Inspected side by side: under load each answer takes a while.
	type result struct {
		id  string
		c   Container
		ok  bool
		err error
	}
	results := make(chan result, len(ids))
	sem := make(chan struct{}, 8)
	n := 0
	for id, stopped := range ids {
		if stopped {
			delete(w.containers, id)
			continue
		}
		n++
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, ok, err := w.src.Container(ctx, id)
			results <- result{id, c, ok, err}
		}()
	}
	var first error
	for range n {
		r := <-results
		switch {
		case r.err != nil:
			first = cmp.Or(first, r.err)
		case r.ok:
			w.containers[r.id] = r.c
		default:
			delete(w.containers, r.id)
		}
	}
	return first
}

func (w *Watcher) state() State {
	st := State{Networks: w.networks}
	for _, c := range w.containers {
		st.Containers = append(st.Containers, c)
	}
	return st
}

// reconcile builds the ruleset from the known state and applies it when
// it differs from the kernel's. On failure the kernel keeps the previous
// rules and the returned channel fires when to try again.
func (w *Watcher) reconcile(ctx context.Context, why string) <-chan time.Time {
	w.syncs.Add(1)
	r := Build(w.state(), w.cfg.Options)
	w.report(r.Problems)
	hash := r.Table.Hash()
	if hash == w.applied {
		w.retryWait = 0
		w.since = time.Time{} // the events changed nothing
		w.log.Debug("ruleset unchanged", "why", why, "exposures", len(r.Exposures))
		return nil
	}
	start := time.Now()
	err := w.fw.Apply(ctx, r.Table)
	took := time.Since(start)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		w.failures.Add(1)
		w.retryWait = min(max(2*w.retryWait, w.cfg.RetryMin), w.cfg.RetryMax)
		s := w.Stats()
		w.log.Error("apply failed; the previous rules stay", "why", why, "err", err, "retry_in", w.retryWait,
			"applies", s.Applies, "failures", s.Failures)
		return time.After(w.retryWait)
	}
	w.applies.Add(1)
	w.applied = hash
	w.retryWait = 0
	since := w.since
	w.since = time.Time{}
	s := w.Stats()
	rules := 0
	for _, c := range r.Table.Chains {
		rules += len(c.Rules)
	}
	w.log.Info("applied", "why", why, "table", r.Table.Name, "hash", hash, "exposures", len(r.Exposures),
		"rules", rules, "took", took, "applies", s.Applies, "failures", s.Failures)
	if w.cfg.OnApply != nil {
		w.cfg.OnApply(Applied{Ruleset: r, Hash: hash, At: time.Now(), Took: took, Since: since})
	}
	return nil
}

// report logs problems when they appear and when they go away, not on
// every sync.
func (w *Watcher) report(problems []Problem) {
	now := make(map[string]Problem, len(problems))
	for _, p := range problems {
		key := p.String()
		now[key] = p
		if _, seen := w.problems[key]; seen {
			continue
		}
		attrs := []any{"container", p.Container, "exposure", p.Exposure, "reason", p.Reason}
		if p.Refused {
			w.log.Warn("exposure refused", attrs...)
		} else {
			w.log.Warn("exposure limited", attrs...)
		}
	}
	for key, p := range w.problems {
		if _, still := now[key]; !still {
			w.log.Info("exposure problem gone", "container", p.Container, "exposure", p.Exposure)
		}
	}
	w.problems = now
}
