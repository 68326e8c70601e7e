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
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/darse/darse"
	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/images"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/render"
)

// The platform's projects, as folders under <srv> (and in the repository).
const (
	FrontDir = "core/front"
	PanelDir = "apps/panel"
)

// Platform brings up and reports darse's own projects.
type Platform struct {
	Srv    string
	Config Config
	Engine interface {
		reconcile.Engine
		images.Engine
		NetworkSubnets(ctx context.Context, name string) ([]string, error)
		VolumesDir(ctx context.Context) (string, error)
	}
	// Binaries are darse's own static binaries (darse, darse-fw) put in
	// the image the firewall watcher and the panel run from.
	Binaries []string
	// Socket is the engine's unix socket on the host, which the platform's
	// containers mount (default /var/run/docker.sock; DOCKER_HOST's when
	// it names another, as the test suite's own engine does).
	Socket string
	// Volumes is where the engine keeps local volumes on the host, which
	// the panel mounts (backups of named volumes); Up sets it from the
	// engine, and the panel renders Docker's default without it.
	Volumes string
	Log     *slog.Logger
}

// EngineSocket is the host path of the engine's socket named by
// dockerHost (DOCKER_HOST), or the default one.
func EngineSocket(dockerHost string) string {
	if p, ok := strings.CutPrefix(dockerHost, "unix://"); ok && p != "" {
		return p
	}
	return "/var/run/docker.sock"
}

func (p *Platform) socket() string {
	if p.Socket == "" {
		return EngineSocket("")
	}
	return p.Socket
}

func (p *Platform) volumes() string {
	if p.Volumes == "" {
		return "/var/lib/docker/volumes"
	}
	return p.Volumes
}

// project is one of the platform's compose projects.
type project struct {
	dir  string // FrontDir or PanelDir
	name string // compose project name
}

func (p *Platform) projects() []project {
	return []project{{FrontDir, p.Config.Front.Project}, {PanelDir, p.Config.Panel.Project}}
}

// Dir is a project's folder under <srv>.
func (p *Platform) Dir(project string) string {
	return filepath.Join(p.Srv, filepath.FromSlash(project))
}

// traefikData is what conf/traefik.yml.tmpl sees.
type traefikData struct {
	Front
	ACME       *ACME
	Resolver   string
	Constraint string
	Network    string
	// DNS-01 for the wildcard certificate (acme.dns), when set.
	DNS               *ACMEDNS
	DNSResolver       string
	SkipAuthoritative bool
}

// shipped reads a project's files from the binary, rendering *.tmpl files
// with data.
func shipped(dir string, data any) (render.Files, error) {
	files := render.Files{}
	err := fs.WalkDir(darse.Projects, dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := darse.Projects.ReadFile(path)
		if err != nil {
			return err
		}
		rel := path[len(dir)+1:]
		if rel == "env.example" || filepath.Ext(rel) == ".md" {
			return nil // documentation, not part of the project
		}
		if filepath.Ext(rel) == ".tmpl" {
			rel = rel[:len(rel)-len(".tmpl")]
			tpl, err := texttemplate.New(rel).Option("missingkey=error").Parse(string(b))
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := tpl.Execute(&buf, data); err != nil {
				return err
			}
			b = buf.Bytes()
		}
		files[rel] = b
		return nil
	})
	return files, err
}

