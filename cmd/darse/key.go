package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/hosting"
)

func newKeyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "SSH public keys authorized on sites"}
	cmd.AddCommand(&cobra.Command{
		Use:   "add SITE [FILE]",
		Short: "Authorize one public key (from FILE, or stdin) on a site",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			if len(args) == 2 && args[1] != "-" {
				f, err := os.Open(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			b, err := io.ReadAll(io.LimitReader(in, 64<<10))
			if err != nil {
				return err
			}
			h, err := a.Hosting(cmd.Context())
			if err != nil {
				return err
			}
			k, err := h.AddKey(cmd.Context(), args[0], string(b))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: key %s added\n", args[0], k.Fingerprint)
			return printAccess(cmd, h, args[0])
		},
	}, &cobra.Command{
		Use:   "ls [SITE]",
		Short: "List the keys of a site (and how to connect), or of every site",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.Store(cmd.Context())
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
				h, err := a.Hosting(cmd.Context())
				if err != nil {
					return err
				}
				if err := printAccess(cmd, h, name); err != nil {
					return err
				}
			}
			keys, err := st.ListKeys(cmd.Context(), name)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SITE\tID\tFINGERPRINT\tCOMMENT\tADDED")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", k.Site, k.ID, k.Fingerprint, k.Comment, k.CreatedAt.Local().Format("2006-01-02"))
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use:   "rm SITE FINGERPRINT|ID",
		Short: "Remove a key from a site (refused from the next login on)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := a.Hosting(cmd.Context())
			if err != nil {
				return err
			}
			if err := h.RemoveKey(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: key %s removed\n", args[0], args[1])
			return nil
		},
	})
	return cmd
}

// printAccess says how to reach the site's files with its keys.
func printAccess(cmd *cobra.Command, h *hosting.Hosting, name string) error {
	a, err := h.SSHAccess(cmd.Context(), name)
	if err != nil || a == nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s: SFTP with its keys: %s\n", name, a.Command)
	if a.HostKey != "" {
		fmt.Fprintf(w, "%s: host key %s\n", name, a.HostKey)
	}
	return nil
}
