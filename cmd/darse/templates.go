package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/darse/darse"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/template"
)

// installTemplates writes the templates shipped in the binary into dir,
// touching only files whose bytes differ. Templates an operator adds under
// other names are left alone.
func installTemplates(dir string) error {
	return fs.WalkDir(darse.Templates, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := darse.Templates.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("templates", filepath.FromSlash(p))
		dst := filepath.Join(dir, rel)
		if err := writeIfChanged(dst, b); err != nil {
			return fmt.Errorf("install template file %s: %w", rel, err)
		}
		return nil
	})
}

func writeIfChanged(name string, b []byte) error {
	if old, err := os.ReadFile(name); err == nil && string(old) == string(b) {
		return nil
	}
	return render.WriteFile(name, b, 0o644)
}

func newTemplatesCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "templates", Short: "Site templates"}
	cmd.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "List the templates sites can be created from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := installTemplates(hosting.Config{Srv: a.srv}.TemplatesDir()); err != nil {
				return err
			}
			names, err := template.List(hosting.Config{Srv: a.srv}.TemplatesDir())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTITLE\tPLAN\tPARAMETERS")
			for _, n := range names {
				t, err := template.Load(hosting.Config{Srv: a.srv}.TemplatesDir(), n)
				if err != nil {
					fmt.Fprintf(tw, "%s\t(broken: %v)\t\t\n", n, err)
					continue
				}
				var params string
				for i, p := range t.Params {
					if i > 0 {
						params += ", "
					}
					params += p.Name + "=" + p.Default
				}
				fmt.Fprintf(tw, "%s\t%s\t%s CPU, %s, %d pids\t%s\n", n, t.Title, t.Plan.CPUs, t.Plan.Memory, t.Plan.Pids, params)
			}
			return tw.Flush()
		},
	})
	return cmd
}
