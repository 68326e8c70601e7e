package hosting

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/render"
)

// Quick is a site's state as a list of many sites shows it: read from one
// listing of every container and the services its docker-compose.yml
// declares, without asking the engine per site. Whether each container
// runs its folder's current configuration is left to Status.
type Quick struct {
	State    string
	Services []ServiceStatus
	Problem  string // why the folder could not be read
}

// QuickStates gives the state of each named site from cs, the engine's
// containers as the caller listed them once for all sites.
func (h *Hosting) QuickStates(names []string, cs []engine.ContainerInfo) map[string]Quick {
	bySite := map[string][]engine.ContainerInfo{}
	for _, c := range cs {
		if c.Site != "" && c.Project == c.Site { // only what the site's scope holds
			bySite[c.Site] = append(bySite[c.Site], c)
		}
	}
	out := make(map[string]Quick, len(names))
	for _, name := range names {
		var q Quick
		declared, err := declaredServices(h.cfg.SiteDir(name))
		if err != nil {
			q.Problem = err.Error()
		}
		q.Services, q.State = summarizeDeclared(declared, bySite[name])
		out[name] = q
	}
	return out
}

// Drifts reports, for each named site, the files of its folder edited by
// hand since darse last rendered them; a folder that cannot be read is
// reported as an error of its own.
func (h *Hosting) Drifts(ctx context.Context, names []string) (map[string][]string, map[string]error, error) {
	manifests, err := h.store.Manifests(ctx, names)
	if err != nil {
		return nil, nil, err
	}
	drifts, problems := map[string][]string{}, map[string]error{}
	for _, name := range names {
		d, err := render.Drift(h.cfg.SiteDir(name), manifests[name])
		if err != nil {
			problems[name] = err
		}
		drifts[name] = d
	}
	return drifts, problems, nil
}

// declaredServices reads the names of the services a site's
// docker-compose.yml runs (a service in compose profiles only when one of
// them is active, per COMPOSE_PROFILES in .env), without the cost of
// loading the project.
func declaredServices(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, render.ComposeFile))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", render.ComposeFile, err)
	}
	var f struct {
		Services map[string]struct {
			Profiles []string `yaml:"profiles"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("read %s: %w", render.ComposeFile, err)
	}
	active := activeProfiles(dir)
	names := make([]string, 0, len(f.Services))
	for n, svc := range f.Services {
		if len(svc.Profiles) == 0 || slices.ContainsFunc(svc.Profiles, func(p string) bool { return active[p] }) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// activeProfiles reads COMPOSE_PROFILES from the site's .env.
func activeProfiles(dir string) map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile(filepath.Join(dir, render.EnvFile))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "COMPOSE_PROFILES="); ok {
			for _, p := range strings.Split(strings.Trim(v, `"'`), ",") {
				if p = strings.TrimSpace(p); p != "" {
					out[p] = true
				}
			}
		}
	}
	return out
}

// summarizeDeclared gives the services and state of a site from its
// containers, a declared service without a container counting as missing.
func summarizeDeclared(declared []string, cs []engine.ContainerInfo) ([]ServiceStatus, string) {
	var out []ServiceStatus
	seen := map[string]bool{}
	for _, c := range cs {
		seen[c.Service] = true
		out = append(out, ServiceStatus{Service: c.Service, State: c.State, Health: c.Health, Image: c.Image, ContainerID: c.ID, Container: c.Name})
	}
	for _, d := range declared {
		if !seen[d] {
			out = append(out, ServiceStatus{Service: d, State: "missing"})
		}
	}
	return out, summarize(out)
}
