// Package hosting is what the CLI and the panel call to manage sites: it
// validates input, keeps the spec in the store, renders the folder and
// converges it on the engine through the reconciler.
package hosting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/template"
)

// Config is the platform's configuration as far as sites are concerned.
type Config struct {
	Srv          string   // root of the /srv layout
	Domain       string   // platform domain: sites default to NAME.Domain
	EntryPoints  []string // Traefik entrypoints of the site routers
	CertResolver string   // Traefik ACME resolver; empty: no TLS
	Wildcard     string   // domain whose wildcard certificate the front door holds (acme.dns); empty: none
	FrontNetwork string   // network Traefik reaches sites on (shard 0); empty: none
	FrontAPI     string   // Traefik's API (host:port), which rollouts wait on; empty: none
	// FrontPrefix6 is the host's routed IPv6 prefix (ipv6.prefix): front
	// networks made from now on take their /64s from it; invalid: the ULA.
	FrontPrefix6 netip.Prefix
	// ShardSites is how many sites a front shard holds (front.shard_sites
	// in darse.yml, validated there); 0: every site on FrontNetwork.
	ShardSites int
	// Reserved are site names no site may take, each with why (the
	// platform's compose projects, darse.yml's reserved list).
	Reserved map[string]string
	// ReservedHosts are host names no site may answer at, each with why
	// (the platform domain, the panel's, traefik. and api. under it).
	ReservedHosts map[string]string
}

// UsersDir is where site folders live.
func (c Config) UsersDir() string { return filepath.Join(c.Srv, "users") }

// TemplatesDir is where templates are read from.
func (c Config) TemplatesDir() string { return filepath.Join(c.Srv, "templates") }

// SiteDir is the folder of a site.
func (c Config) SiteDir(name string) string { return filepath.Join(c.UsersDir(), name) }

// Engine is what hosting needs of the Docker engine (*engine.Engine).
type Engine interface {
	reconcile.Engine
	// ForeignObjects names the containers, networks and volumes carrying
	// the compose project label project but not darse.site=project:
	// another project's, which a new site of that name must not take.
	ForeignObjects(ctx context.Context, project string) ([]string, error)
}

// Hosting manages sites.
type Hosting struct {
	cfg    Config
	store  *store.Store
	engine Engine
	log    *slog.Logger
	drains reconcile.Drains // the drains of concurrent rollouts, in rounds (rollout.go)
}

// New returns a Hosting over the store and engine.
func New(cfg Config, st *store.Store, eng Engine, log *slog.Logger) *Hosting {
	return &Hosting{cfg: cfg, store: st, engine: eng, log: log}
}

// CreateRequest is what a member or operator asks for.
type CreateRequest struct {
	Name     string
	Template string
	Domain   string // empty: NAME.<platform domain>
	Owner    string
	Set      map[string]string
}

// ErrInput marks errors caused by the request itself, as opposed to the engine or the disk.
var ErrInput = errors.New("invalid input")

// inputError reads as the error it wraps and matches ErrInput.
type inputError struct{ err error }

func (e inputError) Error() string   { return e.err.Error() }
func (e inputError) Unwrap() []error { return []error{ErrInput, e.err} }

func inputErr(err error) error { return inputError{err} }

// SiteOwner names the member owning the site; an input error naming the
// site when there is none.
func (h *Hosting) SiteOwner(ctx context.Context, name string) (string, error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return "", err
	}
	return s.Owner, nil
}

// CheckCreate answers at once what Create would refuse, writing nothing.
func (h *Hosting) CheckCreate(ctx context.Context, req CreateRequest) error {
	_, _, err := h.spec(ctx, req)
	return err
}

