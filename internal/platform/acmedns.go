package platform

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/site"
)

// DNSResolver is the name of Traefik's second ACME resolver, the one that
// orders the platform domain's wildcard certificate through DNS-01.
const DNSResolver = "le-dns"

// ACMEDNS (acme.dns in darse.yml) has Traefik order ONE certificate for
// *.<domain> and <domain> through the ACME DNS-01 challenge, which serves
// every site under the platform domain: no per-site order, so 900 sites
// stay within a CA's weekly limit per registered domain. Custom domains
// keep their own TLS-ALPN certificates.
type ACMEDNS struct {
	// Provider is rfc2136 (dynamic updates to the collective's own DNS
	// server) or another of lego's DNS providers (Traefik's ACME client),
	// configured by EnvFile.
	Provider string `yaml:"provider"`
	// Nameserver is the RFC 2136 server, HOST:PORT.
	Nameserver string `yaml:"nameserver"`
	// TSIGKey is the TSIG key's name, as the DNS server knows it.
	TSIGKey string `yaml:"tsig_key"`
	// TSIGAlgorithm is hmac-sha256 (the default), hmac-sha1, hmac-sha224,
	// hmac-sha384 or hmac-sha512.
	TSIGAlgorithm string `yaml:"tsig_algorithm"`
	// TSIGSecretFile holds the TSIG secret (base64), so that the secret is
	// never in darse.yml nor in anything rendered or logged.
	TSIGSecretFile string `yaml:"tsig_secret_file"`
	// PropagationTimeout is how long lego waits for the record to be
	// visible (a Go duration, default 60s).
	PropagationTimeout string `yaml:"propagation_timeout"`
	// SequenceInterval is the wait between the apex's and the wildcard's
	// challenges, which RFC 2136 solves one after the other (lego's
	// default: 60s).
	SequenceInterval string `yaml:"sequence_interval"`
	// EnvFile, for the other providers, holds NAME=value lines: the
	// variables lego documents for that provider.
	EnvFile string `yaml:"env_file"`
	// Resolvers, when set, are the DNS servers (HOST:PORT) lego finds the
	// zone through and checks the record's propagation on, instead of the
	// host's.
	Resolvers []string `yaml:"resolvers"`
	// CheckAuthoritative, when false, skips lego's check of the record on
	// the zone's authoritative servers (asked on port 53), e.g. for a server
	// reached on another port; Resolvers are asked instead.
	CheckAuthoritative *bool `yaml:"check_authoritative"`
}

// tsigAlgorithms are the TSIG algorithms lego's rfc2136 provider signs
// with, in darse.yml's spelling, with miekg/dns's names; hmac-md5 is left out.
var tsigAlgorithms = map[string]string{"hmac-sha1": "hmac-sha1.", "hmac-sha224": "hmac-sha224.",
	"hmac-sha256": "hmac-sha256.", "hmac-sha384": "hmac-sha384.", "hmac-sha512": "hmac-sha512."}

//go:generate sh lego_providers.sh > lego_providers.txt
//go:embed lego_providers.txt
var legoProviders string

// providerVars are, by provider name, the variables lego documents for it.
func providerVars() map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(legoProviders, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		m[f[0]] = f[1:]
	}
	return m
}

