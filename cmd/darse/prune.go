package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/prune"
)

func newPruneCmd(a *app) *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "remove unused darse images, old archives and old ended operations",
		Long: "Removes the images darse built that no site (running or stopped), no platform project and no\n" +
			"container uses, the archives of removed sites older than retention.archives, and the ended\n" +
			"operations older than retention.operations (darse.yml), and says what it freed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := platform.Load(a.srv)
			if err != nil {
				return err
			}
			e, err := a.Engine(ctx)
			if err != nil {
				return err
			}
			st, err := a.Store(ctx)
			if err != nil {
				return err
			}
			rep, err := prune.Run(ctx, pruneEngine{e}, st, prune.Options{Srv: a.srv, DryRun: dryRun,
				ArchivesAge: cfg.Retention.ArchivesAge(), OperationsAge: cfg.Retention.OperationsAge(), Now: time.Now()})
			if err != nil {
				return fmt.Errorf("prune: %w", err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			printPrune(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be removed, remove nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printPrune(w io.Writer, rep prune.Report) {
	verb := "removed"
	if rep.DryRun {
		verb = "would remove"
	}
	for _, why := range rep.KeptImages {
		fmt.Fprintf(w, "kept every darse image: a project failed to load: %s\n", why)
	}
	for _, img := range rep.Images {
		name := strings.Join(img.Tags, ", ")
		if name == "" {
			name = "<untagged>"
		}
		fmt.Fprintf(w, "%s image %s %s (%s)\n", verb, shortID(img.ID), name, bytesText(img.Size))
	}
	for _, ar := range rep.Archives {
		fmt.Fprintf(w, "%s archive %s (%s, %s)\n", verb, ar.Name, bytesText(ar.Size), ar.Modified.UTC().Format(time.DateOnly))
	}
	fmt.Fprintf(w, "%s %d image(s), %d archive(s), %d ended operation(s): %s freed\n",
		verb, len(rep.Images), len(rep.Archives), rep.Operations, bytesText(rep.BytesFreed))
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// bytesText is n in the largest binary unit that keeps it at least 1.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, u := float64(n), 0
	for f >= unit && u < 4 {
		f /= unit
		u++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTP"[u-1])
}

// pruneEngine is the engine as package prune sees it.
type pruneEngine struct{ e *engine.Engine }

func (p pruneEngine) Images(ctx context.Context) ([]prune.Image, error) {
	list, err := p.e.ImageList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]prune.Image, 0, len(list))
	for _, s := range list {
		out = append(out, prune.Image{ID: s.ID, Tags: s.Tags, Size: s.Size, Labels: s.Labels})
	}
	return out, nil
}

func (p pruneEngine) ContainerImages(ctx context.Context) ([]string, []string, error) {
	return p.e.ContainerImages(ctx)
}

// RemoveImage drops each tag, then the image itself if it had none: by
// ID alone the engine refuses an image with several tags unless forced,
// and prune never forces.
func (p pruneEngine) RemoveImage(ctx context.Context, img prune.Image) error {
	if len(img.Tags) == 0 {
		return p.e.ImageRemove(ctx, img.ID)
	}
	for _, t := range img.Tags {
		if err := p.e.ImageRemove(ctx, t); err != nil {
			return err
		}
	}
	return nil
}
