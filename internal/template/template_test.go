package template

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darse/darse/internal/site"
)

func TestShippedTemplatesLoad(t *testing.T) {
	names, err := List("../../templates")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "php,php-mariadb,php-postgres,static,wordpress" {
		t.Fatalf("templates = %v", names)
	}
	for _, n := range names {
		tp, err := Load("../../templates", n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if tp.Web.Service != "web" || tp.Web.Port != 8080 {
			t.Errorf("%s: web = %+v", n, tp.Web)
		}
	}
}

func TestResolve(t *testing.T) {
	tp, err := Load("../../templates", "php")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.Resolve(nil)
	if err != nil || got["PHP_MEMORY_LIMIT"] != "128M" {
		t.Fatalf("defaults = %v, %v", got, err)
	}
	if got, err := tp.Resolve(map[string]string{"PHP_MEMORY_LIMIT": "512M"}); err != nil || got["PHP_MEMORY_LIMIT"] != "512M" {
		t.Fatalf("set = %v, %v", got, err)
	}
	for set, want := range map[string]string{
		"PHP_MEMORY_LIMIT=1G":       "PHP_MEMORY_LIMIT",
		"PHP_MEMORY_LIMIT=128M x":   "PHP_MEMORY_LIMIT",
		"PHP_MEMORY_LIMIT=128M\nX=": "PHP_MEMORY_LIMIT",
		"OTHER=1":                   "no such parameter",
	} {
		k, v, _ := strings.Cut(set, "=")
		_, err := tp.Resolve(map[string]string{k: v})
		var fe *site.FieldError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve(%q) = %v, want a FieldError mentioning %q", set, err, want)
		}
	}
}

func TestBrokenMetadataRefused(t *testing.T) {
	for name, meta := range map[string]string{
		"unknown key":     "title: x\nweb: {service: web, port: 80}\nplan: {cpus: '1', memory: 64m, pids: 64}\nbogus: 1\n",
		"no title":        "web: {service: web, port: 80}\nplan: {cpus: '1', memory: 64m, pids: 64}\n",
		"bad port":        "title: x\nweb: {service: web, port: 0}\nplan: {cpus: '1', memory: 64m, pids: 64}\n",
		"bad plan":        "title: x\nweb: {service: web, port: 80}\nplan: {cpus: '0', memory: 64m, pids: 64}\n",
		"reserved param":  "title: x\nweb: {service: web, port: 80}\nplan: {cpus: '1', memory: 64m, pids: 64}\nparams: [{name: DARSE_X, default: a, pattern: a, rule: a}]\n",
		"default invalid": "title: x\nweb: {service: web, port: 80}\nplan: {cpus: '1', memory: 64m, pids: 64}\nparams: [{name: X, default: b, pattern: a, rule: must be a}]\n",
	} {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "t"), 0o755)
		os.WriteFile(filepath.Join(root, "t", MetaFile), []byte(meta), 0o644)
		if _, err := Load(root, "t"); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
