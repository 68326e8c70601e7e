package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/panel"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/store"
)

// scheduleUser names the scheduler in the operations log.
const scheduleUser = "schedule"

// runBackupSchedule runs the backups and checks (each pruning first: what
// retention forgot goes then) darse.yml schedules, as
// operations carried out by the panel's workers, until ctx ends; nothing
// when darse.yml configures no backups.
func (a *app) runBackupSchedule(ctx context.Context, runner *ops.Runner, st *store.Store) {
	cfg, err := platform.Load(a.srv)
	if err != nil || cfg.Backup == nil {
		return
	}
	s := a.backupScheduler(runner, st, cfg.Backup)
	s.Run(ctx)
}

func (a *app) backupScheduler(runner *ops.Runner, st *store.Store, b *platform.Backup) *backup.Scheduler {
	bs, cs := b.Schedules()
	ds, sample := b.Drills()
	wait := func(ctx context.Context, id int64, err error) error {
		if err != nil {
			return err
		}
		op, err := runner.Wait(ctx, id)
		if err != nil {
			return err
		}
		if op.State == store.OpFailed {
			return errors.New(op.Error)
		}
		return nil
	}
	return &backup.Scheduler{
		Backups: bs, Check: cs, Drill: ds, Log: a.log,
		Sites: func(ctx context.Context) ([]string, error) {
			sites, err := st.ListSites(ctx)
			names := make([]string, 0, len(sites))
			for _, s := range sites {
				names = append(names, s.Name)
			}
			return names, err
		},
		// The last run tried, failed or not: a failing site waits for its
		// next slot rather than being retried every minute.
		Last: func(ctx context.Context) (map[string]time.Time, error) {
			last, _, err := st.LastBackups(ctx)
			out := map[string]time.Time{}
			for site, b := range last {
				out[site] = b.StartedAt
			}
			return out, err
		},
		LastCheck: func(ctx context.Context) (time.Time, error) {
			list, err := st.ListOps(ctx, store.OpFilter{Kind: new(ops.BackupCheck).Name(), Limit: 1})
			if err != nil || len(list) == 0 {
				return time.Time{}, err
			}
			return list[0].CreatedAt, nil
		},
		LastDrill: func(ctx context.Context) (time.Time, error) {
			list, err := st.ListOps(ctx, store.OpFilter{Kind: new(ops.Drill).Name(), Limit: 1})
			if err != nil || len(list) == 0 {
				return time.Time{}, err
			}
			return list[0].CreatedAt, nil
		},
		RunDrill: func(ctx context.Context, round int64) error {
			return a.drillSample(ctx, st, sample, int(round), func(ctx context.Context, site string) error {
				id, err := runner.Submit(ctx, ops.Request{Site: site, User: scheduleUser}, new(ops.Drill))
				return wait(ctx, id, err)
			})
		},
		Backup: func(ctx context.Context, site string) error {
			if site == "" {
				return a.backupPlatform(ctx, st, io.Discard)
			}
			id, err := runner.Submit(ctx, ops.Request{Site: site, User: scheduleUser}, new(ops.Backup))
			return wait(ctx, id, err)
		},
		RunCheck: func(ctx context.Context) error {
			id, err := runner.Submit(ctx, ops.Request{User: scheduleUser}, &ops.BackupCheck{Prune: true})
			return wait(ctx, id, err)
		},
	}
}

// panelBackups is the backup repository as the panel reads it.
type panelBackups struct {
	a      *app
	period time.Duration
}

func (p panelBackups) Sets(ctx context.Context, site string) ([]backup.Set, error) {
	svc, err := p.a.backupService()
	if err != nil {
		return nil, err
	}
	return svc.Sets(ctx, site)
}

func (p panelBackups) Period() time.Duration { return p.period }

// panelBackups is what the panel shows of backups; nil when darse.yml
// configures none.
func (a *app) panelBackups() panel.Backups {
	cfg, err := platform.Load(a.srv)
	if err != nil || cfg.Backup == nil {
		return nil
	}
	bs, _ := cfg.Backup.Schedules()
	return panelBackups{a: a, period: bs.Period}
}

// drillSample drills this round's sample of n sites, one after the
// other, and fails naming those whose drill failed.
func (a *app) drillSample(ctx context.Context, st *store.Store, n, round int, drill func(ctx context.Context, site string) error) error {
	sites, err := st.ListSites(ctx)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(sites))
	for _, s := range sites {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	var failed []string
	for _, name := range ops.DrillSample(names, n, round) {
		if err := drill(ctx, name); err != nil {
			a.log.Warn("restore drill failed", "site", name, "err", err)
			failed = append(failed, name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("restore drill failed for %s", strings.Join(failed, ", "))
	}
	return nil
}
