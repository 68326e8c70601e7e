package template

import (
	"crypto/rand"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Database is a template's database service, described once for every
// step that must handle it without knowing the engine: rendering (its
// folder and owner), backups (dump and load, run in the container through
// the engine's Exec API) and the checks that it came up.
type Database struct {
	// Service is the compose service running the database.
	Service string `yaml:"service"`
	// Engine names the database software: mariadb or postgres.
	Engine string `yaml:"engine"`
	// Dir is the folder of the project, outside data/, holding the
	// database's files: not reachable over SFTP or by upload.
	Dir string `yaml:"dir"`
	// UID and GID own Dir; the service runs as them.
	UID int `yaml:"uid"`
	GID int `yaml:"gid"`
	// Dump writes the site's database to stdout; Load reads such a dump
	// on stdin. Both are argument lists run in the service's container as
	// its user, which the database trusts over its local socket: no
	// password on a command line.
	Dump []string `yaml:"dump"`
	Load []string `yaml:"load"`
	// Health is the service's health check, as in its compose file (a
	// test checks that they agree).
	Health DatabaseHealth `yaml:"health"`
}

// DatabaseHealth is a Docker health check: Test runs in the container
// (exec form, without the leading "CMD").
type DatabaseHealth struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

// Engines are the database engines templates may declare.
var Engines = []string{"mariadb", "postgres"}

// MinHealthInterval bounds how often a health check may run: each one is
// a process in the container, and a host holds hundreds of sites.
const MinHealthInterval = 30 * time.Second

// Secret is a value darse generates when a site is created (a database
// password, a salt), kept with the site's spec and written to its .env
// only: never in docker-compose.yml, never set by a member.
type Secret struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// SecretLength is the length of generated secrets: 32 characters of 62
// is over 190 bits.
const SecretLength = 32

// reservedDirs are the project's own folders, which a database may not take.
var reservedDirs = []string{"data", "conf", "ssh", "seed"}

func (d *Database) check(t *Template) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("database: "+format, args...)
	}
	if d.Service == "" || d.Service == t.Web.Service || (t.SSH != nil && d.Service == t.SSH.Service) {
		return bad("service must be named and be neither the web nor the ssh service")
	}
	if !slices.Contains(Engines, d.Engine) {
		return bad("engine %q: must be one of %s", d.Engine, strings.Join(Engines, ", "))
	}
	if d.Dir == "" || path.IsAbs(d.Dir) || path.Clean(d.Dir) != d.Dir || strings.Contains(d.Dir, "/") ||
		strings.HasPrefix(d.Dir, ".") || slices.Contains(reservedDirs, d.Dir) {
		return bad("dir %q: must be one folder name of the project, not hidden and not %s", d.Dir, strings.Join(reservedDirs, ", "))
	}
	if d.UID < 1 || d.GID < 1 {
		return bad("uid and gid must be set and not root")
	}
	if t.SSH != nil && d.UID == t.SSH.UID {
		return bad("uid %d is the files' owner (ssh.uid): the database's files must not be the member's", d.UID)
	}
	if len(d.Dump) == 0 || len(d.Load) == 0 {
		return bad("dump and load must be argument lists")
	}
	h := d.Health
	if len(h.Test) == 0 || h.Retries < 1 {
		return bad("health needs a test and retries")
	}
	iv, err := time.ParseDuration(h.Interval)
	if err != nil || iv < MinHealthInterval {
		return bad("health.interval %q: must be a duration of at least %s", h.Interval, MinHealthInterval)
	}
	for name, v := range map[string]string{"timeout": h.Timeout, "start_period": h.StartPeriod} {
		if _, err := time.ParseDuration(v); err != nil {
			return bad("health.%s %q: must be a duration", name, v)
		}
	}
	return nil
}

func (t *Template) checkSecrets(params map[string]bool) error {
	seen := map[string]bool{}
	for _, s := range t.Secrets {
		if !paramNameRE.MatchString(s.Name) || strings.HasPrefix(s.Name, "DARSE_") || strings.HasPrefix(s.Name, "COMPOSE_") {
			return fmt.Errorf("secret %q: name must be UPPER_SNAKE_CASE and not start with DARSE_ or COMPOSE_", s.Name)
		}
		if seen[s.Name] || params[s.Name] {
			return fmt.Errorf("secret %q: declared twice", s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

// IsSecret reports whether name is one of the template's generated secrets.
func (t *Template) IsSecret(name string) bool {
	return slices.ContainsFunc(t.Secrets, func(s Secret) bool { return s.Name == name })
}

// generateSecret returns SecretLength random letters and digits: safe
// unquoted in .env, in SQL string literals and in shell words.
func generateSecret() (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, SecretLength)
	for i := range b {
		// Rejection sampling keeps every character equally likely.
		for {
			var one [1]byte
			if _, err := rand.Read(one[:]); err != nil {
				return "", fmt.Errorf("generate secret: %w", err)
			}
			if int(one[0]) < 256-256%len(alphabet) {
				b[i] = alphabet[int(one[0])%len(alphabet)]
				break
			}
		}
	}
	return string(b), nil
}

// errGenerated refuses a member's value for a generated secret.
var errGenerated = errors.New("is generated by darse when the site is created and cannot be set")

// checkCompose checks that the database service is in the template's
// docker-compose.yml with the health check the metadata declares: the
// engine runs one, later steps read the other.
func (t *Template) checkCompose() error {
	d := t.Database
	if d == nil {
		return nil
	}
	services, err := t.services()
	if err != nil {
		return err
	}
	s, ok := services[d.Service]
	if !ok {
		return fmt.Errorf("database: service %q is not in docker-compose.yml", d.Service)
	}
	hc, h := s.Healthcheck, d.Health
	if hc == nil || !slices.Equal(hc.Test, append([]string{"CMD"}, h.Test...)) || hc.Interval != h.Interval ||
		hc.Timeout != h.Timeout || hc.Retries != h.Retries || hc.StartPeriod != h.StartPeriod {
		return fmt.Errorf("database: service %q's healthcheck in docker-compose.yml differs from database.health (want test [CMD %s], interval %s, timeout %s, retries %d, start_period %s)",
			d.Service, strings.Join(h.Test, " "), h.Interval, h.Timeout, h.Retries, h.StartPeriod)
	}
	return nil
}
