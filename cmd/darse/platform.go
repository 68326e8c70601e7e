package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/version"
)

func newPlatformCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "platform",
		Short: "Bring darse's own projects up or down: the front door (Traefik, firewall watcher) and the panel",
		Long: "The platform's configuration is <srv>/conf/darse.yml (domain, listening\n" +
			"addresses, ACME); without it sites answer at NAME.localhost over plain HTTP.",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Render <srv>/core/front and <srv>/apps/panel from darse.yml and converge them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.Platform(cmd.Context())
			if err != nil {
				return err
			}
			plan, err := p.Up(cmd.Context())
			printPlan(cmd.OutOrStdout(), "front", plan)
			if err != nil {
				return err
			}
			// For boot: the table in place before the engine starts a container.
			_, err = a.saveFirewall(cmd.Context())
			return err
		},
	}, &cobra.Command{
		Use:   "down",
		Short: "Stop and remove the platform's containers (sites keep running, unrouted)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.Platform(cmd.Context())
			if err != nil {
				return err
			}
			plan, err := p.Down(cmd.Context())
			printPlan(cmd.OutOrStdout(), "front", plan)
			return err
		},
	})
	var asJSON bool
	status := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show the front door's containers and the routers Traefik serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.Platform(cmd.Context())
			if err != nil {
				return err
			}
			st, err := p.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), platformView(p.Config.Domain, st))
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "darse:   %s\ndomain:  %s\nhttp:    %s\nhttps:   %s (ACME: %v)\npanel:   %s\ndrift:   %s\n\n",
				version.String(), p.Config.Domain, p.Config.Front.HTTP, p.Config.Front.HTTPS, p.Config.ACME != nil, st.PanelURL, driftText(st.Drift))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER\tSTATE\tHEALTH\tIMAGE")
			if len(st.Containers) == 0 {
				fmt.Fprintln(tw, "(none: run darse platform up)\t\t\t")
			}
			for _, c := range st.Containers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.State, dash(c.Health), c.Image)
			}
			tw.Flush()
			if st.Error != "" {
				fmt.Fprintf(w, "\nrouters: unavailable (%s)\n", st.Error)
				return nil
			}
			fmt.Fprintln(w)
			tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROUTER\tSTATUS\tENTRYPOINTS\tRULE")
			for _, r := range st.Routers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Status, strings.Join(r.EntryPoints, ","), r.Rule)
			}
			return tw.Flush()
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(status)
	return cmd
}
