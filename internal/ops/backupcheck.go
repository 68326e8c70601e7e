package ops

import (
	"context"
	"errors"
)

// BackupCheck verifies the backup repository (restic check): it acts on
// no site, so it runs under the platform's empty site name, one at a time.
// With Prune it first removes the data that only forgotten snapshots
// held (restic prune); the schedule's checks prune.
type BackupCheck struct {
	// ReadData reads every pack back too (slow: the whole repository).
	ReadData bool `json:"read_data,omitempty"`
	Prune    bool `json:"prune,omitempty"`
}

func (*BackupCheck) Name() string  { return "backup-check" }
func (*BackupCheck) Title() string { return "Check backups" }
func (*BackupCheck) platformWide() {}

func (k *BackupCheck) Check(ctx context.Context, e *Env, t Target) error {
	if t.Site != "" {
		return errors.New("backup check: acts on the whole repository, not on one site")
	}
	return nil
}

func (k *BackupCheck) Run(ctx context.Context, e *Env, t Target) error {
	cfg, err := backupConfig(ctx, e)
	if err != nil {
		return err
	}
	r := cfg.Service.Restic
	// A restic killed with darse (a prune cut short) leaves its lock: the
	// check and the prune would wait for it, then fail.
	if err := r.Unlock(ctx); err != nil {
		return err
	}
	if k.Prune {
		if err := r.Prune(ctx); err != nil {
			return err
		}
	}
	return r.Check(ctx, k.ReadData)
}

// Resume checks (and prunes) again: a prune cut short leaves only data no
// snapshot needs, which the next one removes.
func (k *BackupCheck) Resume(ctx context.Context, e *Env, t Target) error { return k.Run(ctx, e, t) }
