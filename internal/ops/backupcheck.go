package ops

import (
	"context"
	"errors"
)

// BackupCheck verifies the backup repository (restic check): it acts on
// no site, so it runs under the platform's empty site name, one at a time.
type BackupCheck struct {
	// ReadData reads every pack back too (slow: the whole repository).
	ReadData bool `json:"read_data,omitempty"`
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
	return cfg.Service.Restic.Check(ctx, k.ReadData)
}

// Resume checks again: a check changes nothing.
func (k *BackupCheck) Resume(ctx context.Context, e *Env, t Target) error { return k.Run(ctx, e, t) }