// unusableProviders need what Traefik's container has not: a person at a
// terminal, or a program of the operator's.
var unusableProviders = map[string]string{"manual": "waits for someone to create the record by hand",
	"exec": "runs a program Traefik's image does not have"}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,127}$`)

func dnsField(key, value, rule string) error {
	return &site.FieldError{Field: "acme.dns." + key, Value: value, Rule: rule}
}

// validate checks acme.dns's fields; the files it names are read, and
// their content checked (never shown), when the front door is rendered.
func (d *ACMEDNS) validate() error {
	if err := d.validateCommon(); err != nil {
		return err
	}
	if d.Provider == "rfc2136" {
		return d.validateRFC2136()
	}
	return d.validateProvider()
}

func (d *ACMEDNS) validateCommon() error {
	vars := providerVars()
	if _, ok := vars[d.Provider]; !ok {
		return dnsField("provider", d.Provider, "must be rfc2136 or one of the DNS providers of Traefik's lego (e.g. cloudflare, route53, ovh)")
	}
	if why, ok := unusableProviders[d.Provider]; ok {
		return dnsField("provider", d.Provider, "cannot be used here: it "+why)
	}
	for i, r := range d.Resolvers {
		if err := validHostPort(r); err != nil {
			return dnsField(fmt.Sprintf("resolvers[%d]", i), r, "must be HOST:PORT of a DNS server, e.g. 192.0.2.53:53")
		}
	}
	if d.CheckAuthoritative != nil && !*d.CheckAuthoritative && len(d.Resolvers) == 0 {
		return dnsField("check_authoritative", "false", "needs acme.dns.resolvers: without either check, the CA may look before the record is there")
	}
	for _, f := range []struct{ key, v string }{{"propagation_timeout", d.PropagationTimeout}, {"sequence_interval", d.SequenceInterval}} {
		if f.v == "" {
			continue
		}
		if t, err := time.ParseDuration(f.v); err != nil || t < time.Second || t > time.Hour || t%time.Second != 0 {
			return dnsField(f.key, f.v, "must be a whole number of seconds between 1s and 1h, e.g. 90s")
		}
	}
	return nil
}

func (d *ACMEDNS) validateRFC2136() error {
	if d.EnvFile != "" {
		return dnsField("env_file", d.EnvFile, "is for the other providers: rfc2136 is configured by nameserver, tsig_key, tsig_algorithm and tsig_secret_file")
	}
	if err := validHostPort(d.Nameserver); err != nil {
		return dnsField("nameserver", d.Nameserver, "must be HOST:PORT of the DNS server accepting RFC 2136 updates (required), e.g. ns1.example.org:53")
	}
	if k := strings.TrimSuffix(d.TSIGKey, "."); site.ValidateDomain(k) != nil && !site.IsDNSLabel(k) {
		return dnsField("tsig_key", d.TSIGKey, "must be the TSIG key's name as the DNS server knows it (required; DNS labels, e.g. darse-acme)")
	}
	if _, ok := tsigAlgorithms[d.algorithm()]; !ok {
		return dnsField("tsig_algorithm", d.TSIGAlgorithm, "must be hmac-sha256 (the default), hmac-sha1, hmac-sha224, hmac-sha384 or hmac-sha512")
	}
	return validSecretPath("tsig_secret_file", d.TSIGSecretFile)
}

// tsigSecret reads the TSIG secret (at render: the panel, which loads
// darse.yml too, sees only /srv, and need not read the secret).
func (d *ACMEDNS) tsigSecret() ([]byte, error) {
	secret, err := readSecretFile("tsig_secret_file", d.TSIGSecretFile)
	if err != nil {
		return nil, err
	}
	if !isBase64(secret) {
		return nil, dnsField("tsig_secret_file", d.TSIGSecretFile, "must hold the TSIG secret in base64 (as tsig-keygen prints it), on one line")
	}
	return secret, nil
}

func (d *ACMEDNS) validateProvider() error {
	for _, f := range []struct{ key, v string }{{"nameserver", d.Nameserver}, {"tsig_key", d.TSIGKey}, {"tsig_algorithm", d.TSIGAlgorithm},
		{"tsig_secret_file", d.TSIGSecretFile}, {"propagation_timeout", d.PropagationTimeout}, {"sequence_interval", d.SequenceInterval}} {
		if f.v != "" {
			return dnsField(f.key, f.v, "is for provider rfc2136 only: set "+d.Provider+"'s variables in acme.dns.env_file")
		}
	}
	return validSecretPath("env_file", d.EnvFile)
}

// providerEnv reads EnvFile (at render, as tsigSecret): NAME=value lines, each NAME one lego
// documents for the provider; comments and blank lines are skipped.
func (d *ACMEDNS) providerEnv() (map[string]string, error) {
	b, err := readSecretFile("env_file", d.EnvFile)
	if err != nil {
		return nil, err
	}
	known := providerVars()[d.Provider]
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		at := fmt.Sprintf("%s line %d", d.EnvFile, n)
		switch {
		case !ok || !envName.MatchString(name):
			return nil, dnsField("env_file", at, "each line must be NAME=value, NAME in capitals, digits and underscores")
		case !slices.Contains(known, name):
			return nil, dnsField("env_file", at+": "+name, "is not a variable of lego's "+d.Provider+" provider; it has: "+strings.Join(known, " "))
		case value == "" || strings.ContainsAny(value, "\x00\r"):
			return nil, dnsField("env_file", at+": "+name, "needs a value on the same line")
		case env[name] != "":
			return nil, dnsField("env_file", at+": "+name, "is set twice")
		}
		env[name] = value
	}
	if err := sc.Err(); err != nil {
		return nil, dnsField("env_file", d.EnvFile, "cannot be read: "+err.Error())
	}
	if len(env) == 0 {
		return nil, dnsField("env_file", d.EnvFile, "sets no variable: "+d.Provider+" needs some of "+strings.Join(known, " "))
	}
	return env, nil
}

func (d *ACMEDNS) algorithm() string {
	return strings.TrimSuffix(cmp.Or(d.TSIGAlgorithm, "hmac-sha256"), ".")
}

func validSecretPath(key, path string) error {
	if path == "" || !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return dnsField(key, path, "must be the clean absolute path of a file (required)")
	}
	return nil
}

// readSecretFile reads a file named in acme.dns: a clean absolute path to
// a regular file of at most 64 KiB. Errors never quote its content.
func readSecretFile(key, path string) ([]byte, error) {
	if err := validSecretPath(key, path); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err == nil && !st.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err == nil && st.Size() > 64<<10 {
		err = errors.New("larger than 64 KiB")
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fs.ErrNotExist
		}
		return nil, dnsField(key, path, "must be a readable file: "+err.Error())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, dnsField(key, path, "must be a readable file: "+err.Error())
	}
	return bytes.TrimSpace(b), nil
}

func isBase64(b []byte) bool {
	if len(b) < 16 {
		return false
	}
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

func validHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("bad port")
	}
	if net.ParseIP(host) == nil && site.ValidateDomain(host) != nil && host != "localhost" {
		return errors.New("bad host")
	}
	return nil
}

// dnsSecretsDir is where, under the front door's data/ (Traefik's /data),
// the DNS provider's secrets are written, one file each: lego reads NAME
// from the file named by NAME_FILE, so no secret is in the container's
// environment, nor in a rendered (publishable) file.
const dnsSecretsDir = "acme-dns"

// dnsEnv is the front door's conf/acme-dns.env (Traefik's environment for
// DNS-01: plain settings, and NAME_FILE for each secret) and the secrets
// to write under data/acme-dns/. Without acme.dns both are empty.
func (c Config) dnsEnv() (env []byte, secrets map[string][]byte, err error) {
	var b strings.Builder
	b.WriteString("# Rendered by darse platform up from acme.dns in conf/darse.yml: no secret here.\n")
	if c.ACME == nil || c.ACME.DNS == nil {
		return []byte(b.String()), nil, nil
	}
	d := c.ACME.DNS
	plain, secrets := map[string]string{}, map[string][]byte{}
	if d.Provider == "rfc2136" {
		plain["RFC2136_NAMESERVER"] = d.Nameserver
		plain["RFC2136_TSIG_KEY"] = strings.TrimSuffix(d.TSIGKey, ".") + "."
		plain["RFC2136_TSIG_ALGORITHM"] = tsigAlgorithms[d.algorithm()]
		for name, v := range map[string]string{"RFC2136_PROPAGATION_TIMEOUT": d.PropagationTimeout, "RFC2136_SEQUENCE_INTERVAL": d.SequenceInterval} {
			if t, _ := time.ParseDuration(v); t > 0 {
				plain[name] = strconv.Itoa(int(t / time.Second))
			}
		}
		s, err := d.tsigSecret()
		if err != nil {
			return nil, nil, err
		}
		secrets["RFC2136_TSIG_SECRET"] = s
	} else {
		vars, err := d.providerEnv()
		if err != nil {
			return nil, nil, err
		}
		for k, v := range vars {
			secrets[k] = []byte(v)
		}
	}
	for k := range secrets {
		plain[k+"_FILE"] = "/data/" + dnsSecretsDir + "/" + k
	}
	// A changed secret changes Traefik's environment, so the container is
	// recreated and lego reads it again; a digest reveals nothing of it.
	plain["DARSE_ACME_DNS_SECRETS"] = secretsDigest(secrets)
	keys := make([]string, 0, len(plain))
	for k := range plain {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + "=" + plain[k] + "\n")
	}
	return []byte(b.String()), secrets, nil
}

func secretsDigest(secrets map[string][]byte) string {
	keys := make([]string, 0, len(secrets))
	for k := range secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%d:%s\n", k, len(secrets[k]), secrets[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// writeDNSSecrets puts the DNS provider's secrets into the front door's
// data/acme-dns/ (root's alone), each only when its bytes change, and
// removes the files of secrets no longer configured.
func writeDNSSecrets(frontDir string, secrets map[string][]byte) error {
	dir := filepath.Join(frontDir, "data", dnsSecretsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("acme.dns secrets: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("acme.dns secrets: %w", err)
	}
	for name, v := range secrets {
		p := filepath.Join(dir, name)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, v) {
			continue
		}
		if err := render.WriteFile(p, v, 0o600); err != nil {
			return fmt.Errorf("acme.dns secrets: %s: %w", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("acme.dns secrets: %w", err)
	}
	for _, e := range entries {
		if _, ok := secrets[e.Name()]; !ok && envName.MatchString(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("acme.dns secrets: %w", err)
			}
		}
	}
	return nil
}

// validateDNS checks acme.dns, which needs a platform domain the CA can
// issue for.
func (c Config) validateDNS() error {
	d := c.ACME.DNS
	if d == nil {
		return nil
	}
	if c.Domain == "localhost" {
		return dnsField("provider", d.Provider, "needs domain set to the platform's own domain: no CA issues *.localhost")
	}
	return d.validate()
}

// renderDNS adds the front door's DNS-01 files: conf/acme-dns.env (always,
// since the compose file names it) and, with acme.dns, conf/dynamic.yml
// making the wildcard the default store's certificate: Traefik orders it
// once, at start, whatever routers exist, and serves it to every host it
// covers that has no certificate of its own.
func (p *Platform) renderDNS(files render.Files) error {
	env, _, err := p.Config.dnsEnv()
	if err != nil {
		return err
	}
	files["conf/acme-dns.env"] = env
	if a := p.Config.ACME; a == nil || a.DNS == nil {
		return nil
	}
	d := p.Config.Domain // validated: a domain name, safe in YAML quotes
	files["conf/dynamic.yml"] = []byte("# Rendered by darse platform up from acme.dns in conf/darse.yml.\n" +
		"tls:\n  stores:\n    default:\n      defaultGeneratedCert:\n" +
		"        resolver: " + DNSResolver + "\n" +
		"        domain:\n          main: \"" + d + "\"\n          sans: [\"*." + d + "\"]\n")
	return nil
}

// writeDNSSecrets writes what renderDNS's NAME_FILE variables point to.
func (p *Platform) writeDNSSecrets() error {
	_, secrets, err := p.Config.dnsEnv()
	if err != nil {
		return err
	}
	return writeDNSSecrets(p.Dir(FrontDir), secrets)
}
