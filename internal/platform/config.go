// Package platform runs darse's own infrastructure: it reads the platform
// configuration (<srv>/conf/darse.yml), renders the front door (core/front:
// Traefik) from it and converges it on the engine, and says what the sites
// need to know (their domain, entry points, certificate resolver).
package platform

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/darse/darse/internal/alert"
	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/site"
)

// ConfigFile is the platform configuration, under <srv>/conf.
const ConfigFile = "darse.yml"

// Resolver is the name of Traefik's ACME certificate resolver.
const Resolver = "le"

// Config is darse.yml.
type Config struct {
	// Domain is the platform domain: sites answer at NAME.Domain.
	Domain string `yaml:"domain"`
	// Front is where Traefik listens.
	Front Front `yaml:"front"`
	// ACME, when set, makes every site HTTPS with a certificate from this
	// CA, and redirects HTTP to HTTPS. Without it sites are plain HTTP.
	ACME *ACME `yaml:"acme,omitempty"`
	// Firewall configures the firewall watcher running in the front door.
	Firewall Firewall `yaml:"firewall"`
	// Panel configures the members' web panel.
	Panel Panel `yaml:"panel"`
	// Reserved are names no site may take (seed 000's "noms de domaine
	// bannis"): a DNS label reserves that site name and LABEL.<domain>; a
	// fully qualified name reserves that host.
	Reserved []string `yaml:"reserved"`
	// Backup, when set, is where sites and the platform are backed up.
	Backup *Backup `yaml:"backup,omitempty"`
	// Alerts, when set, tells operators of incidents (see package alert).
	Alerts *alert.Config `yaml:"alerts,omitempty"`
	// Retention is how long `darse prune` keeps archives and ended operations.
	Retention Retention `yaml:"retention"`
	// Updates, when set, schedules the images' rebuild and rollout.
	Updates *Updates `yaml:"updates,omitempty"`
	// IPv6, when set, gives the front networks global addresses (ipv6.go).
	IPv6 *IPv6 `yaml:"ipv6,omitempty"`
}

// Backup is the restic repository sites and the platform are backed up
// to: one per host, each snapshot tagged with its site.
type Backup struct {
	// Repository is any restic repository string: an absolute path,
	// local:, sftp:, rest:, s3:, b2:, azure:, gs:, swift: or rclone:.
	Repository string `yaml:"repository"`
	// PasswordFile holds the repository's password (absolute path).
	PasswordFile string `yaml:"password_file"`
	// Keep is the retention applied to each site's snapshots on its own.
	Keep Keep `yaml:"keep"`
	// Schedule is how often each site (and the platform) is backed up by
	// the panel: hourly, daily (the default), weekly, a duration such as
	// 12h, or off. Each site has its own slot in the period, derived from
	// its name (backup.Schedule.Offset).
	Schedule string `yaml:"schedule"`
	// Check is how often the repository is checked (restic check):
	// weekly by default, or off.
	Check string `yaml:"check"`
	// Drill is how often a sample of DrillSample sites (3 by default),
	// rotating, is restored into throw-away projects: weekly by default.
	Drill       string `yaml:"drill"`
	DrillSample int    `yaml:"drill_sample"`
}

// Keep is how many daily, weekly and monthly snapshots of a site are
// kept; all zero (left out) is DefaultKeep.
type Keep struct {
	Daily   int `yaml:"daily"`
	Weekly  int `yaml:"weekly"`
	Monthly int `yaml:"monthly"`
}

// DefaultKeep is a week of days, a month of weeks and half a year of months.
var DefaultKeep = Keep{Daily: 7, Weekly: 4, Monthly: 6}

// repositorySchemes are the backends restic 0.18 knows, as repository prefixes.
var repositorySchemes = []string{"local:", "sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:"}

// Panel configures apps/panel.
type Panel struct {
	// Host is where members reach the panel (default panel.<domain>).
	Host string `yaml:"host"`
	// Project is its compose project name (default "darse-panel").
	Project string `yaml:"project"`
}

