package template

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"go.yaml.in/yaml/v4"

	"github.com/darse/darse/internal/site"
)

// Summary is what `darse templates ls` and the panel's create form show of
// a template.
type Summary struct {
	Name        string
	Title       string
	Description string
	Plan        site.Plan
	// Runs lists the images the template's services run, "service=image",
	// sorted by service.
	Runs []string
	// Database is the database engine (mariadb, postgres), "" for none.
	Database string
}

// Summaries loads every template under root and summarises it. A broken
// template is an error naming it: it would fail at create anyway.
func Summaries(root string) ([]Summary, error) {
	names, err := List(root)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(names))
	for _, n := range names {
		t, err := Load(root, n)
		if err != nil {
			return nil, err
		}
		runs, err := t.Runs()
		if err != nil {
			return nil, err
		}
		s := Summary{Name: n, Title: t.Title, Description: t.Description, Plan: t.Plan, Runs: runs}
		if t.Database != nil {
			s.Database = t.Database.Engine
		}
		out = append(out, s)
	}
	return out, nil
}

// Runs lists the images of the template's services, "service=image",
// sorted by service, read from its docker-compose.yml.
func (t *Template) Runs() ([]string, error) {
	services, err := t.services()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	runs := make([]string, 0, len(names))
	for _, n := range names {
		runs = append(runs, n+"="+services[n].Image)
	}
	return runs, nil
}

// composeService is the part of a template's service darse reads itself.
type composeService struct {
	Image       string `yaml:"image"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
}

func (t *Template) services() (map[string]composeService, error) {
	b, err := os.ReadFile(filepath.Join(t.Dir, "docker-compose.yml"))
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", t.Name, err)
	}
	var doc struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("template %q: docker-compose.yml: %w", t.Name, err)
	}
	return doc.Services, nil
}
