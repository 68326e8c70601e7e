package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls [--json]",
		Short: "List the templates sites can be created from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := hosting.Config{Srv: a.srv}.TemplatesDir()
			if err := installTemplates(dir); err != nil {
				return err
			}
			names, err := template.List(dir)
			if err != nil {
				return err
			}
			sums, err := template.Summaries(dir)
			if err != nil {
				return err
			}
			runs := map[string]template.Summary{}
			for _, s := range sums {
				runs[s.Name] = s
			}
			list := []templateJSON{}
			for _, n := range names {
				t, err := template.Load(dir, n)
				if err != nil {
					list = append(list, templateJSON{Name: n, Params: []paramJSON{}, Runs: []string{}, Error: err.Error()})
					continue
				}
				v := templateView(t)
				if s, ok := runs[n]; ok {
					v.Runs = append(v.Runs, s.Runs...)
					v.Database = s.Database
				}
				list = append(list, v)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTITLE\tPLAN\tRUNS\tPARAMETERS")
			for _, t := range list {
				if t.Error != "" {
					fmt.Fprintf(tw, "%s\t(broken: %s)\t\t\t\n", t.Name, t.Error)
					continue
				}
				var params []string
				for _, p := range t.Params {
					params = append(params, p.Name+"="+p.Default)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s CPU, %s, %d pids\t%s\t%s\n", t.Name, t.Title, t.Plan.CPUs, t.Plan.Memory, t.Plan.Pids, strings.Join(t.Runs, " "), strings.Join(params, ", "))
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(ls)
	return cmd
}