// Firewall configures darse-fw.
type Firewall struct {
	// Input is the host's input policy: "accept", or "drop" (everything
	// but SSH, 80, 443 and what containers expose).
	Input string `yaml:"input"`
	// Table is the nftables inet table darse-fw owns.
	Table string `yaml:"table"`
	// Label, when set, limits the watcher to containers carrying it
	// (KEY or KEY=VALUE): for a second platform on one engine, e.g. a test's.
	Label string `yaml:"label"`
	// EgressDeny are the networks tenant containers may not reach besides
	// link-local ones: the host's management addresses, say (CIDRs).
	EgressDeny []string `yaml:"egress_deny"`
}

// Front holds Traefik's listening addresses. ":80" listens on every IPv4
// and IPv6 address of the host.
type Front struct {
	// Project is the front door's compose project name (default "front");
	// a second platform on the same engine, e.g. a test's, needs another.
	Project string `yaml:"project"`
	HTTP    string `yaml:"http"`
	HTTPS   string `yaml:"https"`
	// API is Traefik's API and ping: keep it on the host's loopback.
	API string `yaml:"api"`
	// ShardSites is how many sites one front network (shard) holds before
	// new sites go to the next: a bridge holds 1,024 ports and each site
	// may take two (web and SSH).
	ShardSites int `yaml:"shard_sites"`
}

// DefaultShardSites leaves a shard's bridge room for blue/green rollouts
// (a second web container while one is replaced) beside 2 ports a site.
const DefaultShardSites = 480

// MaxShardSites keeps 2 ports a site and rollouts' extra containers
// under a bridge's 1,024 ports.
const MaxShardSites = 500

// ACME configures the certificate resolver.
type ACME struct {
	// CA is the ACME directory URL; Let's Encrypt when empty.
	CA string `yaml:"ca"`
	// Email is the contact registered with the CA (optional).
	Email string `yaml:"email"`
	// CACertificates is a PEM file of roots to trust for the CA's own
	// HTTPS endpoint, for a private or test CA (optional).
	CACertificates string `yaml:"ca_certificates"`
	// DNS, when set, orders one wildcard certificate for the platform
	// domain through DNS-01 (acmedns.go).
	DNS *ACMEDNS `yaml:"dns,omitempty"`
}

// LetsEncrypt is the default ACME directory.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// Default is the configuration used when darse.yml does not exist: a
// local machine, sites at NAME.localhost over plain HTTP.
func Default() Config {
	return Config{Domain: "localhost", Front: Front{Project: "front", HTTP: ":80", HTTPS: ":443", API: "127.0.0.1:8081", ShardSites: DefaultShardSites},
		Firewall: Firewall{Input: "accept", Table: "darse"}, Panel: Panel{Project: "darse-panel"}}
}

