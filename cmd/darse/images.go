package main

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/darse/darse"
	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/images"
)

func newImagesCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Build the platform's container images locally",
		Long: "The platform's images (nginx, php-fpm) are built from Debian packages with\n" +
			"debootstrap and imported into the Docker engine: no registry is needed.",
	}
	cmd.AddCommand(newImagesBuildCmd(a), newImagesLsCmd(a))
	return cmd
}

func loadImages() ([]images.Definition, error) {
	sub, err := fs.Sub(darse.Images, "images")
	if err != nil {
		return nil, err
	}
	return images.Load(sub)
}

func newImagesBuildCmd(a *app) *cobra.Command {
	var (
		force   bool
		verbose bool
		b       images.Builder
	)
	cmd := &cobra.Command{
		Use:   "build [NAME...]",
		Short: "Build the images missing from the engine (all, or those named)",
		Long: "Build each image whose tag the engine does not have yet, or every one with\n" +
			"--force. Needs root (debootstrap) and network access to the Debian mirror;\n" +
			"downloaded packages are kept in --cache-dir for the next build.",
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			defs, err := loadImages()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, d := range defs {
				if strings.HasPrefix(d.Name, toComplete) && !slices.Contains(args, d.Name) {
					out = append(out, d.Name)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, names []string) error {
			ctx := cmd.Context()
			defs, err := loadImages()
			if err != nil {
				return err
			}
			defs, err = images.Select(defs, names)
			if err != nil {
				return err
			}
			e, err := a.Engine(ctx)
			if err != nil {
				return err
			}
			b.Engine, b.Log = e, a.log
			if verbose {
				b.Output = cmd.ErrOrStderr()
			}
			out := cmd.OutOrStdout()
			// With -v the tools' output goes to stderr: a live line
			// would be torn by it.
			live := isTerminal(out) && !verbose
			for _, d := range defs {
				p := newStepPrinter(out, live, fmt.Sprintf("%s (%s): ", d.Name, d.Tag))
				b.Progress = p.Step
				res, err := b.Ensure(ctx, d, force)
				switch {
				case err != nil:
					p.Done("failed")
					return err
				case res.Built:
					p.Done("built in " + res.Took.Round(time.Second).String())
				default:
					p.Done("already present")
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&force, "force", false, "rebuild images even if their tag is present")
	f.BoolVarP(&verbose, "verbose", "v", false, "show debootstrap's output")
	f.StringVar(&b.Mirror, "mirror", images.DefaultMirror, "Debian mirror")
	f.StringVar(&b.CacheDir, "cache-dir", images.DefaultCacheDir, "where downloaded packages are kept between builds")
	f.StringVar(&b.TempDir, "tmp-dir", "", "where build trees are made (default $TMPDIR or /tmp; must allow exec)")
	return cmd
}

func newImagesLsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [--json]",
		Short: "List the defined images and whether the engine has them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			defs, err := loadImages()
			if err != nil {
				return err
			}
			e, err := a.Engine(ctx)
			if err != nil {
				return err
			}
			list := []imageJSON{}
			for _, d := range defs {
				img, err := e.ImageInspect(ctx, d.Tag)
				switch {
				case errors.Is(err, engine.ErrImageNotFound):
					list = append(list, imageJSON{Name: d.Name, Tag: d.Tag})
				case err != nil:
					return err
				default:
					list = append(list, imageJSON{Name: d.Name, Tag: d.Tag, Present: true, Size: img.Size, Created: when(img.Created)})
				}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTAG\tSTATUS\tSIZE\tCREATED")
			for _, i := range list {
				if !i.Present {
					fmt.Fprintf(tw, "%s\t%s\tmissing\t-\t-\n", i.Name, i.Tag)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\tpresent\t%s\t%s\n", i.Name, i.Tag, humanSize(i.Size), i.Created.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func humanSize(n int64) string {
	const mb = 1000 * 1000
	if n < mb {
		return fmt.Sprintf("%d kB", n/1000)
	}
	return fmt.Sprintf("%.0f MB", float64(n)/mb)
}
