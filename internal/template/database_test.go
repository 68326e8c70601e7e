package template_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/template"
)

const shipped = "../../templates"

var dbTemplates = map[string]string{"php-mariadb": "mariadb", "php-postgres": "postgres", "wordpress": "mariadb"}

// Each database template declares its database for later steps (service,
// folder, owner, dump and load, a health check no more often than 30 s)
// and a generated password.
func TestDatabaseMetadata(t *testing.T) {
	for name, engine := range dbTemplates {
		tp, err := template.Load(shipped, name)
		if err != nil {
			t.Fatal(err)
		}
		d := tp.Database
		if d == nil || d.Engine != engine || d.Service != "db" || d.Dir != "db" || d.UID == tp.SSH.UID {
			t.Fatalf("%s: database = %+v", name, d)
		}
		if iv, _ := time.ParseDuration(d.Health.Interval); iv < 30*time.Second {
			t.Errorf("%s: health interval %s", name, d.Health.Interval)
		}
		if len(d.Dump) == 0 || len(d.Load) == 0 || !tp.IsSecret("DB_PASSWORD") {
			t.Errorf("%s: dump %v load %v secrets %v", name, d.Dump, d.Load, tp.Secrets)
		}
	}
}

// Secrets are generated, random and per site, and a member cannot set one.
func TestSecretsGenerated(t *testing.T) {
	tp, err := template.Load(shipped, "wordpress")
	if err != nil {
		t.Fatal(err)
	}
	a, err := tp.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tp.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"DB_PASSWORD", "WORDPRESS_SALT"} {
		if len(a[k]) != template.SecretLength || a[k] == b[k] || strings.Trim(a[k], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Errorf("%s: %q then %q", k, a[k], b[k])
		}
	}
	_, err = tp.Resolve(map[string]string{"DB_PASSWORD": "hunter2"})
	var fe *site.FieldError
	if !errors.As(err, &fe) || fe.Field != "parameter DB_PASSWORD" || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("set DB_PASSWORD: %v", err)
	}
}

// A database parameter outside its rule is refused, naming it and the rule.
func TestDatabaseParamRule(t *testing.T) {
	for name, param := range map[string]string{"php-mariadb": "DB_BUFFER_POOL", "php-postgres": "DB_SHARED_BUFFERS", "wordpress": "DB_MAX_CONNECTIONS"} {
		tp, err := template.Load(shipped, name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tp.Resolve(map[string]string{param: "5000G"})
		if err == nil || !strings.Contains(err.Error(), "parameter "+param) || !strings.Contains(err.Error(), "must be a number") {
			t.Errorf("%s: %s=5000G: %v", name, param, err)
		}
	}
}

// Every shipped template, rendered as darse renders it, loads under the
// tenant policy; a database service stays on the site's own network, its
// password is only in .env (mode 0600), never in docker-compose.yml.
func TestShippedTemplatesLoadAsTenants(t *testing.T) {
	names, err := template.List(shipped)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			tp, err := template.Load(shipped, name)
			if err != nil {
				t.Fatal(err)
			}
			params, err := tp.Resolve(nil)
			if err != nil {
				t.Fatal(err)
			}
			spec := site.Spec{Name: "blog", Template: name, Owner: "alice", Domain: "blog.example.org", Params: params, Plan: tp.Plan}
			dl, err := labels.Darse(spec.Name, spec.Owner)
			if err != nil {
				t.Fatal(err)
			}
			files, err := render.Site(tp, spec, render.Extras{DarseLabels: dl, FrontNetwork: compose.FrontNetwork, FrontOnly: []string{"ssh"}, Profiles: []string{"ssh"}})
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "blog")
			if _, err := render.Write(dir, files, nil); err != nil {
				t.Fatal(err)
			}
			p, err := compose.Load(context.Background(), dir, compose.TenantPolicy)
			if err != nil {
				t.Fatal(err)
			}
			if tp.Database == nil {
				return
			}
			var db *compose.Service
			for i := range p.Services {
				if p.Services[i].Name == tp.Database.Service {
					db = &p.Services[i]
				}
			}
			if db == nil {
				t.Fatalf("no service %s", tp.Database.Service)
			}
			if len(db.Container.Networks) != 1 {
				t.Errorf("database networks = %v, want the site's own only", db.Container.Networks)
			}
			for _, a := range db.Container.Networks {
				if a.Network != p.Name+"_default" {
					t.Errorf("database joins network %q", a.Network)
				}
			}
			if len(db.Container.Ports) > 0 || db.Container.NetworkMode != "" {
				t.Errorf("database publishes %v, network mode %q", db.Container.Ports, db.Container.NetworkMode)
			}
			pw := params["DB_PASSWORD"]
			if !strings.Contains(strings.Join(db.Container.Env, " "), pw) {
				t.Errorf("database environment lacks the password")
			}
			for p, b := range files {
				if strings.Contains(string(b), pw) && p != render.EnvFile {
					t.Errorf("password in %s", p)
				}
			}
			st, err := os.Stat(filepath.Join(dir, render.EnvFile))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf(".env: %v %v", st.Mode(), err)
			}
		})
	}
}

// Summaries say what each template runs, for `darse templates ls`.
func TestSummaries(t *testing.T) {
	sums, err := template.Summaries(shipped)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]template.Summary{}
	for _, s := range sums {
		got[s.Name] = s
	}
	wp := got["wordpress"]
	if wp.Title != "WordPress" || wp.Database != "mariadb" || wp.Plan.Memory == "" ||
		strings.Join(wp.Runs, " ") != "db=darse/mariadb:10.11-bookworm php=darse/wordpress:6.1-bookworm ssh=darse/sftp:bookworm web=darse/wordpress:6.1-bookworm" {
		t.Errorf("wordpress = %+v", wp)
	}
	if got["static"].Database != "" || got["php-postgres"].Database != "postgres" {
		t.Errorf("static %+v, php-postgres %+v", got["static"], got["php-postgres"])
	}
}
