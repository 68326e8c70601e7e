package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/site"
)

func newForwardCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "forward", Short: "Port forwards: a site's container port on a host port of 40000-50000"}
	var udp bool
	add := &cobra.Command{
		Use:               "add SITE PORT [--udp]",
		Short:             "Forward a container port of the site's web service; the host port is allocated",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeSite(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := site.ValidateName(args[0]); err != nil {
				return err
			}
			port, err := strconv.Atoi(args[1])
			if err != nil || port < 1 || port > 65535 {
				return &site.FieldError{Field: "port", Value: args[1], Rule: "must be a port number from 1 to 65535"}
			}
			o, err := a.operations(cmd.Context())
			if err != nil {
				return err
			}
			proto := "tcp"
			if udp {
				proto = "udp"
			}
			op, err := o.submit(cmd.Context(), args[0], &ops.Forward{Port: port, Proto: proto})
			// The host port allocated is in the operation's arguments,
			// recorded as soon as the forward was stored.
			var fa *ops.Forward
			if op != nil {
				k, derr := ops.Decode(op)
				if derr != nil && err == nil {
					err = derr
				}
				fa, _ = k.(*ops.Forward)
			}
			if fa != nil && fa.HostPort != 0 {
				fs, lerr := o.store.ListForwards(cmd.Context(), args[0])
				if lerr != nil && err == nil {
					err = lerr
				}
				for _, f := range fs {
					if f.HostPort == fa.HostPort {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: host port %d -> %s:%d/%s\n", args[0], f.HostPort, f.Service, f.ContainerPort, f.Proto)
					}
				}
			}
			o.printPlan(cmd.OutOrStdout(), args[0], op)
			return err
		},
	}
	add.Flags().BoolVar(&udp, "udp", false, "forward UDP instead of TCP")
	var asJSON bool
	ls := &cobra.Command{
		Use:               "ls [SITE] [--json]",
		Short:             "List the forwards of a site, or of every site",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: a.completeSite(),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := optionalSite(args)
			if err != nil {
				return err
			}
			st, err := a.Store(cmd.Context())
			if err != nil {
				return err
			}
			fs, err := st.ListForwards(cmd.Context(), name)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), forwardsJSON(fs))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SITE\tHOST PORT\tSERVICE\tPORT\tPROTO")
			for _, f := range fs {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", f.Site, f.HostPort, f.Service, f.ContainerPort, f.Proto)
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(add, ls, &cobra.Command{
		Use:               "rm SITE HOSTPORT",
		Short:             "Stop forwarding a host port",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeSiteThen(hostPorts),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := site.ValidateName(args[0]); err != nil {
				return err
			}
			hp, err := strconv.Atoi(args[1])
			if err != nil || hp < 1 || hp > 65535 {
				return &site.FieldError{Field: "host port", Value: args[1], Rule: "must be a port number from 1 to 65535"}
			}
			o, err := a.operations(cmd.Context())
			if err != nil {
				return err
			}
			op, err := o.submit(cmd.Context(), args[0], &ops.Unforward{HostPort: hp})
			o.printPlan(cmd.OutOrStdout(), args[0], op)
			if err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: host port %d no longer forwarded\n", args[0], hp)
			}
			return err
		},
	})
	return cmd
}
