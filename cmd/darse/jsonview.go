package main

import (
	"encoding/json"
	"io"
	"time"

	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/template"
	"github.com/darse/darse/internal/version"
)

// What --json prints. These types are the CLI's documented output (see
// README.md), kept apart from the store's and the engine's so that those
// can change without breaking scripts: field names are snake_case, lists
// are [] when empty, times RFC 3339 (null when not reached yet).

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// when is a time that may not have happened yet: null in JSON.
func when(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// siteJSON normalises a site's status for printing.
func siteJSON(s hosting.Status) hosting.Status {
	s.Services = nonNil(s.Services)
	s.Drift = nonNil(s.Drift)
	for i := range s.Services {
		s.Services[i].Addresses = nonNil(s.Services[i].Addresses)
	}
	return s
}

func sitesJSON(list []*hosting.Status) []hosting.Status {
	out := make([]hosting.Status, len(list))
	for i, s := range list {
		out[i] = siteJSON(*s)
	}
	return out
}

type opJSON struct {
	ID         int64           `json:"id"`
	Kind       string          `json:"kind"`
	Site       string          `json:"site"`
	Owner      string          `json:"owner"`
	User       string          `json:"user"`
	Args       json.RawMessage `json:"args"`
	State      string          `json:"state"`
	Error      string          `json:"error"`
	CreatedAt  time.Time       `json:"created_at"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
}

func opsJSON(list []*store.Operation) []opJSON {
	out := []opJSON{}
	for _, op := range list {
		args := op.Args
		if len(args) == 0 {
			args = json.RawMessage("{}")
		}
		out = append(out, opJSON{ID: op.ID, Kind: op.Kind, Site: op.Site, Owner: op.Owner, User: op.User, Args: args,
			State: op.State, Error: op.Error, CreatedAt: op.CreatedAt.UTC(), StartedAt: when(op.StartedAt), FinishedAt: when(op.FinishedAt)})
	}
	return out
}

type userJSON struct {
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	Disabled  bool      `json:"disabled"`
	Sites     int       `json:"sites"` // sites owned
	Quota     int       `json:"quota"`
	CreatedAt time.Time `json:"created_at"`
}

type keyJSON struct {
	Site        string    `json:"site"`
	ID          int64     `json:"id"`
	Fingerprint string    `json:"fingerprint"`
	Key         string    `json:"key"` // authorized_keys form
	Comment     string    `json:"comment"`
	CreatedAt   time.Time `json:"created_at"`
}

func keysJSON(list []*store.SSHKey) []keyJSON {
	out := []keyJSON{}
	for _, k := range list {
		out = append(out, keyJSON{Site: k.Site, ID: k.ID, Fingerprint: k.Fingerprint, Key: k.Key, Comment: k.Comment, CreatedAt: k.CreatedAt.UTC()})
	}
	return out
}

type forwardJSON struct {
	Site          string    `json:"site"`
	HostPort      int       `json:"host_port"`
	Service       string    `json:"service"`
	ContainerPort int       `json:"container_port"`
	Proto         string    `json:"proto"`
	CreatedAt     time.Time `json:"created_at"`
}

func forwardsJSON(list []*store.Forward) []forwardJSON {
	out := []forwardJSON{}
	for _, f := range list {
		out = append(out, forwardJSON{Site: f.Site, HostPort: f.HostPort, Service: f.Service, ContainerPort: f.ContainerPort, Proto: f.Proto, CreatedAt: f.CreatedAt.UTC()})
	}
	return out
}

type templateJSON struct {
	Name        string      `json:"name"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Plan        planJSON    `json:"plan"`
	Params      []paramJSON `json:"params"`
	Runs        []string    `json:"runs"`               // "service=image", by service
	Database    string      `json:"database,omitempty"` // its database engine, if any
	Error       string      `json:"error,omitempty"`    // why the template could not be loaded
}

type planJSON struct {
	CPUs   string `json:"cpus"`
	Memory string `json:"memory"`
	Pids   int    `json:"pids"`
}

type paramJSON struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Default     string `json:"default"`
	Rule        string `json:"rule"`
}

func templateView(t *template.Template) templateJSON {
	v := templateJSON{Name: t.Name, Title: t.Title, Description: t.Description, Params: []paramJSON{}, Runs: []string{},
		Plan: planJSON{CPUs: t.Plan.CPUs, Memory: t.Plan.Memory, Pids: t.Plan.Pids}}
	for _, p := range t.Params {
		v.Params = append(v.Params, paramJSON{Name: p.Name, Description: p.Description, Default: p.Default, Rule: p.Rule})
	}
	return v
}

type platformJSON struct {
	Version    version.Info    `json:"version"`
	Domain     string          `json:"domain"`
	PanelURL   string          `json:"panel_url"`
	Containers []containerJSON `json:"containers"`
	Routers    []routerJSON    `json:"routers"`
	Drift      []string        `json:"drift"`
	Error      string          `json:"error,omitempty"` // why routers could not be read
}

type containerJSON struct {
	Name    string `json:"name"`
	Service string `json:"service"`
	ID      string `json:"id"`
	Image   string `json:"image"`
	State   string `json:"state"`
	Health  string `json:"health"`
}

type routerJSON struct {
	Name        string   `json:"name"`
	Rule        string   `json:"rule"`
	EntryPoints []string `json:"entry_points"`
	Service     string   `json:"service"`
	Status      string   `json:"status"`
	Provider    string   `json:"provider"`
}

func platformView(domain string, st *platform.Status) platformJSON {
	v := platformJSON{Version: version.Get(), Domain: domain, PanelURL: st.PanelURL, Drift: nonNil(st.Drift), Error: st.Error,
		Containers: []containerJSON{}, Routers: []routerJSON{}}
	for _, c := range st.Containers {
		v.Containers = append(v.Containers, containerJSON{Name: c.Name, Service: c.Service, ID: c.ID, Image: c.Image, State: c.State, Health: c.Health})
	}
	for _, r := range st.Routers {
		v.Routers = append(v.Routers, routerJSON{Name: r.Name, Rule: r.Rule, EntryPoints: nonNil(r.EntryPoints), Service: r.Service, Status: r.Status, Provider: r.Provider})
	}
	return v
}
