package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/darse/darse/internal/store"
)

// HistoryStore keeps the history (*store.Store).
type HistoryStore interface {
	AddHistory(ctx context.Context, points []store.Point) error
	MaintainHistory(ctx context.Context, now time.Time) error
}

// Recorder turns passes into minute points of history: what each site's
// counters grew by since the previous pass, and its memory now; the
// host's total as site store.HostSite.
type Recorder struct {
	c    *Collector
	st   HistoryStore
	log  *slog.Logger
	Now  func() time.Time
	prev map[string]Site
}

// NewRecorder records c's passes into st.
func NewRecorder(c *Collector, st HistoryStore, log *slog.Logger) *Recorder {
	return &Recorder{c: c, st: st, log: log, Now: time.Now}
}

// Points are the minute points of p against the previous pass: a site
// seen for the first time (or whose counters went back: deleted and
// created again) has none until the next pass.
func Points(prev map[string]Site, p *Pass) []store.Point {
	var out []store.Point
	host := store.Point{Site: store.HostSite, Step: store.StepMinute, At: p.At}
	for _, s := range p.Sites {
		host.Memory += int64(s.MemoryBytes)
		old, ok := prev[s.Name]
		if !ok || s.CPUSeconds < old.CPUSeconds || s.ReceiveBytes < old.ReceiveBytes || s.TransmitBytes < old.TransmitBytes {
			continue
		}
		pt := store.Point{Site: s.Name, Step: store.StepMinute, At: p.At,
			CPUMilli: int64((s.CPUSeconds - old.CPUSeconds) * 1000), Memory: int64(s.MemoryBytes),
			Receive: int64(s.ReceiveBytes - old.ReceiveBytes), Transmit: int64(s.TransmitBytes - old.TransmitBytes)}
		host.CPUMilli += pt.CPUMilli
		host.Receive += pt.Receive
		host.Transmit += pt.Transmit
		out = append(out, pt)
	}
	if prev != nil {
		out = append(out, host)
	}
	return out
}

// Sample reads a pass and records its points.
func (r *Recorder) Sample(ctx context.Context) error {
	p, err := r.c.Collect(ctx)
	if err != nil {
		return err
	}
	pts := Points(r.prev, p)
	next := make(map[string]Site, len(p.Sites))
	for _, s := range p.Sites {
		next[s.Name] = s
	}
	r.prev = next
	if len(pts) == 0 {
		return nil
	}
	return r.st.AddHistory(ctx, pts)
}

// Run samples every minute and folds and prunes the history every
// quarter hour, until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for n := 0; ; n++ {
		if err := r.Sample(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("record history", "err", err)
		}
		if n%15 == 0 {
			if err := r.st.MaintainHistory(ctx, r.Now()); err != nil && ctx.Err() == nil {
				r.log.Warn("fold and prune history", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
