package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/template"
)

func newSiteCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "site", Short: "Create, run and remove hosted sites"}
	cmd.AddCommand(newSiteCreateCmd(a), newSiteLsCmd(a), newSiteStatusCmd(a), newSiteRmCmd(a), newSiteDomainCmd(a), newSiteRenderCmd(a))
	for _, c := range []struct {
		use   string
		kind  func() ops.Kind
		short string
	}{
		{"up", func() ops.Kind { return new(ops.Up) }, "Converge the site's folder on the engine: create, recreate or start what is needed"},
		{"stop", func() ops.Kind { return new(ops.Stop) }, "Stop the site's containers"},
		{"restart", func() ops.Kind { return new(ops.Restart) }, "Restart the site's containers"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:               c.use + " NAME",
			Short:             c.short,
			Args:              cobra.ExactArgs(1),
			ValidArgsFunction: a.completeSite(),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := site.ValidateName(args[0]); err != nil {
					return err
				}
				o, err := a.operations(cmd.Context())
				if err != nil {
					return err
				}
				op, err := o.submit(cmd.Context(), args[0], c.kind())
				o.printPlan(cmd.OutOrStdout(), args[0], op)
				return err
			},
		})
	}
	return cmd
}

func printPlan(w io.Writer, name string, plan reconcile.Plan) {
	if len(plan) == 0 {
		fmt.Fprintf(w, "%s: up to date\n", name)
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(plan.String()), "\n") {
		fmt.Fprintf(w, "%s: %s\n", name, line)
	}
}

func newSiteCreateCmd(a *app) *cobra.Command {
	var k ops.Create
	var owner string
	var set []string
	cmd := &cobra.Command{
		Use:   "create NAME --template T [--domain FQDN] [--owner USER] [--set KEY=VALUE...]",
		Short: "Render a new site from a template and bring it up",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := site.ValidateName(name); err != nil {
				return err
			}
			k.Set = map[string]string{}
			for _, kv := range set {
				key, v, ok := strings.Cut(kv, "=")
				if !ok || key == "" {
					return &site.FieldError{Field: "--set", Value: kv, Rule: "must be KEY=VALUE"}
				}
				if _, dup := k.Set[key]; dup {
					return &site.FieldError{Field: "--set", Value: kv, Rule: "sets " + key + " twice"}
				}
				k.Set[key] = v
			}
			if err := a.checkCreate(name, owner, &k); err != nil {
				return err
			}
			o, err := a.operations(cmd.Context())
			if err != nil {
				return err
			}
			// The CLI is the operator: no quota. Bad input is answered
			// by the kind's check, with nothing recorded.
			id, err := o.runner.Submit(cmd.Context(), ops.Request{Site: name, Owner: owner, User: o.user, Quota: -1}, &k)
			if errors.Is(err, store.ErrPending) {
				return &site.FieldError{Field: "site name", Value: name, Rule: "is already being created"}
			}
			if err != nil {
				return err
			}
			op, err := o.run(cmd.Context(), id)
			o.printPlan(cmd.OutOrStdout(), name, op)
			if err != nil {
				return err
			}
			s, err := o.store.GetSite(cmd.Context(), name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: created from template %s at %s (folder %s)\n", s.Name, s.Template, s.Domain, a.cfg.SiteDir(s.Name))
			return nil
		},
	}
	cmd.Flags().StringVar(&k.Template, "template", "", "template to render the site from (see darse templates ls)")
	cmd.Flags().StringVar(&k.Domain, "domain", "", "domain the site answers at (default NAME.<platform domain>)")
	cmd.Flags().StringVar(&owner, "owner", "admin", "member owning the site")
	cmd.Flags().StringArrayVar(&set, "set", nil, "template parameter KEY=VALUE (repeatable)")
	cmd.RegisterFlagCompletionFunc("template", flagCompleter(a.templateNames))
	cmd.RegisterFlagCompletionFunc("owner", flagCompleter(a.userNames))
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	return cmd
}

// checkCreate answers what can be told wrong about a new site without the
// engine or the store: names, the domain's form, the template and its
// parameters, the names darse.yml reserves. Taken names and domains are
// the kind's check, with the store.
func (a *app) checkCreate(name, owner string, k *ops.Create) error {
	if err := site.ValidateOwner(owner); err != nil {
		return &site.FieldError{Field: "--owner", Value: owner, Rule: err.(*site.FieldError).Rule}
	}
	if k.Domain != "" {
		if err := site.ValidateDomain(k.Domain); err != nil {
			return err
		}
	}
	if k.Template == "" {
		return &site.FieldError{Field: "--template", Value: "", Rule: "is required"}
	}
	dir := hosting.Config{Srv: a.srv}.TemplatesDir()
	if err := installTemplates(dir); err != nil {
		return err
	}
	t, err := template.Load(dir, k.Template)
	if err != nil {
		return err
	}
	if _, err := t.Resolve(k.Set); err != nil {
		return err
	}
	cfg, err := platform.Load(a.srv)
	if err != nil {
		return err
	}
	if why, ok := cfg.Hosting(a.srv).Reserved[name]; ok {
		return &site.FieldError{Field: "site name", Value: name, Rule: "is reserved: " + why}
	}
	return nil
}

func newSiteDomainCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "domain", Short: "Add or remove a site's custom domains"}
	for _, c := range []struct {
		use, short, done string
		run              func(*hosting.Hosting) func(context.Context, string, string) (reconcile.Plan, error)
	}{
		{"add", "Route a custom domain to the site", "now routed", func(h *hosting.Hosting) func(context.Context, string, string) (reconcile.Plan, error) {
			return h.AddDomain
		}},
		{"rm", "Stop routing a custom domain to the site", "no longer routed", func(h *hosting.Hosting) func(context.Context, string, string) (reconcile.Plan, error) {
			return h.RemoveDomain
		}},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:               c.use + " NAME DOMAIN",
			Short:             c.short,
			Args:              cobra.ExactArgs(2),
			ValidArgsFunction: a.completeSite(),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := site.ValidateName(args[0]); err != nil {
					return err
				}
				if err := site.ValidateDomain(args[1]); err != nil {
					return err
				}
				h, err := a.Hosting(cmd.Context())
				if err != nil {
					return err
				}
				plan, err := c.run(h)(cmd.Context(), args[0], args[1])
				if err != nil {
					return err
				}
				printPlan(cmd.OutOrStdout(), args[0], plan)
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s %s\n", args[0], args[1], c.done)
				return nil
			},
		})
	}
	return cmd
}

func newSiteRenderCmd(a *app) *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "render NAME... | --all [--force]",
		Short: "Render sites again from the store, the templates and darse.yml, and converge what changed",
		Long: "After a template or the platform's configuration changed. A site whose files\n" +
			"were edited by hand is refused (its drift is named) unless --force.",
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return a.completeSite()(cmd, nil, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usagef(cmd, "name sites or give --all, not both")
			}
			for _, name := range args {
				if err := site.ValidateName(name); err != nil {
					return err
				}
			}
			h, err := a.Hosting(cmd.Context())
			if err != nil {
				return err
			}
			if all {
				if args, err = siteNames(cmd.Context(), a.store); err != nil {
					return err
				}
			}
			var failed int
			for _, name := range args {
				changed, plan, err := h.Render(cmd.Context(), name, force)
				if err != nil {
					failed++
					fmt.Fprintf(cmd.ErrOrStderr(), "darse: %v\n", err)
					continue
				}
				if len(changed) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: rendered files unchanged\n", name)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: rendered %s\n", name, strings.Join(changed, ", "))
				printPlan(cmd.OutOrStdout(), name, plan)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d sites not rendered", failed, len(args))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every site")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite files edited by hand")
	return cmd
}

