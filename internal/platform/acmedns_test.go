package platform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tsigSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="

// dnsFiles writes a TSIG secret and a cloudflare env file, returning their paths.
func dnsFiles(t *testing.T) (secret, envFile string) {
	t.Helper()
	dir := t.TempDir()
	secret, envFile = filepath.Join(dir, "tsig.key"), filepath.Join(dir, "cf.env")
	if err := os.WriteFile(secret, []byte(tsigSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(envFile, []byte("# token for the zone\nCF_DNS_API_TOKEN=tok-123\n\nCLOUDFLARE_TTL=60\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret, envFile
}

func rfc2136YAML(secret, extra string) string {
	return "domain: example.org\nacme:\n  dns:\n    provider: rfc2136\n    nameserver: 192.0.2.53:53\n    tsig_key: darse-acme\n" +
		"    tsig_secret_file: " + secret + "\n" + extra
}

func TestLoadACMEDNS(t *testing.T) {
	secret, envFile := dnsFiles(t)
	cfg, err := Load(writeConfig(t, rfc2136YAML(secret, "    propagation_timeout: 90s\n    resolvers: ['127.0.0.1:5353']\n    check_authoritative: false\n")))
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.Hosting("/srv"); h.Wildcard != "example.org" || h.CertResolver != Resolver {
		t.Errorf("hosting: wildcard %q resolver %q, want example.org and %q", h.Wildcard, h.CertResolver, Resolver)
	}
	env, secrets, err := cfg.dnsEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"RFC2136_NAMESERVER=192.0.2.53:53\n", "RFC2136_TSIG_KEY=darse-acme.\n", "RFC2136_TSIG_ALGORITHM=hmac-sha256.\n",
		"RFC2136_PROPAGATION_TIMEOUT=90\n", "RFC2136_TSIG_SECRET_FILE=/data/acme-dns/RFC2136_TSIG_SECRET\n"} {
		if !strings.Contains(string(env), line) {
			t.Errorf("acme-dns.env lacks %q:\n%s", line, env)
		}
	}
	if strings.Contains(string(env), tsigSecret) || string(secrets["RFC2136_TSIG_SECRET"]) != tsigSecret {
		t.Errorf("the secret must be in its own file, not the env: env\n%s\nsecrets %q", env, secrets)
	}

	// Another lego provider: its variables, from the env file, each a file.
	cfg, err = Load(writeConfig(t, "domain: example.org\nacme:\n  dns:\n    provider: cloudflare\n    env_file: "+envFile+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	env, secrets, err = cfg.dnsEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env), "CF_DNS_API_TOKEN_FILE=/data/acme-dns/CF_DNS_API_TOKEN\n") || strings.Contains(string(env), "tok-123") ||
		string(secrets["CF_DNS_API_TOKEN"]) != "tok-123" || string(secrets["CLOUDFLARE_TTL"]) != "60" {
		t.Errorf("cloudflare: env\n%s\nsecrets %q", env, secrets)
	}
}

func TestLoadRefusesACMEDNS(t *testing.T) {
	secret, envFile := dnsFiles(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notBase64, empty := write("bad.key", "not base64 at all!\n"), write("empty.env", "# nothing\n")
	unknownVar, badLine := write("unknown.env", "CF_DNS_API_TOKEN=x\nLD_PRELOAD=/tmp/x.so\n"), write("line.env", "export CF_DNS_API_TOKEN x\n")
	twice := write("twice.env", "CF_DNS_API_TOKEN=x\nCF_DNS_API_TOKEN=y\n")
	// render: the file's content, read only when the front door is
	// rendered (the panel loads darse.yml too, seeing only /srv).
	for _, tc := range []struct {
		body, key, notInErr string
		render              bool
	}{
		{"domain: example.org\nacme:\n  dns:\n    provider: bind\n", "acme.dns.provider", "", false},
		{"domain: example.org\nacme:\n  dns:\n    provider: manual\n", "acme.dns.provider", "", false},
		{"acme:\n  dns:\n    provider: rfc2136\n", "acme.dns.provider", "", false}, // domain: localhost
		{"domain: example.org\nacme:\n  dns:\n    provider: rfc2136\n    tsig_key: k\n    tsig_secret_file: " + secret + "\n", "acme.dns.nameserver", "", false},
		{strings.Replace(rfc2136YAML(secret, ""), "192.0.2.53:53", "192.0.2.53", 1), "acme.dns.nameserver", "", false},
		{strings.Replace(rfc2136YAML(secret, ""), "192.0.2.53:53", "ns1.example.org:99999", 1), "acme.dns.nameserver", "", false},
		{strings.Replace(rfc2136YAML(secret, ""), "darse-acme", "'bad key!'", 1), "acme.dns.tsig_key", "", false},
		{strings.Replace(rfc2136YAML(secret, ""), "    tsig_key: darse-acme\n", "", 1), "acme.dns.tsig_key", "", false},
		{rfc2136YAML(secret, "    tsig_algorithm: hmac-md5\n"), "acme.dns.tsig_algorithm", "", false},
		{rfc2136YAML("relative.key", ""), "acme.dns.tsig_secret_file", "", false},
		{rfc2136YAML(filepath.Join(dir, "missing.key"), ""), "acme.dns.tsig_secret_file", "", true},
		{rfc2136YAML(dir, ""), "acme.dns.tsig_secret_file", "", true},
		// The content of a bad secret file is never quoted.
		{rfc2136YAML(notBase64, ""), "acme.dns.tsig_secret_file", "not base64", true},
		{rfc2136YAML(secret, "    propagation_timeout: 2 minutes\n"), "acme.dns.propagation_timeout", "", false},
		{rfc2136YAML(secret, "    propagation_timeout: 500ms\n"), "acme.dns.propagation_timeout", "", false},
		{rfc2136YAML(secret, "    sequence_interval: 2h\n"), "acme.dns.sequence_interval", "", false},
		{rfc2136YAML(secret, "    resolvers: ['dns.example.org']\n"), "acme.dns.resolvers[0]", "", false},
		{rfc2136YAML(secret, "    check_authoritative: false\n"), "acme.dns.check_authoritative", "", false},
		{rfc2136YAML(secret, "    env_file: "+envFile+"\n"), "acme.dns.env_file", "", false},
		{rfc2136YAML(secret, "    tsig_secret: inline\n"), "field tsig_secret not found", "", false},
		{"domain: example.org\nacme:\n  dns:\n    provider: cloudflare\n", "acme.dns.env_file", "", false},
		{"domain: example.org\nacme:\n  dns:\n    provider: cloudflare\n    env_file: " + empty + "\n", "acme.dns.env_file", "", true},
		{"domain: example.org\nacme:\n  dns:\n    provider: cloudflare\n    env_file: " + unknownVar + "\n", "LD_PRELOAD", "/tmp/x.so", true},
		{"domain: example.org\nacme:\n  dns:\n    provider: cloudflare\n    env_file: " + badLine + "\n", "line 1", "CF_DNS_API_TOKEN x", true},
		{"domain: example.org\nacme:\n  dns:\n    provider: cloudflare\n    env_file: " + twice + "\n", "set twice", "", true},
		{"domain: example.org\nacme:\n  dns:\n    provider: cloudflare\n    env_file: " + envFile + "\n    tsig_key: k\n", "acme.dns.tsig_key", "", false},
	} {
		cfg, err := Load(writeConfig(t, tc.body))
		if tc.render {
			if err != nil {
				t.Errorf("%q: Load read a file it names: %v", tc.body, err)
				continue
			}
			_, err = (&Platform{Srv: t.TempDir(), Config: cfg}).RenderFront("darse/darse:0123456789abcdef")
		}
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: err = %v, want it to name %q", tc.body, err, tc.key)
			continue
		}
		t.Log(err)
		if tc.notInErr != "" && strings.Contains(err.Error(), tc.notInErr) {
			t.Errorf("%q: err = %v shows the file's content %q", tc.body, err, tc.notInErr)
		}
	}
}

// With acme.dns, Traefik gets a second resolver solving DNS-01, and the
// default store's certificate is the wildcard, which it orders once.
func TestRenderFrontDNS(t *testing.T) {
	secret, _ := dnsFiles(t)
	srv := writeConfig(t, rfc2136YAML(secret, "    resolvers: ['127.0.0.1:5353']\n    check_authoritative: false\n"))
	cfg, err := Load(srv)
	if err != nil {
		t.Fatal(err)
	}
	p := &Platform{Srv: "/srv", Config: cfg}
	files, err := p.RenderFront("darse/darse:0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"conf/traefik.yml", "conf/dynamic.yml"} {
		golden := filepath.Join("testdata", "dns."+strings.NewReplacer("/", "_", ".", "").Replace(f)+".golden")
		if *update {
			os.WriteFile(golden, files[f], 0o644)
		}
		want, _ := os.ReadFile(golden)
		if string(files[f]) != string(want) {
			t.Errorf("%s:\n%s\nwant:\n%s", f, files[f], want)
		}
	}
	for name, b := range files {
		if strings.Contains(string(b), tsigSecret) {
			t.Errorf("rendered %s holds the TSIG secret", name)
		}
	}
	// The panel's host is under the wildcard: its router orders nothing.
	panel, err := p.RenderPanel("darse/darse:0123456789abcdef", nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := string(panel["docker-compose.override.yml"]); !strings.Contains(o, `site-darse-panel.tls: "true"`) || strings.Contains(o, "certresolver") {
		t.Errorf("panel override under the wildcard:\n%s", o)
	}
	// Without acme.dns: no second resolver, no file provider, an env file
	// with nothing in it (the compose file names it).
	p.Config.ACME.DNS = nil
	files, err = p.RenderFront("darse/darse:0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["conf/dynamic.yml"]; ok || strings.Contains(string(files["conf/traefik.yml"]), DNSResolver) || strings.Contains(string(files["conf/acme-dns.env"]), "=") {
		t.Errorf("without acme.dns:\n%s\n%s", files["conf/traefik.yml"], files["conf/acme-dns.env"])
	}
}

// The secrets land in data/acme-dns/, root's alone; a file no longer
// configured goes, and an unchanged one is not rewritten.
func TestWriteDNSSecrets(t *testing.T) {
	front := t.TempDir()
	if err := writeDNSSecrets(front, map[string][]byte{"RFC2136_TSIG_SECRET": []byte(tsigSecret), "OLD_TOKEN": []byte("x")}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(front, "data", dnsSecretsDir)
	st, err := os.Stat(filepath.Join(dir, "RFC2136_TSIG_SECRET"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", st, err)
	}
	if d, _ := os.Stat(dir); d.Mode().Perm() != 0o700 {
		t.Errorf("secrets folder mode %v", d.Mode().Perm())
	}
	if err := writeDNSSecrets(front, map[string][]byte{"RFC2136_TSIG_SECRET": []byte(tsigSecret)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "OLD_TOKEN")); !os.IsNotExist(err) {
		t.Errorf("stale secret kept: %v", err)
	}
	if again, _ := os.Stat(filepath.Join(dir, "RFC2136_TSIG_SECRET")); !again.ModTime().Equal(st.ModTime()) {
		t.Errorf("unchanged secret rewritten")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "RFC2136_TSIG_SECRET")); string(b) != tsigSecret {
		t.Errorf("secret = %q", b)
	}
}
