package images_test

import (
	"slices"
	"testing"
)

// The database and application images are defined with the tags the
// templates use, run as a user of their own or www-data, and the
// application PHP image carries the extensions WordPress needs.
func TestDatabaseImageDefinitions(t *testing.T) {
	defs := repoDefinitions(t)
	byName := map[string]int{}
	for i, d := range defs {
		byName[d.Name] = i
	}
	want := map[string]struct{ tag, user string }{
		"mariadb":   {"darse/mariadb:10.11-bookworm", "mysql"},
		"postgres":  {"darse/postgres:15-bookworm", "postgres"},
		"php-apps":  {"darse/php-apps:8.2-bookworm", "33:33"},
		"wordpress": {"darse/wordpress:6.1-bookworm", "33:33"},
	}
	for name, w := range want {
		i, ok := byName[name]
		if !ok {
			t.Errorf("no image %s", name)
			continue
		}
		if d := defs[i]; d.Tag != w.tag || d.Config.User != w.user || d.Debootstrap == nil || d.Debootstrap.Suite != "bookworm" {
			t.Errorf("%s: tag %s user %s", name, d.Tag, d.Config.User)
		}
	}
	php := defs[byName["php-apps"]].Debootstrap.Packages
	for _, ext := range []string{"mysql", "pgsql", "gd", "intl", "curl", "zip", "mbstring", "xml", "opcache"} {
		if !slices.Contains(php, "php8.2-"+ext) {
			t.Errorf("php-apps lacks php8.2-%s", ext)
		}
	}
}
