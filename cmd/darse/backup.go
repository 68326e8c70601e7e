package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/images"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// withBackups is hosting as the backup kinds need it: with the
// repository darse.yml names. The runners of the CLI and of the panel
// must be given it for a backup or a restore they resume to find it.
type withBackups struct {
	*hosting.Hosting
	a *app
}

// BackupConfig reads darse.yml's backup section and finds restic.
func (h withBackups) BackupConfig(ctx context.Context) (*ops.BackupConfig, error) {
	svc, err := h.a.backupService()
	if err != nil {
		return nil, err
	}
	eng, err := h.a.Engine(ctx)
	if err != nil {
		return nil, err
	}
	// The engine's Exec API, not the docker CLI: the panel's container
	// has none.
	return &ops.BackupConfig{Service: svc, Srv: h.a.srv, Exec: eng.Exec, Domain: h.a.cfg.Domain, Engine: eng,
		Volumes: eng.SiteVolumes}, nil
}

func (a *app) backupService() (*backup.Service, error) {
	cfg, err := platform.Load(a.srv)
	if err != nil {
		return nil, err
	}
	if cfg.Backup == nil {
		return nil, ops.ErrNoBackups
	}
	bin, err := backup.FindRestic()
	if err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("backup: host name: %w", err)
	}
	k := cfg.Backup.Keep
	return &backup.Service{
		Restic: &backup.Restic{Binary: bin, Repository: cfg.Backup.Repository, PasswordFile: cfg.Backup.PasswordFile,
			CacheDir: filepath.Join(a.srv, "backup", "cache"), Log: a.log},
		Host:    host,
		Keep:    backup.Keep{Daily: k.Daily, Weekly: k.Weekly, Monthly: k.Monthly},
		MetaDir: filepath.Join(a.srv, "backup", "meta"),
	}, nil
}

func newBackupCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Back sites and the platform up to the restic repository darse.yml names, list and restore"}
	cmd.AddCommand(newBackupRunCmd(a), newBackupLsCmd(a), newBackupRestoreCmd(a), newBackupCheckCmd(a), newBackupDrillCmd(a), newRestorePlatformCmd(a), newInstallResticCmd(a))
	return cmd
}

func newBackupRunCmd(a *app) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "run SITE...|--all",
		Short: "Back sites up (--all: every site and the platform's store and darse.yml), each as an operation",
		RunE: func(cmd *cobra.Command, names []string) error {
			if all == (len(names) > 0) {
				return usagef(cmd, "name the sites to back up, or --all")
			}
			for _, n := range names {
				if err := site.ValidateName(n); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			if _, err := a.backupService(); err != nil {
				return err
			}
			o, err := a.operations(ctx)
			if err != nil {
				return err
			}
			if all {
				if names, err = siteNames(ctx, o.store); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			var failed []string
			for _, n := range names {
				op, err := o.submit(ctx, n, new(ops.Backup))
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: backup failed: %v\n", n, err)
					failed = append(failed, n)
					continue
				}
				fmt.Fprintf(out, "%s: backed up (operation %d)\n", n, op.ID)
			}
			if all {
				if err := a.backupPlatform(ctx, o.store, out); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "platform: backup failed: %v\n", err)
					failed = append(failed, "the platform")
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("backup failed for %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&all, "all", false, "every site, then the platform")
	return c
}

// backupPlatform backs the store (online, VACUUM INTO) and darse.yml up, and records the run.
func (a *app) backupPlatform(ctx context.Context, st *store.Store, out io.Writer) error {
	svc, err := a.backupService()
	if err != nil {
		return err
	}
	start := time.Now()
	p, err := svc.BackupPlatform(ctx, st.VacuumInto, filepath.Join(a.srv, "conf", platform.ConfigFile))
	rec := store.Backup{Site: "", Run: "platform-" + start.UTC().Format("20060102T150405Z"), State: store.OpDone, FilesSnapshot: p.ID,
		BytesAdded: p.BytesAdded, StartedAt: start, FinishedAt: time.Now()}
	if err != nil {
		rec.State, rec.Error = store.OpFailed, err.Error()
	}
	if _, rerr := st.RecordBackup(ctx, rec); rerr != nil {
		return errors.Join(err, rerr)
	}
	if err == nil {
		fmt.Fprintf(out, "platform: backed up (snapshot %.8s)\n", p.ID)
	}
	return err
}

func newBackupLsCmd(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls [SITE] [--json]",
		Short: "List the backups in the repository, newest first",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := optionalSite(args)
			if err != nil {
				return err
			}
			svc, err := a.backupService()
			if errors.Is(err, ops.ErrNoBackups) {
				// Nothing is backed up: an empty list, and why on stderr.
				fmt.Fprintf(cmd.ErrOrStderr(), "darse: %v\n", err)
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), []struct{}{})
				}
				return nil
			}
			if err != nil {
				return err
			}
			list, err := svc.Sets(cmd.Context(), name)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SITE\tRUN\tTIME\tSIZE\tADDED\tFILES\tDATABASE")
			for _, s := range list {
				files, db := short(s.Files), short(s.DB)
				if !s.Complete() {
					files = "(cut short)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Site, s.Run, s.Time.Local().Format(time.DateTime), s.Size, s.BytesAdded, files, db)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func short(id string) string {
	if id == "" {
		return "-"
	}
	return id[:min(8, len(id))]
}

func newBackupRestoreCmd(a *app) *cobra.Command {
	var as string
	c := &cobra.Command{
		Use:   "restore SITE [SNAPSHOT] [--as NEWNAME]",
		Short: "Restore a site from its latest backup (or the run or snapshot named), as an operation; a removed site comes back; --as: into a new site",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, target := args[0], args[0]
			k := &ops.Restore{}
			if len(args) == 2 {
				k.Snapshot = args[1]
			}
			if cmd.Flags().Changed("as") {
				if err := site.ValidateName(as); err != nil {
					return err
				}
				if as != name {
					k.From, target = name, as
				}
			}
			if err := k.Check(cmd.Context(), nil, ops.Target{Site: target}); err != nil { // needs no Env
				return err
			}
			ctx := cmd.Context()
			svc, err := a.backupService()
			if err != nil {
				return err
			}
			o, err := a.operations(ctx)
			if err != nil {
				return err
			}
			owner, err := o.hosting.SiteOwner(ctx, name)
			if err != nil {
				// Removed since: its owner is the backup's.
				set, ferr := svc.Find(ctx, name, k.Snapshot)
				if ferr != nil {
					return ferr
				}
				owner, err = backupOwner(ctx, svc, set)
				if err != nil {
					return err
				}
			}
			id, err := o.runner.Submit(ctx, ops.Request{Site: target, Owner: owner, User: o.user, Quota: -1}, k)
			if err != nil {
				return err
			}
			op, err := o.run(ctx, id)
			if err != nil {
				return err
			}
			if target != name {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: restored as %s (operation %d)\n", name, target, op.ID)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: restored (operation %d)\n", name, op.ID)
			return nil
		},
	}
	c.Flags().StringVar(&as, "as", "", "restore into a new site of this name (a fresh project: its own folder, database and domain), the original left alone")
	return c
}

