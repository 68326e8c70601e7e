package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/darse/darse"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/template"
)

// Shell completion of names reads the store and the templates, never the
// engine, and never fails loudly: on any error it offers nothing.

// completionStore opens the store only if it exists: completing must not
// create a database under --srv.
func (a *app) completionStore(ctx context.Context) (*store.Store, bool) {
	if _, err := os.Stat(filepath.Join(a.srv, "conf", "darse.db")); err != nil {
		return nil, false
	}
	st, err := a.Store(ctx)
	return st, err == nil
}

// nameCompleter completes the argument at position pos (0-based) with
// names(); other positions get nothing, and no file names.
func nameCompleter(pos int, names func(ctx context.Context) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) != pos {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, n := range names(cmd.Context()) {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeSite completes the first argument with the stored sites' names.
func (a *app) completeSite() cobra.CompletionFunc { return nameCompleter(0, a.siteNames) }

// completeUser completes the first argument with the members' names.
func (a *app) completeUser() cobra.CompletionFunc { return nameCompleter(0, a.userNames) }

func (a *app) siteNames(ctx context.Context) []string {
	st, ok := a.completionStore(ctx)
	if !ok {
		return nil
	}
	sites, err := st.ListSites(ctx)
	if err != nil {
		return nil
	}
	var names []string
	for _, s := range sites {
		names = append(names, s.Name)
	}
	return names
}

func (a *app) userNames(ctx context.Context) []string {
	st, ok := a.completionStore(ctx)
	if !ok {
		return nil
	}
	users, err := st.ListUsers(ctx)
	if err != nil {
		return nil
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	return names
}

// templateNames are the templates shipped in the binary and those an
// operator added under <srv>/templates, without installing anything.
func (a *app) templateNames(context.Context) []string {
	var names []string
	if entries, err := fs.ReadDir(darse.Templates, "templates"); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	if installed, err := template.List(hosting.Config{Srv: a.srv}.TemplatesDir()); err == nil {
		names = append(names, installed...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// flagCompleter completes a flag's value with names().
func flagCompleter(names func(ctx context.Context) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, n := range names(cmd.Context()) {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeSiteThen completes a SITE first argument, then the second with
// what second(site) lists (a site's key fingerprints, its host ports).
func (a *app) completeSiteThen(second func(ctx context.Context, st *store.Store, site string) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return a.completeSite()(cmd, args, toComplete)
		}
		st, ok := a.completionStore(cmd.Context())
		if len(args) != 1 || !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, n := range second(cmd.Context(), st, args[0]) {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func keyIDs(ctx context.Context, st *store.Store, site string) []string {
	keys, err := st.ListKeys(ctx, site)
	if err != nil {
		return nil
	}
	var out []string
	for _, k := range keys {
		out = append(out, strconv.FormatInt(k.ID, 10))
	}
	return out
}

func hostPorts(ctx context.Context, st *store.Store, site string) []string {
	fs, err := st.ListForwards(ctx, site)
	if err != nil {
		return nil
	}
	var out []string
	for _, f := range fs {
		out = append(out, strconv.Itoa(f.HostPort))
	}
	return out
}
