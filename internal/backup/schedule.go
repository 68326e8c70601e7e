package backup

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"
)

// Schedule is how often something runs: every Period, at an offset
// within it. The zero Schedule never runs.
type Schedule struct {
	Period time.Duration
}

// ParseSchedule reads a schedule as darse.yml writes it: hourly, daily,
// weekly, or a duration of at least an hour (12h, 48h); "" is def, "off"
// is never.
func ParseSchedule(s, def string) (Schedule, error) {
	if s == "" {
		s = def
	}
	switch s {
	case "off", "":
		return Schedule{}, nil
	case "hourly":
		return Schedule{time.Hour}, nil
	case "daily":
		return Schedule{24 * time.Hour}, nil
	case "weekly":
		return Schedule{7 * 24 * time.Hour}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Hour || d > 31*24*time.Hour || d%time.Minute != 0 {
		return Schedule{}, fmt.Errorf("%q: must be hourly, daily, weekly, off, or a whole number of minutes between 1h and 744h such as 12h", s)
	}
	return Schedule{d}, nil
}

// Offset is where in each period the named thing runs: derived from its
// name (FNV-1a), to the minute, so that sites' backups are spread over
// the period rather than all at midnight, and each site keeps its slot
// (with daily, site "blog" runs at the same hour and minute every day).
func (s Schedule) Offset(name string) time.Duration {
	if s.Period < time.Minute {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64()%uint64(s.Period/time.Minute)) * time.Minute
}

// Slot is the latest time at or before now when name was to run: periods
// count from the Unix epoch (UTC), shifted by name's offset.
func (s Schedule) Slot(name string, now time.Time) time.Time {
	if s.Period == 0 {
		return time.Time{}
	}
	off := s.Offset(name)
	t := now.UTC().Add(-off).Truncate(s.Period).Add(off)
	if t.After(now) {
		t = t.Add(-s.Period)
	}
	return t
}

// Due says whether name, last run at last (zero: never), is due at now.
func (s Schedule) Due(name string, last, now time.Time) bool {
	if s.Period == 0 {
		return false
	}
	return last.Before(s.Slot(name, now))
}

// Overdue says whether a last success at last is older than twice the
// period: the admin page shows such a site red.
func (s Schedule) Overdue(last, now time.Time) bool {
	return s.Period > 0 && now.Sub(last) > 2*s.Period
}

// Scheduler runs due backups and checks, one at a time: a backup storm
// would compete with the sites it copies.
type Scheduler struct {
	Backups Schedule // each site's, and the platform's (name "")
	Check   Schedule
	Drill   Schedule
	// Sites names the sites to back up.
	Sites func(ctx context.Context) ([]string, error)
	// Last is when each site ("" the platform) last had a backup tried,
	// and when the repository was last checked.
	Last      func(ctx context.Context) (map[string]time.Time, error)
	LastCheck func(ctx context.Context) (time.Time, error)
	LastDrill func(ctx context.Context) (time.Time, error)
	// Backup takes one backup (site "": the platform's) as an operation,
	// and waits for it; RunCheck checks the repository.
	Backup   func(ctx context.Context, site string) error
	RunCheck func(ctx context.Context) error
	// RunDrill restores this round's sample of sites into throw-away
	// projects (round: the period's number since the epoch).
	RunDrill func(ctx context.Context, round int64) error
	Log      *slog.Logger
	Tick     time.Duration // how often it looks; zero: a minute
	Now      func() time.Time
}

// Run looks for due work every Tick until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	tick := s.Tick
	if tick == 0 {
		tick = time.Minute
	}
	for {
		if err := s.Once(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("backup schedule", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(tick):
		}
	}
}

// Once runs whatever is due now, one after the other; a failure is
// recorded by its operation and does not stop the others.
func (s *Scheduler) Once(ctx context.Context) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if s.Backups.Period > 0 {
		sites, err := s.Sites(ctx)
		if err != nil {
			return err
		}
		last, err := s.Last(ctx)
		if err != nil {
			return err
		}
		for _, name := range append(sites, "") {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !s.Backups.Due(name, last[name], now()) {
				continue
			}
			if err := s.Backup(ctx, name); err != nil {
				s.Log.Warn("scheduled backup failed", "site", name, "err", err)
			}
		}
	}
	if s.Check.Period > 0 && s.RunCheck != nil {
		last, err := s.LastCheck(ctx)
		if err != nil {
			return err
		}
		if s.Check.Due("check", last, now()) {
			if err := s.RunCheck(ctx); err != nil {
				s.Log.Warn("scheduled repository check failed", "err", err)
			}
		}
	}
	if s.Drill.Period > 0 && s.RunDrill != nil {
		last, err := s.LastDrill(ctx)
		if err != nil {
			return err
		}
		if t := now(); s.Drill.Due("drill", last, t) {
			if err := s.RunDrill(ctx, t.Unix()/int64(s.Drill.Period/time.Second)); err != nil {
				s.Log.Warn("scheduled restore drill failed", "err", err)
			}
		}
	}
	return nil
}
