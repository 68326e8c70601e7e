package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/store"
)

func newOpCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "op", Short: "Operations: every action asked through the panel, as recorded"}
	var f store.OpFilter
	var state string
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls [--site NAME] [--user NAME] [--state S] [-n N] [--json]",
		Short: "List operations, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if state != "" {
				f.States = strings.Split(state, ",")
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
				if list == nil {
					list = []*store.Operation{}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(list)
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
	cmd.AddCommand(ls)
	return cmd
}
