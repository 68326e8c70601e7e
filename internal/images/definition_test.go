package images

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

const validJSON = `{
  "tag": "darse/nginx:bookworm",
  "debootstrap": {"suite": "bookworm", "packages": ["nginx-light"], "remove": ["etc/nginx/sites-enabled/default"]},
  "config": {
    "cmd": ["nginx", "-g", "daemon off;"],
    "env": ["PATH=/usr/bin:/bin", "GREETING=hello \"world\" $HOME"],
    "expose": ["8080/tcp", "53/udp", "9000"],
    "user": "33:33",
    "workdir": "/srv/data",
    "labels": {"org.opencontainers.image.title": "nginx"}
  }
}`

func TestParseValid(t *testing.T) {
	d, err := Parse("nginx", []byte(validJSON))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "nginx" || d.Tag != "darse/nginx:bookworm" {
		t.Errorf("name, tag = %q, %q", d.Name, d.Tag)
	}
	if d.Debootstrap == nil || !slices.Equal(d.Debootstrap.Packages, []string{"nginx-light"}) {
		t.Errorf("debootstrap = %+v", d.Debootstrap)
	}
}

func TestChanges(t *testing.T) {
	d, err := Parse("nginx", []byte(validJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`CMD ["nginx","-g","daemon off;"]`,
		`ENV PATH="/usr/bin:/bin"`,
		`ENV GREETING="hello \"world\" \$HOME"`,
		`LABEL org.opencontainers.image.title="nginx"`,
		`EXPOSE 8080/tcp`,
		`EXPOSE 53/udp`,
		`EXPOSE 9000`,
		`USER 33:33`,
		`WORKDIR /srv/data`,
	}
	if got := d.Config.Changes(); !slices.Equal(got, want) {
		t.Errorf("changes:\n got %q\nwant %q", got, want)
	}
}

func TestParseInvalid(t *testing.T) {
	// Each case edits the valid file; the error must mention want.
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown field", `"tag"`, `"tga": "x", "tag"`, `unknown field "tga"`},
		{"no tag", `"tag": "darse/nginx:bookworm",`, ``, `tag ""`},
		{"tag without version", `darse/nginx:bookworm`, `darse/nginx`, `want repository:tag`},
		{"uppercase tag", `darse/nginx:bookworm`, `Darse/nginx:bookworm`, `want repository:tag`},
		{"no build kind", `"debootstrap": {"suite": "bookworm", "packages": ["nginx-light"], "remove": ["etc/nginx/sites-enabled/default"]},`, ``, `exactly one build kind`},
		{"bad suite", `"suite": "bookworm"`, `"suite": "Bookworm 12"`, `debootstrap.suite`},
		{"no packages", `"packages": ["nginx-light"]`, `"packages": []`, `packages: empty`},
		{"bad package", `"nginx-light"]`, `"nginx-light", "--foo"]`, `"--foo" is not a Debian package`},
		{"absolute remove", `"etc/nginx/sites-enabled/default"`, `"/etc"`, `want a clean path relative`},
		{"escaping remove", `"etc/nginx/sites-enabled/default"`, `"../etc"`, `want a clean path relative`},
		{"no command", `"cmd": ["nginx", "-g", "daemon off;"],`, ``, `set cmd or entrypoint`},
		{"bad env", `"PATH=/usr/bin:/bin"`, `"PATH"`, `"PATH" is not KEY=value`},
		{"bad expose", `"53/udp"`, `"53/sctp"`, `"53/sctp" is not PORT`},
		{"port range", `"9000"`, `"70000"`, `out of range`},
		{"relative workdir", `"/srv/data"`, `"srv/data"`, `config.workdir`},
		{"trailing data", `}
}`, `}
} {}`, `trailing data`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(validJSON, c.old, c.new, 1)
			if src == validJSON {
				t.Fatalf("case does not change the file: %q not found", c.old)
			}
			_, err := Parse("nginx", []byte(src))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if !strings.Contains(err.Error(), `image "nginx"`) {
				t.Errorf("error %q does not name the image", err)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	src := strings.NewReplacer(`"suite": "bookworm"`, `"suite": ""`, `"/srv/data"`, `"srv"`).Replace(validJSON)
	_, err := Parse("nginx", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "suite") || !strings.Contains(err.Error(), "workdir") {
		t.Errorf("want both problems reported, got %v", err)
	}
}

func TestLoad(t *testing.T) {
	other := strings.Replace(validJSON, "darse/nginx:bookworm", "darse/other:1", 1)
	fsys := fstest.MapFS{
		"nginx/image.json":              {Data: []byte(validJSON)},
		"nginx/rootfs/etc/nginx/a.conf": {Data: []byte("a")},
		"other/image.json":              {Data: []byte(other)},
		"notes/README.md":               {Data: []byte("not an image")},
		"README.md":                     {Data: []byte("top-level file")},
	}
	defs, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range defs {
		names = append(names, d.Name)
	}
	if !slices.Equal(names, []string{"nginx", "other"}) {
		t.Fatalf("names = %q", names)
	}
	if defs[0].Overlay == nil || defs[1].Overlay != nil {
		t.Errorf("overlays: nginx %v, other %v", defs[0].Overlay, defs[1].Overlay)
	}
	data, err := fs.ReadFile(defs[0].Overlay, "etc/nginx/a.conf")
	if err != nil || string(data) != "a" {
		t.Errorf("overlay file = %q, %v", data, err)
	}
}

func TestLoadDuplicateTag(t *testing.T) {
	fsys := fstest.MapFS{
		"a/image.json": {Data: []byte(validJSON)},
		"b/image.json": {Data: []byte(validJSON)},
	}
	if _, err := Load(fsys); err == nil || !strings.Contains(err.Error(), "both tagged") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadOverlayNotAFolder(t *testing.T) {
	fsys := fstest.MapFS{
		"a/image.json": {Data: []byte(validJSON)},
		"a/rootfs":     {Data: []byte("oops")},
	}
	if _, err := Load(fsys); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("err = %v", err)
	}
}

func TestSelect(t *testing.T) {
	defs := []Definition{{Name: "nginx"}, {Name: "php-fpm"}}
	names := func(ds []Definition) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.Name)
		}
		return out
	}
	all, err := Select(defs, nil)
	if err != nil || !slices.Equal(names(all), []string{"nginx", "php-fpm"}) {
		t.Errorf("all: %q, %v", names(all), err)
	}
	some, err := Select(defs, []string{"php-fpm", "nginx", "php-fpm"})
	if err != nil || !slices.Equal(names(some), []string{"php-fpm", "nginx"}) {
		t.Errorf("some: %q, %v", names(some), err)
	}
	_, err = Select(defs, []string{"nginx", "apache", "mysql"})
	want := `unknown images "apache", "mysql" (defined: nginx, php-fpm)`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestGoModuleValidation(t *testing.T) {
	good := `{"tag":"traefik:v3.6","gomodule":{"module":"github.com/traefik/traefik/v3","version":"v3.6.12",
		"package":"github.com/traefik/traefik/v3/cmd/traefik","binary":"/usr/local/bin/traefik",
		"replace":{"github.com/gorilla/mux":"github.com/containous/mux@v0.0.0-20250523120546-41b6ec3aed59"},
		"exclude":["github.com/x/y@v3.0.83+incompatible"]},"config":{"entrypoint":["/usr/local/bin/traefik"]}}`
	if _, err := Parse("traefik", []byte(good)); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"version":   strings.Replace(good, `"v3.6.12"`, `"latest"`, 1),
		"package":   strings.Replace(good, `/v3/cmd/traefik"`, `/v4/cmd/traefik"`, 1),
		"binary":    strings.Replace(good, `"binary":"/usr/local/bin/traefik"`, `"binary":"traefik"`, 1),
		"replace":   strings.Replace(good, `@v0.0.0-20250523120546-41b6ec3aed59`, ``, 1),
		"ldflags":   strings.Replace(good, `"binary"`, `"ldflags":"-X 'a=b'","binary"`, 1),
		"two kinds": strings.Replace(good, `"config"`, `"debootstrap":{"suite":"bookworm","packages":["nginx-light"]},"config"`, 1),
	} {
		if _, err := Parse("traefik", []byte(bad)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
