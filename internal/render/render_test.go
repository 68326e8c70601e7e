package render

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/template"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func load(t *testing.T, name string) *template.Template {
	t.Helper()
	tp, err := template.Load("../../templates", name)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func spec(tp *template.Template, params map[string]string) site.Spec {
	p, err := tp.Resolve(params)
	if err != nil {
		panic(err)
	}
	return site.Spec{Name: "blog", Template: tp.Name, Owner: "alice", Domain: "blog.example.org", Params: p, Plan: tp.Plan}
}

var extras = Extras{
	DarseLabels:  map[string]string{"darse.site": "blog"},
	WebLabels:    map[string]string{"traefik.enable": "true", "traefik.http.routers.site-blog.rule": "Host(`blog.example.org`)"},
	FrontNetwork: "front",
	FrontOnly:    []string{"ssh"},
	Profiles:     []string{"ssh"},
	Hosts:        []string{"blog.example.org:172.24.0.1"},
}

// The generated files of each shipped template, golden.
func TestSiteGolden(t *testing.T) {
	for _, c := range []struct {
		template string
		params   map[string]string
	}{{"static", nil}, {"php", map[string]string{"PHP_MEMORY_LIMIT": "64M"}},
		{"php-mariadb", nil}} {
		t.Run(c.template, func(t *testing.T) {
			tp := load(t, c.template)
			sp := spec(tp, c.params)
			for _, sec := range tp.Secrets { // generated: fixed here for the golden file
				sp.Params[sec.Name] = "generated-" + sec.Name
			}
			files, err := Site(tp, sp, extras)
			if err != nil {
				t.Fatal(err)
			}
			compose, _ := os.ReadFile(filepath.Join(tp.Dir, ComposeFile))
			if string(files[ComposeFile]) != string(compose) {
				t.Error("docker-compose.yml is not the template's, verbatim")
			}
			if strings.Contains(string(files[ComposeFile]), "blog") {
				t.Error("the site name leaked into docker-compose.yml")
			}
			for _, f := range []string{OverrideFile, EnvFile} {
				golden := filepath.Join("testdata", c.template+"."+strings.TrimPrefix(f, ".")+".golden")
				if *update {
					os.WriteFile(golden, files[f], 0o644)
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatal(err)
				}
				if string(files[f]) != string(want) {
					t.Errorf("%s:\n%s\nwant:\n%s", f, files[f], want)
				}
			}
		})
	}
}

func TestWriteOnlyChangedAndDrift(t *testing.T) {
	tp := load(t, "static")
	dir := t.TempDir()
	files, err := Site(tp, spec(tp, nil), extras)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := Write(dir, files, nil)
	if err != nil || len(changed) != len(files) {
		t.Fatalf("first write changed %v, %v", changed, err)
	}
	info, _ := os.Stat(filepath.Join(dir, EnvFile))
	changed, err = Write(dir, files, files.Manifest())
	if err != nil || len(changed) != 0 {
		t.Fatalf("second write changed %v, %v", changed, err)
	}
	again, _ := os.Stat(filepath.Join(dir, EnvFile))
	if !again.ModTime().Equal(info.ModTime()) {
		t.Error("unchanged .env was rewritten")
	}
	if d, _ := Drift(dir, files.Manifest()); len(d) != 0 {
		t.Fatalf("drift right after render: %v", d)
	}
	os.WriteFile(filepath.Join(dir, EnvFile), []byte("EDITED=1\n"), 0o644)
	os.Remove(filepath.Join(dir, "conf", "nginx.conf"))
	if d, _ := Drift(dir, files.Manifest()); !reflect.DeepEqual(d, []string{EnvFile, "conf/nginx.conf"}) {
		t.Fatalf("drift = %v", d)
	}
	// A file no longer rendered is removed; data/ is never touched.
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	os.WriteFile(filepath.Join(dir, "data", "keep"), nil, 0o644)
	prev := files.Manifest()
	prev["conf/old.conf"] = "x"
	prev["data/keep"] = "x"
	os.WriteFile(filepath.Join(dir, "conf", "old.conf"), nil, 0o644)
	if _, err := Write(dir, files, prev); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "conf", "old.conf")); !os.IsNotExist(err) {
		t.Error("stale conf/old.conf kept")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "keep")); err != nil {
		t.Error("Write removed a file in data/")
	}
}

// A render that fails writes nothing: everything is computed before any write.
func TestFailedRenderWritesNothing(t *testing.T) {
	src := load(t, "static")
	broken := *src
	broken.Dir = t.TempDir()
	for _, f := range []string{ComposeFile, "template.yml"} {
		b, _ := os.ReadFile(filepath.Join(src.Dir, f))
		os.WriteFile(filepath.Join(broken.Dir, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(broken.Dir, EnvTemplate), []byte(`X={{param "MISSING"}}`), 0o644)
	if _, err := Site(&broken, spec(src, nil), extras); err == nil || !strings.Contains(err.Error(), "MISSING") {
		t.Fatalf("Site = %v, want an error naming the missing parameter", err)
	}
}

// A write that cannot complete leaves what was there and no temp file.
func TestWriteFileFailureLeavesNoTrace(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "conf")
	// The destination is a non-empty folder: the final rename fails.
	os.MkdirAll(filepath.Join(name, "inner"), 0o755)
	if err := WriteFile(name, []byte("new"), 0o644); err == nil {
		t.Fatal("rename over a non-empty folder succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "conf" || !entries[0].IsDir() {
		t.Fatalf("folder after failed write: %v", entries)
	}
}

func TestSeedKeepsExistingData(t *testing.T) {
	tp := load(t, "static")
	dir := t.TempDir()
	if err := Seed(tp, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "index.html")); err != nil {
		t.Fatal("seed did not create data/index.html")
	}
	os.WriteFile(filepath.Join(dir, "data", "index.html"), []byte("mine"), 0o644)
	if err := Seed(tp, dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "data", "index.html")); string(b) != "mine" {
		t.Fatal("seed overwrote the member's content")
	}
}
