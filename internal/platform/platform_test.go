package platform

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	srv := t.TempDir()
	os.MkdirAll(filepath.Join(srv, "conf"), 0o700)
	if err := os.WriteFile(filepath.Join(srv, "conf", ConfigFile), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Domain != "localhost" || cfg.ACME != nil || cfg.Front.HTTP != ":80" {
		t.Fatalf("defaults = %+v", cfg)
	}
	cfg, err = Load(writeConfig(t, "domain: example.org\nacme: {email: ops@example.org}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ACME.CA != LetsEncrypt || cfg.Front.HTTPS != ":443" {
		t.Fatalf("partial config = %+v %+v", cfg, cfg.ACME)
	}
	h := cfg.Hosting("/srv")
	if h.CertResolver != Resolver || h.EntryPoints[0] != "websecure" || h.FrontNetwork != "front" {
		t.Fatalf("hosting config = %+v", h)
	}
}

// The names sites may not take: the platform's compose projects, its host
// names, and darse.yml's reserved list (labels and host names).
func TestHostingReserved(t *testing.T) {
	cfg, err := Load(writeConfig(t, "domain: example.org\nreserved: [wiki, shop.example.net]\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Hosting("/srv")
	for _, name := range []string{"darse", "front", "darse-panel", "wiki"} {
		if h.Reserved[name] == "" {
			t.Errorf("site name %q not reserved: %v", name, h.Reserved)
		}
	}
	for _, host := range []string{"example.org", "panel.example.org", "traefik.example.org", "api.example.org", "wiki.example.org", "shop.example.net"} {
		if h.ReservedHosts[host] == "" {
			t.Errorf("host %q not reserved: %v", host, h.ReservedHosts)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	for want, body := range map[string]string{
		"domain":               "domain: '*.example.org'\n",
		"field":                "domian: example.org\n",
		"front.http":           "front: {http: 'eighty'}\n",
		"front.api":            "front: {api: '0.0.0.0:8081'}\n",
		"front.project":        "front: {project: 'Front_1'}\n",
		"firewall.input":       "firewall: {input: reject}\n",
		"firewall.table":       "firewall: {table: 'My Table'}\n",
		"acme.ca":              "acme: {ca: 'http://insecure.example/dir'}\n",
		"acme.email":           "acme: {email: 'not an email'}\n",
		"acme.ca_certificates": "acme: {ca_certificates: relative.pem}\n",
		"reserved[1]":          "reserved: [mail, 'Not A Name']\n",
	} {
		if _, err := Load(writeConfig(t, body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to mention %q", body, err, want)
		}
	}
}

func TestRenderFrontGolden(t *testing.T) {
	for name, cfg := range map[string]Config{
		"http": Default(),
		"acme": {Domain: "example.org", Front: Front{Project: "front", HTTP: ":80", HTTPS: ":443", API: "127.0.0.1:8081"},
			ACME: &ACME{CA: LetsEncrypt, Email: "ops@example.org"}, Firewall: Firewall{Input: "drop", Table: "darse"}, Panel: Panel{Project: "darse-panel"}},
	} {
		p := &Platform{Srv: "/srv", Config: cfg}
		files, err := p.RenderFront("darse/darse:0123456789abcdef")
		if err != nil {
			t.Fatal(err)
		}
		panel, err := p.RenderPanel("darse/darse:0123456789abcdef", []string{"172.30.0.0/16"})
		if err != nil {
			t.Fatal(err)
		}
		files["panel.env"], files["panel.override"] = panel[".env"], panel["docker-compose.override.yml"]
		for _, f := range []string{"conf/traefik.yml", ".env", "panel.env", "panel.override"} {
			golden := filepath.Join("testdata", name+"."+strings.NewReplacer("/", "_", ".", "").Replace(f)+".golden")
			if *update {
				os.WriteFile(golden, files[f], 0o644)
			}
			want, _ := os.ReadFile(golden)
			if string(files[f]) != string(want) {
				t.Errorf("%s %s:\n%s\nwant:\n%s", name, f, files[f], want)
			}
		}
		if _, ok := files["docker-compose.yml"]; !ok {
			t.Errorf("%s: no docker-compose.yml", name)
		}
	}
}
