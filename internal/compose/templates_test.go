package compose

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/template"
)

// The shipped templates, rendered as darse renders a site (override with
// darse's and Traefik's labels, the front network, the SSH profile on or
// off), load under the tenant policy.
func TestTemplatesLoadAsTenants(t *testing.T) {
	for _, c := range []struct {
		template string
		params   map[string]string
		services int // with the ssh profile off
	}{{"static", nil, 1}, {"php", map[string]string{"PHP_MEMORY_LIMIT": "64M"}, 2}} {
		for _, profiles := range [][]string{nil, {"ssh"}} {
			t.Run(c.template+"/ssh="+boolName(len(profiles) > 0), func(t *testing.T) {
				tp, err := template.Load("../../templates", c.template)
				if err != nil {
					t.Fatal(err)
				}
				params, err := tp.Resolve(c.params)
				if err != nil {
					t.Fatal(err)
				}
				spec := site.Spec{Name: "blog", Template: tp.Name, Owner: "alice", Domain: "blog.example.org", Params: params, Plan: tp.Plan}
				dl, err := labels.Darse(spec.Name, spec.Owner)
				if err != nil {
					t.Fatal(err)
				}
				files, err := render.Site(tp, spec, render.Extras{
					DarseLabels:  dl,
					WebLabels:    map[string]string{"traefik.enable": "true", "traefik.http.routers.site-blog.rule": "Host(`blog.example.org`)"},
					FrontNetwork: FrontNetwork,
					FrontOnly:    []string{"ssh"},
					Profiles:     profiles,
				})
				if err != nil {
					t.Fatal(err)
				}
				dir := filepath.Join(t.TempDir(), "blog")
				if _, err := render.Write(dir, files, nil); err != nil {
					t.Fatal(err)
				}
				p, err := Load(context.Background(), dir, TenantPolicy)
				if err != nil {
					t.Fatal(err)
				}
				want := c.services + len(profiles)
				if len(p.Services) != want {
					t.Fatalf("%d services, want %d", len(p.Services), want)
				}
				for _, s := range p.Services {
					if l := s.Container.Labels; l[labels.SiteLabel] != "blog" || l[labels.OwnerLabel] != "alice" {
						t.Errorf("service %s labels = %v", s.Name, l)
					}
				}
				for _, s := range p.Services {
					if s.Name == tp.Web.Service && s.Container.Labels["traefik.enable"] != "true" {
						t.Errorf("web service lacks its traefik labels: %v", s.Container.Labels)
					}
				}
			})
		}
	}
}

func boolName(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
