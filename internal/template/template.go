// Package template reads a site template: a folder holding a publishable
// docker-compose.yml, an env.tmpl rendered into the site's .env, conf/ files,
// an optional seed/ copied into data/ when the site is created, and
// template.yml, the metadata describing all of it.
package template

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/darse/darse/internal/site"
)

// MetaFile is the metadata file in every template folder.
const MetaFile = "template.yml"

// Template is a loaded template folder.
type Template struct {
	Name string
	Dir  string
	Meta
}

// Meta is template.yml.
type Meta struct {
	Title       string    `yaml:"title"`
	Description string    `yaml:"description"`
	Web         Web       `yaml:"web"`
	SSH         *SSH      `yaml:"ssh"`
	Plan        site.Plan `yaml:"plan"`
	Params      []Param   `yaml:"params"`
	// Database is the site's own database service, if the template has one.
	Database *Database `yaml:"database"`
	// Secrets are generated at create and written to .env only.
	Secrets []Secret `yaml:"secrets"`
}

// Web names the service Traefik routes the site's domains to.
type Web struct {
	Service string `yaml:"service"`
	Port    int    `yaml:"port"`
	// Health is the HTTP probe Traefik runs against the service.
	Health *Health `yaml:"health"`
}

// Health is an HTTP probe: GET Path with Host Host must answer 2xx or 3xx.
type Health struct {
	Path     string `yaml:"path"`
	Host     string `yaml:"host"`
	Interval string `yaml:"interval"`
}

// SSH names the service giving members SFTP access to the site's files,
// exposed on a host port of its own. Optional: a template without it has
// no SSH access.
type SSH struct {
	Service string `yaml:"service"`
	Port    int    `yaml:"port"` // container port sshd listens on
	// User is the account members log in as; UID and GID are its ids: the
	// owner of data/ and of the host key, as which the service runs.
	User string `yaml:"user"`
	UID  int    `yaml:"uid"`
	GID  int    `yaml:"gid"`
}

// Param is one value a member may set when creating a site.
type Param struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Default     string `yaml:"default"`
	Pattern     string `yaml:"pattern"` // anchored regular expression the value must match
	Rule        string `yaml:"rule"`    // the pattern in words, shown when a value is refused
	re          *regexp.Regexp
}

var (
	nameRE      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	paramNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)
	// Values land unquoted in .env files read by compose-go and by
	// docker-compose 1.29; keep them to characters both read the same way.
	safeValueRE = regexp.MustCompile(`^[A-Za-z0-9._:/@+,=-]*$`)
)

// ErrNotFound is returned when no template has the given name.
var ErrNotFound = errors.New("no such template")

// Load reads the template called name from root (e.g. /srv/templates).
func Load(root, name string) (*Template, error) {
	if !nameRE.MatchString(name) {
		return nil, &site.FieldError{Field: "template", Value: name, Rule: "must be a lowercase template name"}
	}
	dir := filepath.Join(root, name)
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if errors.Is(err, fs.ErrNotExist) {
		avail, _ := List(root)
		return nil, &site.FieldError{Field: "template", Value: name, Rule: fmt.Sprintf("unknown template (available: %s)", strings.Join(avail, ", "))}
	}
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", name, err)
	}
	t := &Template{Name: name, Dir: dir}
	if err := decodeStrict(b, &t.Meta); err != nil {
		return nil, fmt.Errorf("template %q: %s: %w", name, MetaFile, err)
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("template %q: %s: %w", name, MetaFile, err)
	}
	if err := t.checkCompose(); err != nil {
		return nil, fmt.Errorf("template %q: %s: %w", name, MetaFile, err)
	}
	return t, nil
}

func decodeStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// List returns the names of the templates under root, sorted.
func List(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(root, e.Name(), MetaFile)); err == nil && e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// check validates the metadata itself, so a broken template fails loudly
// when loaded rather than producing a broken site.
func (t *Template) check() error {
	if strings.TrimSpace(t.Title) == "" {
		return errors.New("title is empty")
	}
	if t.Web.Service == "" || t.Web.Port < 1 || t.Web.Port > 65535 {
		return errors.New("web needs a service and a port between 1 and 65535")
	}
	if h := t.Web.Health; h != nil {
		if d, err := time.ParseDuration(h.Interval); !strings.HasPrefix(h.Path, "/") || err != nil || d < time.Second {
			return errors.New("web.health needs a path starting with / and an interval of at least 1s")
		}
	}
	if s := t.SSH; s != nil {
		if s.Service == "" || s.Service == t.Web.Service || s.Port < 1 || s.Port > 65535 || s.User == "" || s.UID < 1 || s.GID < 1 {
			return errors.New("ssh needs a service other than web, a port between 1 and 65535, a user and its uid and gid (not root)")
		}
	}
	if err := t.Plan.Validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range t.Params {
		p := &t.Params[i]
		if !paramNameRE.MatchString(p.Name) || strings.HasPrefix(p.Name, "DARSE_") || strings.HasPrefix(p.Name, "COMPOSE_") {
			return fmt.Errorf("param %q: name must be UPPER_SNAKE_CASE and not start with DARSE_ or COMPOSE_", p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("param %q: declared twice", p.Name)
		}
		seen[p.Name] = true
		if p.Pattern == "" || p.Rule == "" {
			return fmt.Errorf("param %q: needs a pattern and a rule", p.Name)
		}
		re, err := regexp.Compile(`^(?:` + p.Pattern + `)$`)
		if err != nil {
			return fmt.Errorf("param %q: pattern: %w", p.Name, err)
		}
		p.re = re
		if err := p.check(p.Default); err != nil {
			return fmt.Errorf("default: %w", err)
		}
	}
	if err := t.checkSecrets(seen); err != nil {
		return err
	}
	if t.Database != nil {
		return t.Database.check(t)
	}
	return nil
}

func (p *Param) check(v string) error {
	if !p.re.MatchString(v) || !safeValueRE.MatchString(v) {
		return &site.FieldError{Field: "parameter " + p.Name, Value: v, Rule: p.Rule}
	}
	return nil
}

// Resolve checks the values a member set against the template's parameters
// and fills in defaults. Unknown names are refused rather than ignored, and
// so are values for the template's secrets, which it generates afresh: the
// result is the spec's parameters, kept in the store, so every later render
// writes the same secrets.
func (t *Template) Resolve(set map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(t.Params)+len(t.Secrets))
	for _, s := range t.Secrets {
		if v, ok := set[s.Name]; ok {
			_ = v // a password typed by a member is never echoed
			return nil, &site.FieldError{Field: "parameter " + s.Name, Value: "(not shown)", Rule: errGenerated.Error()}
		}
		v, err := generateSecret()
		if err != nil {
			return nil, err
		}
		out[s.Name] = v
	}
	known := map[string]bool{}
	for i := range t.Params {
		p := &t.Params[i]
		known[p.Name] = true
		v, ok := set[p.Name]
		if !ok {
			v = p.Default
		}
		if err := p.check(v); err != nil {
			return nil, err
		}
		out[p.Name] = v
	}
	var unknown []string
	for k := range set {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		var names []string
		for _, p := range t.Params {
			names = append(names, p.Name)
		}
		valid := "none"
		if len(names) > 0 {
			valid = strings.Join(names, ", ")
		}
		return nil, &site.FieldError{Field: "parameter", Value: unknown[0], Rule: fmt.Sprintf("template %s has no such parameter (valid: %s)", t.Name, valid)}
	}
	return out, nil
}
