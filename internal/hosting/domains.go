package hosting

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/template"
)

// AddDomain routes a custom domain to the site: validated, unique across
// the platform, never one of the platform's own names. The folder is
// re-rendered and the web service recreated with the new route.
func (h *Hosting) AddDomain(ctx context.Context, name, domain string) (reconcile.Plan, error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := site.ValidateDomain(domain); err != nil {
		return nil, inputErr(err)
	}
	if h.underPlatform(domain) {
		return nil, inputErr(&site.FieldError{Field: "domain", Value: domain, Rule: "is one of the platform's own names (" + h.cfg.Domain + " and its subdomains are given by site name)"})
	}
	if err := h.checkHost(ctx, domain); err != nil {
		return nil, err
	}
	// Check the folder can be re-rendered before storing anything.
	s.Aliases = append(s.Aliases, domain)
	files, err := h.renderStored(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := h.checkDrift(ctx, s); err != nil {
		return nil, err
	}
	if err := h.store.AddDomain(ctx, name, domain); err != nil {
		if errors.Is(err, store.ErrDomainTaken) {
			return nil, inputErr(err)
		}
		return nil, err
	}
	_, plan, err := h.write(ctx, s, files)
	return plan, err
}

// underPlatform reports whether domain is the platform domain or under it.
func (h *Hosting) underPlatform(domain string) bool {
	return domain == h.cfg.Domain || strings.HasSuffix(domain, "."+h.cfg.Domain)
}

// RemoveDomain stops routing a custom domain to the site.
func (h *Hosting) RemoveDomain(ctx context.Context, name, domain string) (reconcile.Plan, error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return nil, err
	}
	i := -1
	for j, d := range s.Aliases {
		if d == domain {
			i = j
		}
	}
	if i < 0 {
		rule := "is not a custom domain of site " + name
		if domain == s.Domain {
			rule = "is the site's primary domain and cannot be removed"
		}
		return nil, inputErr(&site.FieldError{Field: "domain", Value: domain, Rule: rule})
	}
	s.Aliases = append(s.Aliases[:i:i], s.Aliases[i+1:]...)
	files, err := h.renderStored(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := h.checkDrift(ctx, s); err != nil {
		return nil, err
	}
	if err := h.store.RemoveDomain(ctx, name, domain); err != nil {
		return nil, err
	}
	_, plan, err := h.write(ctx, s, files)
	return plan, err
}

// checkDrift refuses to overwrite files edited by hand. A file holding
// what darse renders for the site now is not one: a process killed
// between writing a new render and recording it left it so.
func (h *Hosting) checkDrift(ctx context.Context, s *store.Site) error {
	dir := h.cfg.SiteDir(s.Name)
	drift, err := render.Drift(dir, s.Rendered)
	if err != nil {
		return err
	}
	if len(drift) > 0 {
		if now, err := h.renderStored(ctx, s); err == nil {
			drift, err = render.Drift(dir, pick(now.Manifest(), drift))
			if err != nil {
				return err
			}
		}
	}
	if len(drift) > 0 {
		return inputErr(&site.FieldError{Field: "site", Value: s.Name,
			Rule: "has files edited by hand (" + strings.Join(drift, ", ") + "); darse will not overwrite them: restore them or remove the site"})
	}
	return nil
}

// pick is m's entries for paths only (a path m lacks stays, as drifted).
func pick(m render.Manifest, paths []string) render.Manifest {
	out := render.Manifest{}
	for _, p := range paths {
		if sum, ok := m[p]; ok {
			out[p] = sum
		} else {
			out[p] = "" // no longer rendered: still the member's edit
		}
	}
	return out
}

// renderStored renders the stored site with the template as it is now;
// a site whose template offers SSH access gets its host port first.
func (h *Hosting) renderStored(ctx context.Context, s *store.Site) (render.Files, error) {
	t, err := template.Load(h.cfg.TemplatesDir(), s.Template)
	if err != nil {
		return nil, err
	}
	if _, err := h.ensureSSHPort(ctx, s.Name, t); err != nil {
		return nil, err
	}
	return h.render(ctx, t, s.Spec, s.Aliases)
}

// write puts a new render of the site in its folder and, when a file
// changed, converges it.
func (h *Hosting) write(ctx context.Context, s *store.Site, files render.Files) ([]string, reconcile.Plan, error) {
	t, err := template.Load(h.cfg.TemplatesDir(), s.Template)
	if err != nil {
		return nil, nil, err
	}
	if err := prepareSSH(t, h.cfg.SiteDir(s.Name)); err != nil {
		return nil, nil, fmt.Errorf("site %q: %w", s.Name, err)
	}
	changed, err := render.Write(h.cfg.SiteDir(s.Name), files, s.Rendered)
	if err != nil {
		return changed, nil, fmt.Errorf("write site %q: %w", s.Name, err)
	}
	if err := h.store.SetRendered(ctx, s.Name, files.Manifest()); err != nil {
		return changed, nil, err
	}
	if len(changed) == 0 {
		return nil, nil, nil
	}
	plan, err := h.Up(ctx, s.Name)
	return changed, plan, err
}
