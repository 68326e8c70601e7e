// Package alert watches the platform and tells operators, by e-mail and
// webhook, when something needs them: a site down, an OOM kill, the
// host's disk filling, the firewall watcher failing to apply, a stale
// backup. Each incident is one message when it opens and one when it is
// resolved, never one a minute: its state is kept in the store.
package alert

import (
	"fmt"
	"net/mail"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Config is darse.yml's alerts: section.
type Config struct {
	SMTP    *SMTP    `yaml:"smtp,omitempty"`
	Webhook *Webhook `yaml:"webhook,omitempty"`
	// Interval is how often conditions are checked (default 1m).
	Interval time.Duration `yaml:"interval"`
	// DownAfter is how long a site that should run may be down (a
	// container not running or unhealthy) before it is an incident
	// (default 2m: a restart or a rollout is not one).
	DownAfter time.Duration `yaml:"down_after"`
	// OOMQuiet is how long after the last OOM kill its incident is
	// resolved (default 15m).
	OOMQuiet time.Duration `yaml:"oom_quiet"`
	// DiskFreePercent: less free space than this on the file system of
	// /srv is an incident (default 10; 0 is 10, -1 turns it off).
	DiskFreePercent int `yaml:"disk_free_percent"`
	// FirewallMetrics is darse-fw's metrics URL (darse-fw --metrics);
	// empty: the firewall is not watched.
	FirewallMetrics string `yaml:"firewall_metrics"`
	// BackupMaxAge: a site whose last successful backup is older is an
	// incident; zero: not watched.
	BackupMaxAge time.Duration `yaml:"backup_max_age"`
	// CertRenewDays: a certificate of the front door this close to its
	// expiry is not renewing, an incident (default 14; -1 turns it off).
	CertRenewDays int `yaml:"cert_renew_days"`
}

// SMTP is where alert mail goes.
type SMTP struct {
	Host string   `yaml:"host"`
	Port int      `yaml:"port"`
	From string   `yaml:"from"`
	To   []string `yaml:"to"`
	// Username and PasswordFile, both or neither: PLAIN authentication,
	// only over TLS (STARTTLS) or to a loopback server.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// Webhook is an address alerts are POSTed to as JSON.
type Webhook struct {
	URL string `yaml:"url"`
}

// FieldError names the key of alerts: that is wrong and the rule.
type FieldError struct {
	Field, Value, Rule string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("alerts.%s %q: %s", e.Field, e.Value, e.Rule)
}

// WithDefaults fills what c leaves out.
func (c Config) WithDefaults() Config {
	if c.Interval == 0 {
		c.Interval = time.Minute
	}
	if c.DownAfter == 0 {
		c.DownAfter = 2 * time.Minute
	}
	if c.OOMQuiet == 0 {
		c.OOMQuiet = 15 * time.Minute
	}
	if c.DiskFreePercent == 0 {
		c.DiskFreePercent = 10
	}
	if c.CertRenewDays == 0 {
		c.CertRenewDays = 14
	}
	return c
}

// Validate checks every key.
func (c Config) Validate() error {
	if c.SMTP == nil && c.Webhook == nil {
		return &FieldError{"smtp", "", "alerts need smtp:, webhook: or both"}
	}
	if s := c.SMTP; s != nil {
		if err := s.validate(); err != nil {
			return err
		}
	}
	if w := c.Webhook; w != nil {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return &FieldError{"webhook.url", w.URL, "must be an http:// or https:// URL without credentials"}
		}
	}
	for _, d := range []struct {
		field string
		v     time.Duration
		min   time.Duration
	}{{"interval", c.Interval, time.Second}, {"down_after", c.DownAfter, 0}, {"oom_quiet", c.OOMQuiet, 0}, {"backup_max_age", c.BackupMaxAge, 0}} {
		if d.v < 0 || (d.v != 0 && d.v < d.min) {
			return &FieldError{d.field, d.v.String(), fmt.Sprintf("must be a duration of at least %s, e.g. 2m", max(d.min, time.Second))}
		}
	}
	if p := c.DiskFreePercent; p < -1 || p > 99 {
		return &FieldError{"disk_free_percent", fmt.Sprint(p), "must be a percentage from 1 to 99 (-1: off)"}
	}
	if d := c.CertRenewDays; d < -1 || d > 29 {
		return &FieldError{"cert_renew_days", fmt.Sprint(d), "must be a number of days from 1 to 29, below Traefik's renewal at 30 (-1: off)"}
	}
	if f := c.FirewallMetrics; f != "" {
		u, err := url.Parse(f)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return &FieldError{"firewall_metrics", f, "must be darse-fw's http:// metrics URL, e.g. http://127.0.0.1:9465/metrics"}
		}
	}
	return nil
}

func (s *SMTP) validate() error {
	if s.Host == "" || strings.ContainsAny(s.Host, " /\r\n") {
		return &FieldError{"smtp.host", s.Host, "must be a host name or address"}
	}
	if s.Port < 1 || s.Port > 65535 {
		return &FieldError{"smtp.port", fmt.Sprint(s.Port), "must be a port from 1 to 65535 (25, 587)"}
	}
	if err := address(s.From); err != nil {
		return &FieldError{"smtp.from", s.From, err.Error()}
	}
	if len(s.To) == 0 {
		return &FieldError{"smtp.to", "", "must list at least one address"}
	}
	for i, to := range s.To {
		if err := address(to); err != nil {
			return &FieldError{fmt.Sprintf("smtp.to[%d]", i), to, err.Error()}
		}
	}
	if (s.Username == "") != (s.PasswordFile == "") {
		return &FieldError{"smtp.username", s.Username, "username and password_file go together"}
	}
	if s.PasswordFile != "" && !filepath.IsAbs(s.PasswordFile) {
		return &FieldError{"smtp.password_file", s.PasswordFile, "must be an absolute path"}
	}
	if strings.ContainsAny(s.Username, "\r\n") {
		return &FieldError{"smtp.username", s.Username, "must be one line"}
	}
	return nil
}

// address accepts a bare e-mail address (no name, nothing a header
// could be smuggled in).
func address(a string) error {
	p, err := mail.ParseAddress(a)
	if err != nil || p.Address != a || p.Name != "" {
		return fmt.Errorf("must be an e-mail address such as ops@example.org")
	}
	return nil
}
