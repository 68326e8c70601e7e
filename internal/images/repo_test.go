package images_test

import (
	"io/fs"
	"slices"
	"testing"

	"github.com/darse/darse"
	"github.com/darse/darse/internal/images"
)

// The definitions shipped in the repository parse, and carry the tags the
// templates use.
func TestRepositoryDefinitions(t *testing.T) {
	defs := repoDefinitions(t)
	tags := map[string]string{}
	for _, d := range defs {
		tags[d.Name] = d.Tag
		if d.Debootstrap != nil && d.Config.User != "33:33" && d.Name != "mariadb" && d.Name != "postgres" {
			t.Errorf("%s: user %q, want 33:33: sites run as www-data", d.Name, d.Config.User)
		}
	}
	want := map[string]string{"nginx": "darse/nginx:bookworm", "php-fpm": "darse/php-fpm:8.2-bookworm", "traefik": "traefik:v3.6"}
	for name, tag := range want {
		if tags[name] != tag {
			t.Errorf("image %s: tag %q, want %q", name, tags[name], tag)
		}
	}
	php := defs[slices.IndexFunc(defs, func(d images.Definition) bool { return d.Name == "php-fpm" })]
	if !slices.Contains(php.Config.Env, "PHP_MEMORY_LIMIT=128M") {
		t.Errorf("php-fpm: env %q lacks the PHP_MEMORY_LIMIT default its pool needs", php.Config.Env)
	}
	for _, f := range []string{"etc/php/8.2/fpm/php-fpm.conf", "etc/php/8.2/fpm/pool.d/www.conf"} {
		if _, err := fs.Stat(php.Overlay, f); err != nil {
			t.Errorf("php-fpm overlay: %v", err)
		}
	}
}

func repoDefinitions(t *testing.T) []images.Definition {
	t.Helper()
	sub, err := fs.Sub(darse.Images, "images")
	if err != nil {
		t.Fatal(err)
	}
	defs, err := images.Load(sub)
	if err != nil {
		t.Fatal(err)
	}
	return defs
}