// RenderFront computes the front door's files: the publishable compose
// file, .env and Traefik's static configuration. image is the darse image
// the firewall watcher runs from.
func (p *Platform) RenderFront(image string) (render.Files, error) {
	data := traefikData{Front: p.Config.Front, ACME: p.Config.ACME, Resolver: Resolver,
		Constraint: labels.ProviderConstraint, Network: compose.FrontNetwork}
	if a := p.Config.ACME; a != nil && a.DNS != nil {
		data.DNS, data.DNSResolver = a.DNS, DNSResolver
		data.SkipAuthoritative = a.DNS.CheckAuthoritative != nil && !*a.DNS.CheckAuthoritative
	}
	files, err := shipped(FrontDir, data)
	if err != nil {
		return nil, fmt.Errorf("render front door: %w", err)
	}
	if err := p.renderDNS(files); err != nil {
		return nil, fmt.Errorf("render front door: %w", err)
	}
	fw := p.Config.Firewall
	env := "# Rendered by darse platform up from conf/darse.yml.\n" +
		"COMPOSE_PROJECT_NAME=" + p.Config.Front.Project + "\n" +
		"DARSE_IMAGE=" + image + "\n" +
		"DARSE_SRV=" + p.Srv + "\n" +
		"DOCKER_SOCKET=" + p.socket() + "\n" +
		"DARSE_FW_TABLE=" + fw.Table + "\n" +
		"DARSE_FW_INPUT=" + fw.Input + "\n" +
		"DARSE_FW_LABEL=" + fw.Label + "\n" +
		"DARSE_FW_EGRESS_DENY=" + strings.Join(fw.EgressDeny, ",") + "\n"
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

// RenderPanel computes the panel's files: the publishable compose file,
// .env, and the override routing the panel's host to it (typed labels, as
// for sites: the router is "site-<panel project>", a name no site can take).
// trusted is the front network's subnets, whence Traefik connects.
func (p *Platform) RenderPanel(image string, trusted []string) (render.Files, error) {
	files, err := shipped(PanelDir, nil)
	if err != nil {
		return nil, fmt.Errorf("render panel: %w", err)
	}
	h := p.Config.Hosting(p.Srv)
	// The router is named after the panel's compose project: unique per
	// platform on one engine, and a name no site may take.
	// Traefik probes /healthz (the process alone, not the store or the
	// engine: an admin needs the panel most when those fail); no Docker
	// healthcheck, which would keep Traefik from routing the panel for a
	// whole interval after each start.
	tl, err := labels.Traefik(labels.Route{Site: p.Config.Panel.Project, Domains: []string{p.Config.PanelHost()}, Port: 8080,
		Health:      &labels.Health{Path: "/healthz", Hostname: p.Config.PanelHost(), Interval: "30s"},
		EntryPoints: h.EntryPoints, CertResolver: h.CertResolver, Wildcard: h.Wildcard, Network: compose.FrontNetwork})
	if err != nil {
		return nil, fmt.Errorf("render panel: %w", err)
	}
	tl[labels.ManagedLabel] = labels.ManagedValue
	override, err := render.Override("darse's panel: routing labels", map[string]render.ServiceOverride{"panel": {Labels: tl}})
	if err != nil {
		return nil, fmt.Errorf("render panel: %w", err)
	}
	files[render.OverrideFile] = override
	secure := ""
	if p.Config.ACME != nil {
		secure = "1"
	}
	files[render.EnvFile] = []byte("# Rendered by darse platform up from conf/darse.yml.\n" +
		"COMPOSE_PROJECT_NAME=" + p.Config.Panel.Project + "\n" +
		"DARSE_IMAGE=" + image + "\n" +
		"DARSE_SRV=" + p.Srv + "\n" +
		"DOCKER_SOCKET=" + p.socket() + "\n" +
		"DOCKER_VOLUMES=" + p.volumes() + "\n" +
		"PANEL_URL=" + p.Config.PanelURL() + "\n" +
		"PANEL_SECURE=" + secure + "\n" +
		"PANEL_TRUSTED_PROXY=" + strings.Join(trusted, ",") + "\n")
	return files, nil
}

// TopProject is the compose project name of <srv>/docker-compose.yml.
const TopProject = "darse"

// RenderTop computes <srv>/docker-compose.yml, the one-shot service that
// runs `darse platform up` from the darse image, and its .env.
func (p *Platform) RenderTop(image string) render.Files {
	return render.Files{
		"docker-compose.yml": darse.Compose,
		render.EnvFile: []byte("# Rendered by darse platform up.\n" +
			"COMPOSE_PROJECT_NAME=" + TopProject + "\n" +
			"DARSE_IMAGE=" + image + "\n" +
			"DARSE_SRV=" + p.Srv + "\n" +
			"DOCKER_SOCKET=" + p.socket() + "\n"),
	}
}

// writeTop writes <srv>/docker-compose.yml and its .env (only what changed).
func (p *Platform) writeTop(image string) error {
	files := p.RenderTop(image)
	if _, err := render.Write(p.Srv, files, readManifest(p.Srv)); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(p.Srv, "docker-compose.yml"), err)
	}
	return writeManifest(p.Srv, files.Manifest())
}