func newSiteRmCmd(a *app) *cobra.Command {
	var purge, yes bool
	cmd := &cobra.Command{
		Use:               "rm NAME [--purge [--yes]]",
		Short:             "Remove a site's containers, networks and rendered files; data/ is kept unless --purge",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeSite(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := site.ValidateName(args[0]); err != nil {
				return err
			}
			if purge && !yes {
				if err := a.confirmPurge(cmd, args[0]); err != nil {
					return err
				}
			}
			o, err := a.operations(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := o.submit(cmd.Context(), args[0], &ops.Remove{Purge: purge}); err != nil {
				return err
			}
			kept := " (data/ kept)"
			if purge {
				kept = " (data/ purged)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: removed%s\n", args[0], kept)
			return nil
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete data/ and the site's volumes (asks first on a terminal)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "with --purge: delete without asking (needed when not on a terminal)")
	return cmd
}

func newSiteLsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls [--json]",
		Short: "List sites with their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := a.Hosting(cmd.Context())
			if err != nil {
				return err
			}
			sites, err := h.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), sitesJSON(sites))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTEMPLATE\tOWNER\tSTATE\tDOMAIN\tDRIFT")
			for _, s := range sites {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Template, s.Owner, s.State, s.Domain, driftText(s.Drift))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newSiteStatusCmd(a *app) *cobra.Command {
	var asJSON, secrets bool
	cmd := &cobra.Command{
		Use:               "status NAME [--json] [--secrets]",
		Short:             "Show each service's state, health, image, container and addresses, and folder drift",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeSite(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := site.ValidateName(args[0]); err != nil {
				return err
			}
			h, err := a.Hosting(cmd.Context())
			if err != nil {
				return err
			}
			s, err := h.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var secs []hosting.Secret
			if secrets {
				if secs, err = h.Secrets(cmd.Context(), args[0]); err != nil {
					return err
				}
			}
			if asJSON {
				if !secrets {
					return writeJSON(cmd.OutOrStdout(), siteStatusJSON{siteJSON(*s), frontAddresses(*s)})
				}
				type secretJSON struct {
					Name        string `json:"name"`
					Description string `json:"description"`
					Value       string `json:"value"`
				}
				out := struct {
					siteStatusJSON
					Secrets []secretJSON `json:"secrets"`
				}{siteStatusJSON: siteStatusJSON{siteJSON(*s), frontAddresses(*s)}, Secrets: []secretJSON{}}
				for _, sec := range secs {
					out.Secrets = append(out.Secrets, secretJSON{sec.Name, sec.Description, sec.Value})
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			for _, sec := range secs {
				fmt.Fprintf(w, "secret:   %s=%s   (%s)\n", sec.Name, sec.Value, sec.Description)
			}
			fmt.Fprintf(w, "site:     %s (%s)\ntemplate: %s\nowner:    %s\ndomain:   %s\ndrift:    %s\n",
				s.Name, s.State, s.Template, s.Owner, strings.Join(append([]string{s.Domain}, s.Aliases...), ", "), driftText(s.Drift))
			if fa := frontAddresses(*s); len(fa) > 0 {
				fmt.Fprintf(w, "front:    %s: %s\n", s.Front, frontText(fa))
			}
			if s.SSH != nil {
				fmt.Fprintf(w, "sftp:     %s   (%d keys; host key %s)\n", s.SSH.Command, s.SSH.Keys, s.SSH.HostKey)
			}
			if s.Error != "" {
				fmt.Fprintf(w, "error:    %s\n", s.Error)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\nSERVICE\tSTATE\tHEALTH\tIMAGE\tCONTAINER\tADDRESSES")
			for _, ss := range s.Services {
				id := ss.ContainerID
				if len(id) > 12 {
					id = id[:12]
				}
				var addrs []string
				for _, a := range ss.Addresses {
					for _, ip := range []string{a.IPv4, a.IPv6} {
						if ip != "" {
							addrs = append(addrs, ip)
						}
					}
				}
				state := ss.State
				if ss.State != "missing" && !ss.UpToDate {
					state += " (outdated)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ss.Service, state, dash(ss.Health), ss.Image, dash(id), dash(strings.Join(addrs, " ")))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&secrets, "secrets", false, "also print the values darse generated for the site (its database password): for its owner")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// confirmPurge asks, on a terminal, for the site's name before its files
// are deleted; without a terminal it refuses: scripts say --yes.
func (a *app) confirmPurge(cmd *cobra.Command, name string) error {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &usageError{msg: fmt.Sprintf("site rm %s --purge deletes the site's files: add --yes to confirm (no terminal to ask on)", name)}
	}
	// A site that does not exist is for the operation to report.
	if _, err := os.Stat(hosting.Config{Srv: a.srv}.SiteDir(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "delete the files of site %s? type its name: ", name)
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the confirmation: %w", err)
	}
	if strings.TrimSpace(line) != name {
		return fmt.Errorf("site %s: not confirmed, nothing removed", name)
	}
	return nil
}

func driftText(d []string) string {
	if len(d) == 0 {
		return "none"
	}
	return "edited by hand: " + strings.Join(d, ", ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// optionalSite is the SITE of a command taking [SITE], checked; "" for all.
func optionalSite(args []string) (string, error) {
	if len(args) == 0 {
		return "", nil
	}
	return args[0], site.ValidateName(args[0])
}

// siteStatusJSON is `site status --json`: the status and, apart, each
// service's addresses on the site's front network (its global IPv6 one
// on a host with ipv6.prefix).
type siteStatusJSON struct {
	hosting.Status
	FrontAddresses []frontAddress `json:"front_addresses"`
}

// frontAddress is one service's addresses on the site's front network.
type frontAddress struct {
	Service string `json:"service"`
	IPv4    string `json:"ipv4,omitempty"`
	IPv6    string `json:"ipv6,omitempty"`
}

func frontAddresses(s hosting.Status) []frontAddress {
	out := []frontAddress{}
	for _, ss := range s.Services {
		for _, a := range ss.Addresses {
			if s.Front != "" && a.Network == s.Front {
				out = append(out, frontAddress{ss.Service, a.IPv4, a.IPv6})
			}
		}
	}
	return out
}

func frontText(fa []frontAddress) string {
	var parts []string
	for _, a := range fa {
		parts = append(parts, strings.Join(slices.DeleteFunc([]string{a.Service, a.IPv4, a.IPv6}, func(s string) bool { return s == "" }), " "))
	}
	return strings.Join(parts, ", ")
}