// backupOwner reads whose site the backup holds.
func backupOwner(ctx context.Context, svc *backup.Service, set backup.Set) (string, error) {
	b, err := svc.ReadRecord(ctx, set)
	if err != nil {
		return "", err
	}
	var rec store.SiteRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return "", fmt.Errorf("backup %s: site record: %w", set.Run, err)
	}
	return rec.Site.Owner, nil
}

func newBackupCheckCmd(a *app) *cobra.Command {
	var readData, prune bool
	c := &cobra.Command{
		Use:   "check [--read-data] [--prune]",
		Short: "Verify the backup repository (restic check), as an operation; --prune first removes the data only forgotten snapshots held",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if _, err := a.backupService(); err != nil {
				return err
			}
			o, err := a.operations(ctx)
			if err != nil {
				return err
			}
			op, err := o.submit(ctx, "", &ops.BackupCheck{ReadData: readData, Prune: prune})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "repository: no errors found (operation %d)\n", op.ID)
			return nil
		},
	}
	c.Flags().BoolVar(&readData, "read-data", false, "read back and verify every pack too (the whole repository)")
	c.Flags().BoolVar(&prune, "prune", false, "first remove the data that only snapshots forgotten by retention held (restic prune, holding the repository's exclusive lock meanwhile)")
	return c
}

func newBackupDrillCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "drill [SITE]",
		Short: "Restore the site's latest backup (no SITE: this round's sample of sites) into a throw-away project on an internal network, wait for its health, remove it; each an operation",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := optionalSite(args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cfg, err := platform.Load(a.srv)
			if err != nil {
				return err
			}
			if cfg.Backup == nil {
				return ops.ErrNoBackups
			}
			o, err := a.operations(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			drill := func(ctx context.Context, site string) error {
				op, err := o.submit(ctx, site, new(ops.Drill))
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: drill failed: %v\n", site, err)
					return err
				}
				fmt.Fprintf(out, "%s: drill passed, its latest backup restores and runs healthy (operation %d)\n", site, op.ID)
				return nil
			}
			if name != "" {
				return drill(ctx, name)
			}
			ds, n := cfg.Backup.Drills()
			round := time.Now().Unix() / int64(max(ds.Period, 24*time.Hour)/time.Second)
			return a.drillSample(ctx, o.store, n, int(round), drill)
		},
	}
}

func newInstallResticCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "install-restic",
		Short: "Build restic " + strings.TrimPrefix(images.Restic().Version, "v") + " from the Go module proxy (cached) and install it beside darse, whence the darse image takes it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			p, err := (&images.Builder{Log: a.log}).InstallTool(cmd.Context(), images.Restic(), filepath.Dir(self))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), p)
			return nil
		},
	}
}