// CheckName answers whether a new site may take the name, and so the
// host name NAME.<platform domain> (the create form's as-you-type check).
func (h *Hosting) CheckName(ctx context.Context, name string) error {
	if err := site.ValidateName(name); err != nil {
		return inputErr(err)
	}
	if why, ok := h.cfg.Reserved[name]; ok {
		return inputErr(&site.FieldError{Field: "site name", Value: name, Rule: "is reserved: " + why})
	}
	if _, err := h.store.GetSite(ctx, name); err == nil {
		return inputErr(&site.FieldError{Field: "site name", Value: name, Rule: "is already taken"})
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return h.checkHost(ctx, site.DefaultDomain(name, h.cfg.Domain))
}

// checkHost refuses a host name for a site: one of the platform's own,
// or one another site answers at.
func (h *Hosting) checkHost(ctx context.Context, domain string) error {
	if why, ok := h.cfg.ReservedHosts[domain]; ok {
		return inputErr(&site.FieldError{Field: "domain", Value: domain, Rule: "is reserved: " + why})
	}
	if owner, err := h.store.DomainOwner(ctx, domain); err == nil {
		return inputErr(&site.FieldError{Field: "domain", Value: domain, Rule: "is already used by site " + owner})
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// spec validates req and returns the spec it would create, without writing anything.
func (h *Hosting) spec(ctx context.Context, req CreateRequest) (site.Spec, *template.Template, error) {
	if err := h.CheckName(ctx, req.Name); err != nil {
		return site.Spec{}, nil, err
	}
	t, err := template.Load(h.cfg.TemplatesDir(), req.Template)
	if err != nil {
		var fe *site.FieldError
		if errors.As(err, &fe) {
			return site.Spec{}, nil, inputErr(err)
		}
		return site.Spec{}, nil, err
	}
	params, err := t.Resolve(req.Set)
	if err != nil {
		return site.Spec{}, nil, inputErr(err)
	}
	spec := site.Spec{Name: req.Name, Template: req.Template, Owner: req.Owner, Domain: req.Domain, Params: params, Plan: t.Plan}
	if spec.Domain == "" {
		spec.Domain = site.DefaultDomain(req.Name, h.cfg.Domain)
	}
	if err := spec.Validate(); err != nil {
		return site.Spec{}, nil, inputErr(err)
	}
	if d := spec.Domain; d != site.DefaultDomain(spec.Name, h.cfg.Domain) && h.underPlatform(d) {
		return site.Spec{}, nil, inputErr(&site.FieldError{Field: "domain", Value: d,
			Rule: "is under the platform domain, whose names are given by site name (" + site.DefaultDomain(spec.Name, h.cfg.Domain) + ")"})
	}
	if err := h.checkHost(ctx, spec.Domain); err != nil {
		return site.Spec{}, nil, err
	}
	if err := h.checkFolderFree(spec.Name, spec.Owner, t); err != nil {
		return site.Spec{}, nil, inputErr(err)
	}
	foreign, err := h.engine.ForeignObjects(ctx, spec.Name)
	if err != nil {
		return site.Spec{}, nil, err
	}
	if len(foreign) > 0 {
		return site.Spec{}, nil, inputErr(&site.FieldError{Field: "site name", Value: spec.Name,
			Rule: "is the name of another compose project on this engine (" + strings.Join(foreign, ", ") + ")"})
	}
	return spec, t, nil
}

// keptFile, in a folder whose data/ `site rm` kept, names the member
// whose files they are: only that member's new site of the same name
// adopts them.
const keptFile = ".darse-kept"

// checkFolderFree accepts a missing folder, or one holding only data/
// (and the database folder of t, if it has one) kept by `site rm` from
// owner's own site of that name, which the new site adopts. Kept files of another member's (or of unknown owner) are never
// handed over.
func (h *Hosting) checkFolderFree(name, owner string, t *template.Template) error {
	dir := h.cfg.SiteDir(name)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != render.DataDir && e.Name() != keptFile && (t.Database == nil || e.Name() != t.Database.Dir) {
			return &site.FieldError{Field: "site name", Value: name, Rule: fmt.Sprintf("folder %s already exists and is not darse's", dir)}
		}
	}
	if len(entries) == 0 {
		return nil
	}
	if kept := keptOwner(dir); kept != owner {
		return &site.FieldError{Field: "site name", Value: name, Rule: fmt.Sprintf("folder %s holds the files kept from a removed site that is not %s's; an operator must move or delete them first", dir, owner)}
	}
	return nil
}

// adopted drops the note on kept files once a new site has them.
func adopted(dir string) { os.Remove(filepath.Join(dir, keptFile)) }

// keptOwner reads whose files a kept folder holds; "" when unknown.
func keptOwner(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, keptFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Create validates req, stores the spec, renders the folder and brings the
// site up, and returns the plan carried out. Bad input writes nothing. If
// rendering fails the row and the folder are both removed; if only
// bringing it up fails the site stays, and `up` finishes the job.
func (h *Hosting) Create(ctx context.Context, req CreateRequest) (reconcile.Plan, error) {
	spec, t, err := h.spec(ctx, req)
	if err != nil {
		return nil, err
	}
	files, err := h.render(ctx, t, spec, nil)
	if err != nil {
		return nil, err
	}
	if err := h.store.CreateSite(ctx, spec); err != nil {
		if errors.Is(err, store.ErrSiteExists) || errors.Is(err, store.ErrDomainTaken) {
			return nil, inputErr(err)
		}
		return nil, err
	}
	dir := h.cfg.SiteDir(spec.Name)
	_, statErr := os.Stat(dir)
	fresh := errors.Is(statErr, os.ErrNotExist)
	undo := func(cause error) error {
		if fresh {
			os.RemoveAll(dir)
		} else {
			removeRendered(dir, files.Manifest())
		}
		if err := h.store.DeleteSite(context.WithoutCancel(ctx), spec.Name); err != nil {
			h.log.Error("undo create", "site", spec.Name, "err", err)
		}
		return cause
	}
	if err := h.assignShard(ctx, spec.Name); err != nil {
		return nil, undo(err)
	}
	if t.SSH != nil {
		if _, err := h.ensureSSHPort(ctx, spec.Name, t); err != nil {
			return nil, undo(err)
		}
	}
	// The front shard and the SSH access's host port need the site's row:
	// render again with them.
	if files, err = h.render(ctx, t, spec, nil); err != nil {
		return nil, undo(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, undo(err)
	}
	if err := render.Seed(t, dir); err != nil {
		return nil, undo(err)
	}

	if err := prepareSSH(t, dir); err != nil {
		return nil, undo(fmt.Errorf("site %q: %w", spec.Name, err))
	}
	if _, err := render.Write(dir, files, nil); err != nil {
		return nil, undo(fmt.Errorf("write site %q: %w", spec.Name, err))
	}
	if err := h.store.SetRendered(ctx, spec.Name, files.Manifest()); err != nil {
		return nil, undo(err)
	}
	adopted(dir)
	h.log.Info("site created", "site", spec.Name, "template", spec.Template)
	plan, err := h.Up(ctx, spec.Name)
	if err == nil {
		err = h.checkDatabaseStarted(ctx, spec.Name)
	}
	if err != nil {
		return plan, fmt.Errorf("site %q created but not started: %w", spec.Name, err)
	}
	return plan, nil
}

// render renders the site's files: the template's, the override with the
// platform's labels and the site's exposures, and its authorized_keys.
func (h *Hosting) render(ctx context.Context, t *template.Template, spec site.Spec, aliases []string) (render.Files, error) {
	dl, err := labels.Darse(spec.Name, spec.Owner)
	if err != nil {
		return nil, err
	}
	var health *labels.Health
	if hc := t.Web.Health; hc != nil {
		health = &labels.Health{Path: hc.Path, Hostname: hc.Host, Interval: hc.Interval}
	}
	front, err := h.frontName(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	tl, err := labels.Traefik(labels.Route{
		Health:       health,
		Site:         spec.Name,
		Domains:      append([]string{spec.Domain}, aliases...),
		Port:         t.Web.Port,
		EntryPoints:  h.cfg.EntryPoints,
		CertResolver: h.cfg.CertResolver,
		Wildcard:     h.cfg.Wildcard,
		Network:      front,
	})
	if err != nil {
		return nil, err
	}
	xl, err := h.exposures(ctx, spec.Name, t) // port forwards and SSH access (forwards.go)
	if err != nil {
		return nil, err
	}
	x := render.Extras{DarseLabels: dl, WebLabels: tl, ServiceLabels: xl, FrontNetwork: front}
	if front != "" {
		// The primary domain only: it does not change in the site's life,
		// so adding an alias does not recreate the database. FrontGateway
		// is the host's address on shard 0, which every shard reaches.
		x.Hosts = []string{spec.Domain + ":" + compose.FrontGateway}
	}
	if t.SSH != nil {
		x.FrontOnly = []string{t.SSH.Service}
	}
	var keys []*store.SSHKey
	if t.SSH != nil {
		if keys, err = h.store.ListKeys(ctx, spec.Name); err != nil {
			return nil, err
		}
		if len(keys) > 0 {
			x.Profiles = []string{sshProfile} // no key, no sshd
		}
	}
	files, err := render.Site(t, spec, x)
	if err != nil {
		return nil, err
	}
	if t.SSH != nil {
		files[authorizedKeysFile] = AuthorizedKeys(spec.Name, keys)
	}
	return files, nil
}

// removeRendered deletes the files of a render and the SSH host key,
// leaving data/ and anything else.
func removeRendered(dir string, m render.Manifest) {
	for p := range m {
		os.Remove(filepath.Join(dir, filepath.FromSlash(p)))
	}
	os.Remove(filepath.Join(dir, render.ConfDir)) // only if now empty
	removeSSH(dir)
}

// scope is what a site owns on the engine: its project (a site's project
// is always named after it: the tenant policy refuses another name) and
// only what carries its darse.site label.
func scope(name string) reconcile.Scope { return reconcile.Scope{Project: name, Site: name} }

func (h *Hosting) get(ctx context.Context, name string) (*store.Site, error) {
	s, err := h.store.GetSite(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, inputErr(&site.FieldError{Field: "site", Value: name, Rule: "no such site"})
	}
	return s, err
}

func (h *Hosting) converge(ctx context.Context, name string, plan reconcile.Planner) (reconcile.Plan, error) {
	if _, err := h.get(ctx, name); err != nil {
		return nil, err
	}
	p, err := compose.Load(ctx, h.cfg.SiteDir(name), compose.TenantPolicy)
	if err != nil {
		return nil, err
	}
	if h.cfg.FrontNetwork != "" {
		if err := h.ensureFront(ctx, h.engine, name); err != nil {
			return nil, err
		}
	}
	steps, err := reconcile.Converge(ctx, h.log, h.engine, scope(name), p, plan)
	if err != nil {
		return steps, fmt.Errorf("site %q: %w", name, err)
	}
	return steps, nil
}

// Up converges the site's folder, as it is on disk, on the engine.
func (h *Hosting) Up(ctx context.Context, name string) (reconcile.Plan, error) {
	return h.converge(ctx, name, reconcile.Up)
}

// Stop stops the site's containers.
func (h *Hosting) Stop(ctx context.Context, name string) (reconcile.Plan, error) {
	return h.converge(ctx, name, reconcile.Stop)
}

// Restart brings the site up and restarts what was already running.
func (h *Hosting) Restart(ctx context.Context, name string) (reconcile.Plan, error) {
	return h.converge(ctx, name, reconcile.Restart)
}

// Remove takes the site down (containers, networks), deletes its rendered
// files and its row; data/ is kept unless purge.
func (h *Hosting) Remove(ctx context.Context, name string, purge bool) error {
	s, err := h.get(ctx, name)
	if err != nil {
		return err
	}
	dir := h.cfg.SiteDir(name)
	// The tenant policy holds here too: a folder whose .env names another
	// project must not take that project down.
	p, err := compose.Load(ctx, dir, compose.TenantPolicy)
	if err != nil {
		p = nil // folder broken or gone: take down whatever carries the project's labels
	}
	if _, err := reconcile.Converge(ctx, h.log, h.engine, scope(name), p, reconcile.DownPlanner(purge)); err != nil {
		return fmt.Errorf("site %q: %w", name, err)
	}
	if purge {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("site %q: remove folder: %w", name, err)
		}
	} else {
		removeRendered(dir, s.Rendered)
		if err := render.WriteFile(filepath.Join(dir, keptFile), []byte(s.Owner+"\n"), 0o600); err != nil {
			return fmt.Errorf("site %q: record whose kept files are: %w", name, err)
		}
	}
	if err := h.store.DeleteSite(ctx, name); err != nil {
		return err
	}
	h.log.Info("site removed", "site", name, "purge", purge)
	return nil
}