// Up ensures the darse image and the shared front network, renders the
// top-level compose file, the front door and the panel, and converges the
// last two. It returns the steps taken.
func (p *Platform) Up(ctx context.Context) (reconcile.Plan, error) {
	image, err := (&images.Builder{Engine: p.Engine, Log: p.Log}).EnsureSelf(ctx, p.Binaries)
	if err != nil {
		return nil, err
	}
	if err := p.writeTop(image); err != nil {
		return nil, err
	}
	fn, err := p.Config.frontNetwork()
	if err != nil {
		return nil, err
	}
	if err := p.Engine.CreateNetwork(ctx, fn); err != nil {
		return nil, fmt.Errorf("front network: %w", err)
	}
	if err := checkFront(ctx, p.Engine, p.Log, fn); err != nil {
		return nil, err
	}
	subnets, err := p.Engine.NetworkSubnets(ctx, compose.FrontNetwork)
	if err != nil {
		return nil, fmt.Errorf("front network: %w", err)
	}
	front, err := p.RenderFront(image)
	if err != nil {
		return nil, err
	}
	if p.Volumes, err = p.Engine.VolumesDir(ctx); err != nil {
		return nil, err
	}
	panel, err := p.RenderPanel(image, subnets)
	if err != nil {
		return nil, err
	}
	if err := p.writeDNSSecrets(); err != nil {
		return nil, err
	}
	// Where the docker-proxy service puts the socket Traefik reads.
	if err := os.MkdirAll(filepath.Join(p.Dir(FrontDir), "data", "proxy"), 0o700); err != nil {
		return nil, err
	}
	var plan reconcile.Plan
	for _, pr := range []struct {
		dir   string
		files render.Files
	}{{FrontDir, front}, {PanelDir, panel}} {
		steps, err := p.converge(ctx, pr.dir, pr.files)
		plan = append(plan, steps...)
		if err != nil {
			return plan, err
		}
	}
	return plan, nil
}

// converge writes a project's files (only the bytes that changed) and
// brings it to its declared state.
func (p *Platform) converge(ctx context.Context, dir string, files render.Files) (reconcile.Plan, error) {
	folder := p.Dir(dir)
	if err := os.MkdirAll(filepath.Join(folder, "data"), 0o700); err != nil {
		return nil, err
	}
	if _, err := render.Write(folder, files, readManifest(folder)); err != nil {
		return nil, fmt.Errorf("write %s: %w", dir, err)
	}
	if err := writeManifest(folder, files.Manifest()); err != nil {
		return nil, err
	}
	proj, err := compose.Load(ctx, folder, compose.PlatformPolicy)
	if err != nil {
		return nil, err
	}
	if dir == PanelDir {
		return p.upPanel(ctx, proj) // upgrade.go
	}
	return reconcile.Converge(ctx, p.Log, p.Engine, reconcile.Scope{Project: proj.Name}, proj, reconcile.Up)
}

// Down stops and removes the platform's containers, panel first; the front
// network stays, since sites are attached to it.
func (p *Platform) Down(ctx context.Context) (reconcile.Plan, error) {
	var plan reconcile.Plan
	prs := p.projects()
	for i := len(prs) - 1; i >= 0; i-- {
		proj, err := compose.Load(ctx, p.Dir(prs[i].dir), compose.PlatformPolicy)
		if err != nil {
			proj = nil // folder gone: remove what carries the project's labels
		}
		steps, err := reconcile.Converge(ctx, p.Log, p.Engine, reconcile.Scope{Project: prs[i].name}, proj, reconcile.DownPlanner(false))
		plan = append(plan, steps...)
		if err != nil {
			return plan, err
		}
	}
	return plan, nil
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
	PanelURL   string                `json:"panel_url"`
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
	st := &Status{PanelURL: p.Config.PanelURL()}
	st.Drift = []string{}
	for _, pr := range p.projects() {
		obs, err := p.Engine.Observe(ctx, reconcile.Scope{Project: pr.name})
		if err != nil {
			return nil, err
		}
		st.Containers = append(st.Containers, obs.Containers...)
		drift, err := render.Drift(p.Dir(pr.dir), readManifest(p.Dir(pr.dir)))
		if err != nil {
			return nil, err
		}
		for _, d := range drift {
			st.Drift = append(st.Drift, pr.dir+"/"+d)
		}
	}
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
