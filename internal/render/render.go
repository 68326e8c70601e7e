// Package render turns a site spec and its template into the files of a
// compose project, and writes them atomically: temp file, fsync, rename,
// and only when the bytes changed.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	texttemplate "text/template"

	"go.yaml.in/yaml/v4"

	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/template"
)

// Names of the files darse renders into a site folder.
const (
	ComposeFile  = "docker-compose.yml"
	OverrideFile = "docker-compose.override.yml"
	EnvFile      = ".env"
	EnvTemplate  = "env.tmpl"
	ConfDir      = "conf"
	DataDir      = "data"
	SeedDir      = "seed"
)

// Files maps a slash-separated path relative to the site folder to its bytes.
type Files map[string][]byte

// Manifest maps each rendered path to the SHA-256 of its bytes: what the
// store keeps to tell a hand-edited folder (drift) from a rendered one.
type Manifest map[string]string

// Manifest hashes the files.
func (f Files) Manifest() Manifest {
	m := make(Manifest, len(f))
	for p, b := range f {
		sum := sha256.Sum256(b)
		m[p] = hex.EncodeToString(sum[:])
	}
	return m
}

// Paths returns the paths in order.
func (f Files) Paths() []string {
	ps := make([]string, 0, len(f))
	for p := range f {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// Extras is what the platform adds to a site's project in its override.
type Extras struct {
	DarseLabels map[string]string // on every service
	WebLabels   map[string]string // on the web service: Traefik's
	// ServiceLabels are added to the service each is keyed by (the
	// exposures of port forwards and SSH access); a service the template
	// does not have is skipped.
	ServiceLabels map[string]map[string]string
	// FrontNetwork, when set, is the external network the web service
	// joins (besides its project's default network) for Traefik to reach it.
	FrontNetwork string
	// FrontOnly are services that talk to no other service of the site
	// (SSH access): they join only FrontNetwork, where tenants cannot reach
	// one another, and need no network of the site's own.
	FrontOnly []string
	// Profiles are the compose profiles the site runs (COMPOSE_PROFILES in
	// .env, read by darse and docker-compose alike): SSH access ("ssh")
	// once the site has a key.
	Profiles []string
	// Hosts are "name:address" entries for the /etc/hosts of every service
	// but FrontOnly ones and the template's database: the site's own
	// domain resolving to the front door from inside the site (WordPress
	// calls itself for cron and its health page).
	Hosts []string
}

// Site renders the project for spec from t, with the platform's extras in
// the override file.
// The template's docker-compose.yml is copied as is: it is publishable and
// holds no site-specific value.
func Site(t *template.Template, spec site.Spec, x Extras) (Files, error) {
	files := Files{}
	compose, err := os.ReadFile(filepath.Join(t.Dir, ComposeFile))
	if err != nil {
		return nil, fmt.Errorf("render site %q: %w", spec.Name, err)
	}
	files[ComposeFile] = compose

	services, err := serviceNames(compose)
	if err != nil {
		return nil, fmt.Errorf("render site %q: template %s: %w", spec.Name, ComposeFile, err)
	}
	db := ""
	if t.Database != nil {
		db = t.Database.Service
	}
	override, err := overrideFile(spec, services, t.Web.Service, db, x)
	if err != nil {
		return nil, fmt.Errorf("render site %q: %w", spec.Name, err)
	}
	files[OverrideFile] = override

	env, err := envFile(t, spec)
	if err != nil {
		return nil, fmt.Errorf("render site %q: %w", spec.Name, err)
	}
	files[EnvFile] = append(env, "COMPOSE_PROFILES="+strings.Join(x.Profiles, ",")+"\n"...)

	confRoot := filepath.Join(t.Dir, ConfDir)
	err = filepath.WalkDir(confRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == confRoot && os.IsNotExist(err) {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files are allowed in conf/", p)
		}
		rel, err := filepath.Rel(t.Dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("render site %q: %w", spec.Name, err)
	}
	return files, nil
}

func serviceNames(compose []byte) ([]string, error) {
	var doc struct {
		Services map[string]yaml.Node `yaml:"services"`
	}
	if err := yaml.Unmarshal(compose, &doc); err != nil {
		return nil, err
	}
	if len(doc.Services) == 0 {
		return nil, fmt.Errorf("no services")
	}
	names := make([]string, 0, len(doc.Services))
	for n := range doc.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// ServiceOverride is what darse sets on one service in an override file.
type ServiceOverride struct {
	CPUs      float64           `yaml:"cpus,omitempty"`
	MemLimit  string            `yaml:"mem_limit,omitempty"`
	PidsLimit int               `yaml:"pids_limit,omitempty"`
	Labels    map[string]string `yaml:"labels"`
	Networks  []string          `yaml:"networks,omitempty"`
	Hosts     []string          `yaml:"extra_hosts,omitempty"`
}

type externalNetwork struct {
	External bool   `yaml:"external"`
	Name     string `yaml:"name"`
}

// Override encodes a docker-compose.override.yml: a comment saying what it
// holds, the services' overrides (label values escaped from compose's
// interpolation) and the external networks they join.
func Override(what string, services map[string]ServiceOverride, external ...string) ([]byte, error) {
	doc := struct {
		Services map[string]ServiceOverride `yaml:"services"`
		Networks map[string]externalNetwork `yaml:"networks,omitempty"`
	}{Services: map[string]ServiceOverride{}}
	for name, svc := range services {
		escaped := make(map[string]string, len(svc.Labels))
		for k, v := range svc.Labels {
			escaped[k] = escapeDollar(v)
		}
		svc.Labels = escaped
		doc.Services[name] = svc
	}
	for _, n := range external {
		if doc.Networks == nil {
			doc.Networks = map[string]externalNetwork{}
		}
		doc.Networks[n] = externalNetwork{External: true, Name: n}
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Rendered by darse: %s.\n# Change it with darse; a hand edit here shows as drift.\n", what)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// overrideFile holds what is specific to the site beyond .env values:
// darse's labels, Traefik's labels on the web service, and the plan's
// limits. The limits are literal because docker-compose 1.29 does not
// convert an interpolated pids_limit to a number.
func overrideFile(spec site.Spec, services []string, web, db string, x Extras) ([]byte, error) {
	cpus, err := strconv.ParseFloat(spec.Plan.CPUs, 64)
	if err != nil {
		return nil, fmt.Errorf("plan cpus %q: %w", spec.Plan.CPUs, err)
	}
	overrides := map[string]ServiceOverride{}
	found := false
	inner := 0 // services on the site's own network
	for _, s := range services {
		if x.FrontNetwork == "" || !slices.Contains(x.FrontOnly, s) {
			inner++
		}
	}
	for _, s := range services {
		svc := ServiceOverride{CPUs: cpus, MemLimit: spec.Plan.Memory, PidsLimit: spec.Plan.Pids, Labels: map[string]string{}}
		for k, v := range x.DarseLabels {
			svc.Labels[k] = v
		}
		for k, v := range x.ServiceLabels[s] {
			svc.Labels[k] = v
		}
		if s == web {
			found = true
			for k, v := range x.WebLabels {
				svc.Labels[k] = v
			}
			if x.FrontNetwork != "" {
				// Naming any network drops the implicit default: keep it
				// when other services need it to reach this one. A lone
				// service needs only front, and the site comes up faster
				// without a network of its own to create.
				svc.Networks = []string{"default", x.FrontNetwork}
				if inner == 1 {
					svc.Networks = []string{x.FrontNetwork}
				}
			}
		} else if x.FrontNetwork != "" && slices.Contains(x.FrontOnly, s) {
			svc.Networks = []string{x.FrontNetwork}
		}
		if s != db && !slices.Contains(x.FrontOnly, s) {
			svc.Hosts = x.Hosts
		}
		overrides[s] = svc
	}
	if !found {
		return nil, fmt.Errorf("web service %q is not in the template's %s", web, ComposeFile)
	}
	var external []string
	if x.FrontNetwork != "" {
		external = []string{x.FrontNetwork}
	}
	return Override("site "+spec.Name+": resource limits of its plan, ownership and routing labels", overrides, external...)
}

// escapeDollar keeps compose from interpolating a label value.
func escapeDollar(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// envData is what env.tmpl sees.
type envData struct {
	Name   string
	Domain string
	Owner  string
	Plan   site.Plan
	params map[string]string
}

func envFile(t *template.Template, spec site.Spec) ([]byte, error) {
	src, err := os.ReadFile(filepath.Join(t.Dir, EnvTemplate))
	if err != nil {
		return nil, err
	}
	data := envData{Name: spec.Name, Domain: spec.Domain, Owner: spec.Owner, Plan: spec.Plan, params: spec.Params}
	tpl, err := texttemplate.New(EnvTemplate).Option("missingkey=error").Funcs(texttemplate.FuncMap{
		"param": func(name string) (string, error) {
			v, ok := data.params[name]
			if !ok {
				return "", fmt.Errorf("parameter %s is not set", name)
			}
			return v, nil
		},
	}).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvTemplate, err)
	}
	var buf bytes.Buffer
	if err := tpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvTemplate, err)
	}
	return buf.Bytes(), nil
}

// Perm is the mode a rendered file is written with: .env holds the site's
// generated secrets (database passwords) and is root's alone; the rest is
// publishable.
func Perm(p string) os.FileMode {
	if p == EnvFile {
		return 0o600
	}
	return 0o644
}

// keepPerm restores the mode of an unchanged file (one rendered before its
// mode was tightened, or loosened by hand).
func keepPerm(name string, perm os.FileMode) error {
	st, err := os.Lstat(name)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() == perm {
		return err
	}
	return os.Chmod(name, perm)
}

// Write puts files into dir. Each file is written to a temp file, synced and
// renamed over the old one, and only when its bytes differ, so a failed
// write leaves the previous file intact and an unchanged render touches
// nothing. Files listed in prev but no longer rendered are removed. It
// returns the paths it changed.
func Write(dir string, files Files, prev Manifest) ([]string, error) {
	var changed []string
	for _, p := range files.Paths() {
		dst := filepath.Join(dir, filepath.FromSlash(p))
		perm := Perm(p)
		old, err := os.ReadFile(dst)
		if err == nil && bytes.Equal(old, files[p]) {
			if err := keepPerm(dst, perm); err != nil {
				return changed, err
			}
			continue
		}
		if err := WriteFile(dst, files[p], perm); err != nil {
			return changed, err
		}
		changed = append(changed, p)
	}
	stale := make([]string, 0)
	for p := range prev {
		if _, ok := files[p]; !ok {
			stale = append(stale, p)
		}
	}
	sort.Strings(stale)
	for _, p := range stale {
		if path.Clean(p) != p || strings.HasPrefix(p, "../") || strings.HasPrefix(p, DataDir+"/") {
			continue // never follow a bad manifest out of the folder or into data/
		}
		err := os.Remove(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil && !os.IsNotExist(err) {
			return changed, fmt.Errorf("remove stale %s: %w", p, err)
		}
		changed = append(changed, p)
	}
	return changed, nil
}

// WriteFile replaces name atomically: temp file in the same folder, fsync,
// rename, fsync of the folder.
func WriteFile(name string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Drift compares the folder with the manifest of its last render and returns
// the paths edited, added to conf/ or removed by hand.
func Drift(dir string, last Manifest) ([]string, error) {
	var drifted []string
	for p, sum := range last {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if os.IsNotExist(err) {
			drifted = append(drifted, p)
			continue
		}
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256(b)
		if hex.EncodeToString(h[:]) != sum {
			drifted = append(drifted, p)
		}
	}
	sort.Strings(drifted)
	return drifted, nil
}

// Seed fills a new site's data/ from the template's seed/ folder, and
// makes its database's folder. An existing data/ is never touched: it is
// the member's content.
func Seed(t *template.Template, dir string) error {
	if err := seedData(t, dir); err != nil {
		return err
	}
	return DatabaseDir(t, dir)
}

func seedData(t *template.Template, dir string) error {
	data := filepath.Join(dir, DataDir)
	if _, err := os.Lstat(data); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(dir, ".data.tmp*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	seed := filepath.Join(t.Dir, SeedDir)
	err = filepath.WalkDir(seed, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == seed && os.IsNotExist(err) {
				return filepath.SkipDir
			}
			return err
		}
		rel, _ := filepath.Rel(seed, p)
		dst := filepath.Join(tmp, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o644)
		default:
			return fmt.Errorf("%s: only regular files and folders are allowed in seed/", p)
		}
	})
	if err != nil {
		return fmt.Errorf("seed data: %w", err)
	}
	return os.Rename(tmp, data)
}
