package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/sshkey"
)

func newKeyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "SSH public keys authorized on sites"}
	var asJSON bool
	ls := &cobra.Command{
		Use:               "ls [SITE] [--json]",
		Short:             "List the keys of a site (and how to connect), or of every site",
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
			if name != "" && !asJSON {
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
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), keysJSON(keys))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SITE\tID\tFINGERPRINT\tCOMMENT\tADDED")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", k.Site, k.ID, k.Fingerprint, k.Comment, k.CreatedAt.Local().Format("2006-01-02"))
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON (the keys only; see site status --json for access)")
	cmd.AddCommand(&cobra.Command{
		Use:               "add SITE [FILE]",
		Short:             "Authorize one public key (from FILE, or stdin) on a site",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: keyAddCompletion(a),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := site.ValidateName(args[0]); err != nil {
				return err
			}
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
			if _, err := sshkey.Parse(string(b)); err != nil {
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
	}, ls, &cobra.Command{
		Use:               "rm SITE FINGERPRINT|ID",
		Short:             "Remove a key from a site (refused from the next login on)",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeSiteThen(keyIDs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := site.ValidateName(args[0]); err != nil {
				return err
			}
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

// keyAddCompletion completes the SITE, then the key FILE.
func keyAddCompletion(a *app) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return a.completeSite()(cmd, args, toComplete)
		}
		if len(args) == 1 {
			return []cobra.Completion{"pub"}, cobra.ShellCompDirectiveFilterFileExt
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
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
