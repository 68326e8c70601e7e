package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/content"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// cliOps carries out the CLI's actions on sites as operations, recorded
// and run in this process like the panel's, so that `darse op ls` shows
// them and an interrupted one is settled by whoever looks next.
type cliOps struct {
	runner  *ops.Runner
	hosting *hosting.Hosting
	store   *store.Store
	user    string
	id      int64          // the operation this run recorded
	plan    reconcile.Plan // its plan, once carried out
	planned bool
}

// operations prepares a run: it first settles the operations whose
// process died (only those: a live panel's are left alone).
func (a *app) operations(ctx context.Context) (*cliOps, error) {
	h, err := a.Hosting(ctx)
	if err != nil {
		return nil, err
	}
	st, err := a.Store(ctx)
	if err != nil {
		return nil, err
	}
	files := siteFiles{
		Archiver:  content.Archiver{UsersDir: a.cfg.UsersDir(), ArchiveDir: filepath.Join(a.srv, "archives")},
		Installer: content.Installer{UsersDir: a.cfg.UsersDir(), Limits: content.DefaultLimits},
	}
	c := &cliOps{runner: ops.New(st, withBackups{h, a}, files, a.log), hosting: h, store: st, user: cliUser()}
	c.runner.Plans = func(op *store.Operation, plan reconcile.Plan) {
		if op.ID == c.id {
			c.plan, c.planned = plan, true
		}
	}
	if err := c.runner.Recover(ctx); err != nil {
		return nil, fmt.Errorf("recover interrupted operations: %w", err)
	}
	return c, nil
}

// cliUser names who asked in the operations log: cli:<OS user>.
func cliUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli:" + strconv.Itoa(os.Getuid())
}

// submit records an operation on an existing site (its kind's check
// answers bad input first, with nothing recorded) and carries it out.
func (c *cliOps) submit(ctx context.Context, name string, k ops.Kind) (*store.Operation, error) {
	id, err := c.runner.Submit(ctx, ops.Request{Site: name, User: c.user}, k)
	if err != nil {
		return nil, err
	}
	return c.run(ctx, id)
}

// run carries out the recorded operation id; a failed one is its error.
func (c *cliOps) run(ctx context.Context, id int64) (*store.Operation, error) {
	c.id = id
	op, err := c.runner.RunOne(ctx, id)
	if err != nil {
		return op, fmt.Errorf("operation %d: %w", id, err)
	}
	if op.State == store.OpFailed {
		return op, errors.New(op.Error)
	}
	return op, nil
}

// printPlan prints the plan of the operation as carried out here; one
// that another process (the panel) claimed first has none to show.
func (c *cliOps) printPlan(w io.Writer, name string, op *store.Operation) {
	switch {
	case c.planned:
		printPlan(w, name, c.plan)
	case op != nil && op.State == store.OpDone:
		fmt.Fprintf(w, "%s: done by another process (operation %d)\n", name, op.ID)
	}
}

// checkOpFilter answers a bad filter before the store is opened.
func checkOpFilter(f *store.OpFilter, state string) error {
	if f.Limit < 1 {
		return &site.FieldError{Field: "-n", Value: strconv.Itoa(f.Limit), Rule: "must be 1 or more"}
	}
	if f.Site != "" && !site.IsDNSLabel(f.Site) {
		return site.ValidateName(f.Site)
	}
	f.States = nil
	for _, s := range strings.Split(state, ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case store.OpQueued, store.OpRunning, store.OpDone, store.OpFailed:
			f.States = append(f.States, s)
		default:
			return &site.FieldError{Field: "--state", Value: s, Rule: "must be queued, running, done or failed"}
		}
	}
	return nil
}

func newOpCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "op", Short: "Operations: every action on sites asked through the panel or the CLI, as recorded"}
	var f store.OpFilter
	var state string
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls [--site NAME] [--user NAME] [--state S] [-n N] [--json]",
		Short: "List operations, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOpFilter(&f, state); err != nil {
				return err
			}
			st, err := a.Store(cmd.Context())
			if err != nil {
				return err
			}
			list, err := st.ListOps(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), opsJSON(list))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tSITE\tUSER\tSTATE\tASKED\tTOOK\tERROR")
			for _, op := range list {
				took := ""
				if !op.FinishedAt.IsZero() && !op.StartedAt.IsZero() {
					took = op.FinishedAt.Sub(op.StartedAt).Round(time.Millisecond).String()
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", op.ID, op.Kind, op.Site, op.User, op.State,
					op.CreatedAt.Local().Format("2006-01-02 15:04:05"), took, op.Error)
			}
			return tw.Flush()
		},
	}
	ls.Flags().StringVar(&f.Site, "site", "", "only this site's")
	ls.Flags().StringVar(&f.User, "user", "", "only those asked by this member")
	ls.Flags().StringVar(&state, "state", "", "only in these states (queued,running,done,failed)")
	ls.Flags().IntVarP(&f.Limit, "n", "n", 50, "at most N")
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	ls.RegisterFlagCompletionFunc("site", flagCompleter(a.siteNames))
	ls.RegisterFlagCompletionFunc("user", flagCompleter(a.userNames))
	cmd.AddCommand(ls, &cobra.Command{
		Use:   "recover",
		Short: "Settle the operations whose process died (finished or undone); the panel does it on its own",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Preparing a run settles them; nothing else is asked.
			_, err := a.operations(cmd.Context())
			return err
		},
	}, &cobra.Command{
		Use:   "run ID",
		Short: "Carry out a queued operation now, in this process (one left queued with no panel running)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return &site.FieldError{Field: "operation", Value: args[0], Rule: "must be an operation id (see darse op ls)"}
			}
			o, err := a.operations(cmd.Context())
			if err != nil {
				return err
			}
			op, err := o.run(cmd.Context(), id)
			if op != nil {
				o.printPlan(cmd.OutOrStdout(), op.Site, op)
				fmt.Fprintf(cmd.OutOrStdout(), "operation %d (%s %s): %s\n", op.ID, op.Kind, op.Site, op.State)
			}
			return err
		},
	})
	return cmd
}
