package main

import "github.com/spf13/cobra"

// newImagesCmd is filled in by the images work.
func newImagesCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "images", Short: "Build the platform's container images locally"}
}
