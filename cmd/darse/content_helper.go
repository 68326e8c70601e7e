package main

import (
	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/content"
)

// newContentHelperCmd is the hidden command content.Installer re-executes,
// as the site's user, to copy a site's current files for a merge: the
// copy must not run as root (see internal/content's package comment).
func newContentHelperCmd() *cobra.Command {
	return &cobra.Command{
		Use:    content.HelperCommand,
		Short:  "Copy a site's current files for a merge (internal, run by darse as the site's user)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return content.RunHelper(cmd.Context(), cmd.OutOrStdout())
		},
	}
}