// Load reads <srv>/conf/darse.yml, filling what it leaves out from Default.
// A missing file is the default configuration.
func Load(srv string) (Config, error) {
	cfg := Default()
	path := filepath.Join(srv, "conf", ConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // empty file: defaults
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.ACME != nil && cfg.ACME.CA == "" {
		cfg.ACME.CA = LetsEncrypt
	}
	if b := cfg.Backup; b != nil && b.Keep == (Keep{}) {
		b.Keep = DefaultKeep
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks every field.
func (c Config) Validate() error {
	if err := site.ValidateDomain(c.Domain); err != nil && c.Domain != "localhost" {
		return err
	}
	if !site.IsDNSLabel(c.Front.Project) {
		return &site.FieldError{Field: "front.project", Value: c.Front.Project, Rule: "must be a compose project name: lowercase letters, digits and dashes"}
	}
	for _, a := range []struct{ field, addr string }{{"front.http", c.Front.HTTP}, {"front.https", c.Front.HTTPS}, {"front.api", c.Front.API}} {
		host, port, err := net.SplitHostPort(a.addr)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 1 || n > 65535 || (host != "" && net.ParseIP(host) == nil) {
			return &site.FieldError{Field: a.field, Value: a.addr, Rule: "must be [IP]:PORT, e.g. :80 or 127.0.0.1:8081"}
		}
	}
	if host, _, _ := net.SplitHostPort(c.Front.API); host == "" || !net.ParseIP(host).IsLoopback() {
		return &site.FieldError{Field: "front.api", Value: c.Front.API, Rule: "must be on a loopback address: Traefik's API is not for the outside"}
	}
	if n := c.Front.ShardSites; n < 1 || n > MaxShardSites {
		return &site.FieldError{Field: "front.shard_sites", Value: strconv.Itoa(n),
			Rule: fmt.Sprintf("must be 1 to %d sites: each takes up to 2 of a bridge's 1,024 ports (default %d)", MaxShardSites, DefaultShardSites)}
	}
	if err := site.ValidateDomain(c.PanelHost()); err != nil {
		return &site.FieldError{Field: "panel.host", Value: c.PanelHost(), Rule: "must be a fully qualified domain name"}
	}
	if !site.IsDNSLabel(c.Panel.Project) || c.Panel.Project == c.Front.Project {
		return &site.FieldError{Field: "panel.project", Value: c.Panel.Project, Rule: "must be a compose project name, not the front door's"}
	}
	if c.Firewall.Input != "accept" && c.Firewall.Input != "drop" {
		return &site.FieldError{Field: "firewall.input", Value: c.Firewall.Input, Rule: "must be accept or drop"}
	}
	if !site.IsDNSLabel(c.Firewall.Table) {
		return &site.FieldError{Field: "firewall.table", Value: c.Firewall.Table, Rule: "must be lowercase letters, digits and dashes"}
	}
	for i, d := range c.Firewall.EgressDeny {
		if _, err := netip.ParsePrefix(d); err != nil {
			if _, err := netip.ParseAddr(d); err != nil {
				return &site.FieldError{Field: fmt.Sprintf("firewall.egress_deny[%d]", i), Value: d, Rule: "must be an IPv4 or IPv6 address or CIDR prefix"}
			}
		}
	}
	if l := c.Firewall.Label; l != "" && strings.ContainsAny(l, " \n\"'`$") {
		return &site.FieldError{Field: "firewall.label", Value: l, Rule: "must be KEY or KEY=VALUE without spaces or quotes"}
	}
	for i, r := range c.Reserved {
		if !site.IsDNSLabel(r) && site.ValidateDomain(r) != nil {
			return &site.FieldError{Field: fmt.Sprintf("reserved[%d]", i), Value: r, Rule: "must be a site name (a DNS label) or a fully qualified domain name"}
		}
	}
	if c.Backup != nil {
		if err := c.Backup.validate(); err != nil {
			return err
		}
	}
	if err := c.Retention.validate(); err != nil {
		return err
	}
	if c.Updates != nil {
		if err := c.Updates.validate(); err != nil {
			return err
		}
	}
	if c.Alerts != nil {
		if err := c.Alerts.Validate(); err != nil {
			return err
		}
	}
	if err := c.IPv6.validate(); err != nil {
		return err
	}
	if c.ACME != nil {
		u, err := url.Parse(c.ACME.CA)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return &site.FieldError{Field: "acme.ca", Value: c.ACME.CA, Rule: "must be an https:// ACME directory URL"}
		}
		if e := c.ACME.Email; e != "" && (!strings.Contains(e, "@") || strings.ContainsAny(e, " \"'`\n")) {
			return &site.FieldError{Field: "acme.email", Value: e, Rule: "must be an email address"}
		}
		if p := c.ACME.CACertificates; p != "" && !filepath.IsAbs(p) {
			return &site.FieldError{Field: "acme.ca_certificates", Value: p, Rule: "must be an absolute path"}
		}
		if err := c.validateDNS(); err != nil {
			return err
		}
	}
	return nil
}

// PanelHost is where members reach the panel.
func (c Config) PanelHost() string {
	if c.Panel.Host != "" {
		return c.Panel.Host
	}
	return "panel." + c.Domain
}

// PanelURL is the panel's address as members type it.
func (c Config) PanelURL() string {
	scheme, addr, def := "http", c.Front.HTTP, "80"
	if c.ACME != nil {
		scheme, addr, def = "https", c.Front.HTTPS, "443"
	}
	u := scheme + "://" + c.PanelHost()
	if _, port, _ := net.SplitHostPort(addr); port != def {
		u += ":" + port
	}
	return u
}

// Hosting is the sites' side of the configuration.
func (c Config) Hosting(srv string) hosting.Config {
	h := hosting.Config{Srv: srv, Domain: c.Domain, FrontNetwork: compose.FrontNetwork, FrontAPI: c.Front.API, ShardSites: c.Front.ShardSites, EntryPoints: []string{"web"},
		FrontPrefix6: c.RoutedPrefix()}
	// A site's name is its compose project's: never one of the platform's.
	h.Reserved = map[string]string{TopProject: "the platform's compose project", c.Front.Project: "the front door's compose project",
		c.Panel.Project: "the panel's compose project"}
	h.ReservedHosts = map[string]string{c.Domain: "the platform domain", c.PanelHost(): "the panel's host name",
		"traefik." + c.Domain: "the front door's host name", "api." + c.Domain: "the platform's API host name"}
	for _, r := range c.Reserved {
		if site.IsDNSLabel(r) {
			h.Reserved[r] = "reserved in darse.yml"
			r += "." + c.Domain
		}
		h.ReservedHosts[r] = "reserved in darse.yml"
	}
	if c.ACME != nil {
		h.EntryPoints, h.CertResolver = []string{"websecure"}, Resolver
		if c.ACME.DNS != nil {
			h.Wildcard = c.Domain // acmedns.go: its certificate serves every site's primary host
		}
	}
	return h
}

func (b *Backup) validate() error {
	r := b.Repository
	switch {
	case r == "":
		return &site.FieldError{Field: "backup.repository", Value: r, Rule: "is required: a restic repository such as /var/backups/darse or rest:https://host:8000/darse"}
	case strings.ContainsAny(r, "\n\r\x00"):
		return &site.FieldError{Field: "backup.repository", Value: r, Rule: "must be one line"}
	case !filepath.IsAbs(r) && !slices.ContainsFunc(repositorySchemes, func(p string) bool { return strings.HasPrefix(r, p) && len(r) > len(p) }):
		return &site.FieldError{Field: "backup.repository", Value: r, Rule: "must be an absolute path or start with one of " + strings.Join(repositorySchemes, " ")}
	}
	if p := b.PasswordFile; p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return &site.FieldError{Field: "backup.password_file", Value: p, Rule: "is required: the clean absolute path of a file holding the repository's password"}
	}
	for _, k := range []struct {
		field string
		n     int
	}{{"backup.keep.daily", b.Keep.Daily}, {"backup.keep.weekly", b.Keep.Weekly}, {"backup.keep.monthly", b.Keep.Monthly}} {
		if k.n < 0 || k.n > 1000 {
			return &site.FieldError{Field: k.field, Value: strconv.Itoa(k.n), Rule: "must be between 0 and 1000"}
		}
	}
	if b.DrillSample < 0 || b.DrillSample > 100 {
		return &site.FieldError{Field: "backup.drill_sample", Value: strconv.Itoa(b.DrillSample), Rule: "must be between 0 and 100 (0: the default, 3)"}
	}
	for _, f := range []struct{ field, v string }{{"backup.schedule", b.Schedule}, {"backup.check", b.Check}, {"backup.drill", b.Drill}} {
		if _, err := backup.ParseSchedule(f.v, "daily"); err != nil {
			return &site.FieldError{Field: f.field, Value: f.v, Rule: "must be hourly, daily, weekly, off, or a whole number of minutes between 1h and 744h such as 12h"}
		}
	}
	return nil
}

// Schedules are the backup section's schedules, parsed (validated when loaded).
func (b *Backup) Schedules() (backups, check backup.Schedule) {
	backups, _ = backup.ParseSchedule(b.Schedule, "daily")
	check, _ = backup.ParseSchedule(b.Check, "weekly")
	return backups, check
}

// Drills is the drill schedule and how many sites each drill restores.
func (b *Backup) Drills() (backup.Schedule, int) {
	d, _ := backup.ParseSchedule(b.Drill, "weekly")
	return d, cmp.Or(b.DrillSample, 3)
}
