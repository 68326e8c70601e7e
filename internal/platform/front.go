package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	texttemplate "text/template"
	"time"

	"github.com/darse/darse"
	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/images"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/render"
)

// FrontDir is the front door's project folder under <srv>.
const FrontDir = "core/front"

// Platform brings up and reports darse's own projects.
type Platform struct {
	Srv    string
	Config Config
	Engine interface {
		reconcile.Engine
		images.Engine
	}
	// Binaries are darse's own static binaries (darse, darse-fw) put in
	// the image the firewall watcher runs from.
	Binaries []string
	Log      *slog.Logger
}

// Dir is the front door's folder.
func (p *Platform) Dir() string { return filepath.Join(p.Srv, filepath.FromSlash(FrontDir)) }

// traefikData is what conf/traefik.yml.tmpl sees.
type traefikData struct {
	Front
	ACME       *ACME
	Resolver   string
	Constraint string
	Network    string
}

// RenderFront computes the front door's files: the publishable compose
// file, .env and Traefik's static configuration. image is the darse image
// the firewall watcher runs from.
func (p *Platform) RenderFront(image string) (render.Files, error) {
	files := render.Files{}
	root := "core/front"
	err := fs.WalkDir(darse.Core, root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := darse.Core.ReadFile(path)
		if err != nil {
			return err
		}
		rel := path[len(root)+1:]
		if filepath.Ext(rel) == ".tmpl" {
			rel = rel[:len(rel)-len(".tmpl")]
			tpl, err := texttemplate.New(rel).Option("missingkey=error").Parse(string(b))
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			data := traefikData{Front: p.Config.Front, ACME: p.Config.ACME, Resolver: Resolver,
				Constraint: labels.ProviderConstraint, Network: compose.FrontNetwork}
			if err := tpl.Execute(&buf, data); err != nil {
				return err
			}
			b = buf.Bytes()
		}
		files[rel] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("render front door: %w", err)
	}
	fw := p.Config.Firewall
	env := "# Rendered by darse platform up from conf/darse.yml.\n" +
		"COMPOSE_PROJECT_NAME=" + p.Config.Front.Project + "\n" +
		"DARSE_IMAGE=" + image + "\n" +
		"DARSE_SRV=" + p.Srv + "\n" +
		"DARSE_FW_TABLE=" + fw.Table + "\n" +
		"DARSE_FW_INPUT=" + fw.Input + "\n" +
		"DARSE_FW_LABEL=" + fw.Label + "\n"
	if a := p.Config.ACME; a != nil && a.CACertificates != "" {
		pem, err := os.ReadFile(a.CACertificates)
		if err != nil {
			return nil, fmt.Errorf("render front door: acme.ca_certificates: %w", err)
		}
		files["conf/acme-ca.pem"] = pem
		env += "LEGO_CA_CERTIFICATES=/etc/traefik/acme-ca.pem\n"
	} else {
		env += "LEGO_CA_CERTIFICATES=\n"
	}
	files[render.EnvFile] = []byte(env)
	return files, nil
}

// Up renders the front door, ensures the shared front network and
// converges the project. It returns the steps it took.
func (p *Platform) Up(ctx context.Context) (reconcile.Plan, error) {
	image, err := (&images.Builder{Engine: p.Engine, Log: p.Log}).EnsureSelf(ctx, p.Binaries)
	if err != nil {
		return nil, err
	}
	files, err := p.RenderFront(image)
	if err != nil {
		return nil, err
	}
	dir := p.Dir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	prev := readManifest(dir)
	if _, err := render.Write(dir, files, prev); err != nil {
		return nil, fmt.Errorf("write front door: %w", err)
	}
	if err := writeManifest(dir, files.Manifest()); err != nil {
		return nil, err
	}
	if err := p.Engine.CreateNetwork(ctx, compose.Front()); err != nil {
		return nil, fmt.Errorf("front network: %w", err)
	}
	proj, err := compose.Load(ctx, dir, compose.PlatformPolicy)
	if err != nil {
		return nil, err
	}
	obs, err := p.Engine.Observe(ctx, proj.Name)
	if err != nil {
		return nil, err
	}
	plan := reconcile.Up(proj, obs)
	return plan, reconcile.Apply(ctx, p.Log, p.Engine, proj, plan)
}

// Down stops and removes the front door's containers; the front network
// stays, since sites are attached to it.
func (p *Platform) Down(ctx context.Context) (reconcile.Plan, error) {
	proj, err := compose.Load(ctx, p.Dir(), compose.PlatformPolicy)
	if err != nil {
		return nil, err
	}
	obs, err := p.Engine.Observe(ctx, proj.Name)
	if err != nil {
		return nil, err
	}
	plan := reconcile.Down(proj, obs, false)
	return plan, reconcile.Apply(ctx, p.Log, p.Engine, proj, plan)
}

// manifestFile records the front door's last render, to detect drift and
// remove files no longer rendered.
const manifestFile = ".darse-render.json"

func readManifest(dir string) render.Manifest {
	var m render.Manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err == nil {
		json.Unmarshal(b, &m)
	}
	return m
}

func writeManifest(dir string, m render.Manifest) error {
	b, _ := json.MarshalIndent(m, "", "  ")
	return render.WriteFile(filepath.Join(dir, manifestFile), b, 0o644)
}

// Status is the front door as it stands.
type Status struct {
	Containers []reconcile.Container `json:"containers"`
	Routers    []Router              `json:"routers"`
	Drift      []string              `json:"drift"`
	Error      string                `json:"error,omitempty"` // why routers could not be read
}

// Router is one router Traefik serves.
type Router struct {
	Name        string   `json:"name"`
	Rule        string   `json:"rule"`
	EntryPoints []string `json:"entryPoints"`
	Service     string   `json:"service"`
	Status      string   `json:"status"`
	Provider    string   `json:"provider"`
}

// Status reports the front door's containers, drift and the routers
// Traefik serves (read from its API on the host's loopback).
func (p *Platform) Status(ctx context.Context) (*Status, error) {
	st := &Status{}
	obs, err := p.Engine.Observe(ctx, p.Config.Front.Project)
	if err != nil {
		return nil, err
	}
	st.Containers = obs.Containers
	drift, err := render.Drift(p.Dir(), readManifest(p.Dir()))
	if err != nil {
		return nil, err
	}
	st.Drift = append([]string{}, drift...)
	routers, err := p.Routers(ctx)
	if err != nil {
		st.Error = err.Error()
	}
	st.Routers = routers
	return st, nil
}

// Routers asks Traefik's API for its HTTP routers, darse's sites first.
func (p *Platform) Routers(ctx context.Context) ([]Router, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Config.Front.API+"/api/http/routers", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("traefik api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("traefik api: %s", resp.Status)
	}
	var rs []Router
	if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
		return nil, fmt.Errorf("traefik api: %w", err)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
	return rs, nil
}
