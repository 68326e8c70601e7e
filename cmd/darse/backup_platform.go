package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/store"
)

// errInterruptedByRestore settles the operations the restored store holds
// unfinished: they ran on the lost host, and are not carried on here.
var errInterruptedByRestore = errors.New("interrupted: the platform was restored from a backup on a new host")

func newRestorePlatformCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "restore-platform",
		Short: "On a new host: bring the store (members, sites, keys, forwards) back from the repository's latest platform backup, " +
			"then every site from its latest backup, each as an operation",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.restorePlatform(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
}

func (a *app) restorePlatform(ctx context.Context, out, errw io.Writer) error {
	svc, err := a.backupService()
	if err != nil {
		return err
	}
	conf := filepath.Join(a.srv, "conf")
	live := filepath.Join(conf, "darse.db")
	if err := checkFreshStore(ctx, live); err != nil {
		return err
	}
	snap, dbPath, cfgPath, err := svc.LatestPlatform(ctx)
	if err != nil {
		return err
	}
	staged := live + ".restoring"
	os.Remove(staged) // left by a restore that died: the repository has it all
	if err := svc.DumpFile(ctx, snap.ID, dbPath, staged); err != nil {
		return err
	}
	if err := settleRestored(ctx, staged); err != nil {
		os.Remove(staged)
		return err
	}
	if err := swapStore(live, staged); err != nil {
		return err
	}
	fmt.Fprintf(out, "platform: store restored from snapshot %s (%s)\n", snap.ShortID, snap.Time.Local().Format("2006-01-02 15:04:05"))
	if cfgPath != "" {
		// This host's darse.yml stays (it names the repository, and this
		// host's ports); the old one is put beside it to compare.
		old := filepath.Join(conf, platform.ConfigFile+".restored")
		os.Remove(old)
		if err := svc.DumpFile(ctx, snap.ID, cfgPath, old); err != nil {
			fmt.Fprintf(errw, "platform: %v\n", err)
		} else {
			fmt.Fprintf(out, "platform: the backed-up darse.yml is at %s\n", old)
		}
	}
	return a.restoreEverySite(ctx, out, errw)
}

// checkFreshStore refuses to replace a store that holds sites: the
// restore is for a new host, and would drop them.
func checkFreshStore(ctx context.Context, path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	sites, err := st.ListSites(ctx)
	if err != nil {
		return err
	}
	if len(sites) > 0 {
		return fmt.Errorf("restore-platform: the store %s holds %d sites already: it is for a new host (restore sites one by one with backup restore SITE)", path, len(sites))
	}
	return nil
}

// settleRestored opens the restored store (migrating it to this darse's
// schema) and fails the operations it holds unfinished.
func settleRestored(ctx context.Context, path string) error {
	st, err := store.Open(ctx, path)
	if err != nil {
		return fmt.Errorf("restored store: %w", err)
	}
	defer st.Close()
	list, err := st.ListOps(ctx, store.OpFilter{States: []string{store.OpQueued, store.OpRunning}, Limit: 100000})
	if err != nil {
		return fmt.Errorf("restored store: %w", err)
	}
	for _, op := range list {
		if err := st.FinishOp(ctx, op.ID, errInterruptedByRestore); err != nil {
			return fmt.Errorf("restored store: %w", err)
		}
	}
	return nil
}

// swapStore puts the restored store in place of the (empty) one there.
func swapStore(live, staged string) error {
	if _, err := os.Stat(live); err == nil {
		if err := os.Rename(live, live+".before-restore"); err != nil {
			return fmt.Errorf("restore-platform: set the new host's empty store aside: %w", err)
		}
	}
	for _, sfx := range []string{"-wal", "-shm"} {
		os.Remove(live + sfx)
	}
	if err := os.Rename(staged, live); err != nil {
		return fmt.Errorf("restore-platform: %w", err)
	}
	return nil
}

// restoreEverySite restores each site of the restored store from its
// latest backup, one operation each; a site that fails does not stop the
// others.
func (a *app) restoreEverySite(ctx context.Context, out, errw io.Writer) error {
	o, err := a.operations(ctx)
	if err != nil {
		return err
	}
	sites, err := o.store.ListSites(ctx)
	if err != nil {
		return err
	}
	var failed []string
	for _, s := range sites {
		id, err := o.runner.Submit(ctx, ops.Request{Site: s.Name, Owner: s.Owner, User: o.user, Quota: -1}, &ops.Restore{})
		if err == nil {
			_, err = o.run(ctx, id)
		}
		if err != nil {
			fmt.Fprintf(errw, "%s: restore failed: %v\n", s.Name, err)
			failed = append(failed, s.Name)
			continue
		}
		fmt.Fprintf(out, "%s: restored (operation %d)\n", s.Name, id)
	}
	if len(failed) > 0 {
		return fmt.Errorf("restore-platform: the store is back, but these sites were not restored: %s (try backup restore SITE)", strings.Join(failed, ", "))
	}
	return nil
}
