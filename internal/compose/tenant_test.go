package compose

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// write writes content to rel under dir, creating folders.
func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// refused loads dir as a tenant and fails unless the load is refused with
// an error mentioning every want.
func refused(t *testing.T, dir string, want ...string) {
	t.Helper()
	p, err := Load(context.Background(), dir, TenantPolicy)
	if err == nil {
		t.Fatalf("Load accepted the project (%d services); want a refusal mentioning %q", len(p.Services), want)
	}
	t.Log(err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("Load = %v\nwant an error mentioning %q", err, w)
		}
	}
}

// Hole 1: the engine turns every mount type but "volume" into a bind, so
// each type is resolved to what the engine does before it is allowed.
func TestTenantMountTypes(t *testing.T) {
	cases := map[string]struct{ volumes, top, where, want string }{
		"npipe":        {volumes: "      - {type: npipe, source: /, target: /host}\n", want: `"npipe"`},
		"cluster":      {volumes: "      - {type: cluster, source: /, target: /host}\n", want: `"cluster"`},
		"image":        {volumes: "      - {type: image, source: /, target: /host}\n", want: `"image"`},
		"tmpfs":        {volumes: "      - {type: tmpfs, source: /, target: /host}\n", want: `"tmpfs"`},
		"bind outside": {volumes: "      - {type: bind, source: /, target: /host}\n", want: "inside the project folder"},
		"volume of host path": {volumes: "      - {type: volume, source: data, target: /host}\n",
			top: "volumes:\n  data:\n    driver_opts: {type: none, o: bind, device: /}\n", where: "volume data", want: "driver_opts"},
		"volume driver": {volumes: "      - {type: volume, source: data, target: /host}\n",
			top: "volumes:\n  data:\n    driver: local\n", where: "volume data", want: "driver"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := folder(t, "site", "services:\n  web:"+lockedWeb+"    volumes:\n"+c.volumes+c.top, "")
			if c.where == "" {
				c.where = "service web"
			}
			refused(t, dir, c.where, c.want)
		})
	}
	t.Run("named volume", func(t *testing.T) {
		dir := folder(t, "site", "services:\n  web:"+lockedWeb+"    volumes: [data:/d]\nvolumes:\n  data: {}\n", "")
		p, err := Load(context.Background(), dir, TenantPolicy)
		if err != nil {
			t.Fatal(err)
		}
		if m := p.Services[0].Container.Mounts; len(m) != 1 || m[0].Type != "volume" || m[0].Source != "site_data" {
			t.Fatalf("mounts = %+v", m)
		}
	})
}

// Hole 2: every file the project reads stays inside its folder, symlinks
// followed.
func TestTenantFileReferences(t *testing.T) {
	const secret = "DB_PASSWORD=other-site-secret\n"
	cases := map[string]func(t *testing.T, dir, other string){
		"env_file outside": func(t *testing.T, dir, other string) {
			write(t, dir, "docker-compose.yml", "services:\n  web:"+lockedWeb+"    env_file: ../other/.env\n")
		},
		"env_file absolute": func(t *testing.T, dir, other string) {
			write(t, dir, "docker-compose.yml", "services:\n  web:"+lockedWeb+"    env_file: "+filepath.Join(other, ".env")+"\n")
		},
		"env_file symlinked out": func(t *testing.T, dir, other string) {
			symlink(t, filepath.Join(other, ".env"), filepath.Join(dir, "site.env"))
			write(t, dir, "docker-compose.yml", "services:\n  web:"+lockedWeb+"    env_file: site.env\n")
		},
		"env_file long syntax": func(t *testing.T, dir, other string) {
			write(t, dir, "docker-compose.yml", "services:\n  web:"+lockedWeb+"    env_file:\n      - path: ../other/.env\n        required: false\n")
		},
		"include outside": func(t *testing.T, dir, other string) {
			write(t, other, "docker-compose.yml", "services:\n  db:"+lockedWeb)
			write(t, dir, "docker-compose.yml", "include: [../other/docker-compose.yml]\nservices:\n  web:"+lockedWeb)
		},
		"include symlinked out": func(t *testing.T, dir, other string) {
			write(t, other, "docker-compose.yml", "services:\n  db:"+lockedWeb)
			symlink(t, other, filepath.Join(dir, "conf"))
			write(t, dir, "docker-compose.yml", "include: [conf/docker-compose.yml]\nservices:\n  web:"+lockedWeb)
		},
		"include env_file": func(t *testing.T, dir, other string) {
			write(t, dir, "inc.yml", "services:\n  db:"+lockedWeb)
			write(t, dir, "docker-compose.yml", "include:\n  - path: inc.yml\n    env_file: ../other/.env\nservices:\n  web:"+lockedWeb)
		},
		"nested include outside": func(t *testing.T, dir, other string) {
			write(t, other, "docker-compose.yml", "services:\n  db:"+lockedWeb)
			write(t, dir, "conf/inc.yml", "include: [../../other/docker-compose.yml]\nservices:\n  php:"+lockedWeb)
			write(t, dir, "docker-compose.yml", "include: [conf/inc.yml]\nservices:\n  web:"+lockedWeb)
		},
		"extends outside": func(t *testing.T, dir, other string) {
			write(t, other, "base.yml", "services:\n  base:"+lockedWeb)
			write(t, dir, "docker-compose.yml", "services:\n  web:\n    extends: {file: ../other/base.yml, service: base}\n")
		},
		"extends interpolated": func(t *testing.T, dir, other string) {
			write(t, other, "base.yml", "services:\n  base:"+lockedWeb)
			write(t, dir, ".env", "BASE="+filepath.Join(other, "base.yml")+"\n")
			write(t, dir, "docker-compose.yml", "services:\n  web:\n    extends: {file: \"${BASE}\", service: base}\n")
		},
		"chained extends outside": func(t *testing.T, dir, other string) {
			write(t, other, "base.yml", "services:\n  base:"+lockedWeb)
			write(t, dir, "conf/mid.yml", "services:\n  mid:\n    extends: {file: ../../other/base.yml, service: base}\n")
			write(t, dir, "docker-compose.yml", "services:\n  web:\n    extends: {file: conf/mid.yml, service: mid}\n")
		},
		".env symlinked out": func(t *testing.T, dir, other string) {
			os.Remove(filepath.Join(dir, ".env"))
			symlink(t, filepath.Join(other, ".env"), filepath.Join(dir, ".env"))
		},
		"override symlinked out": func(t *testing.T, dir, other string) {
			write(t, other, "docker-compose.yml", "services:\n  web:\n    environment: {A: b}\n")
			symlink(t, filepath.Join(other, "docker-compose.yml"), filepath.Join(dir, "docker-compose.override.yml"))
		},
		"compose file symlinked out": func(t *testing.T, dir, other string) {
			write(t, other, "docker-compose.yml", "services:\n  web:"+lockedWeb)
			os.Remove(filepath.Join(dir, "docker-compose.yml"))
			symlink(t, filepath.Join(other, "docker-compose.yml"), filepath.Join(dir, "docker-compose.yml"))
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			users := t.TempDir()
			other := filepath.Join(users, "other")
			write(t, other, ".env", secret)
			dir := filepath.Join(users, "site")
			write(t, dir, "docker-compose.yml", "services:\n  web:"+lockedWeb)
			write(t, dir, ".env", "")
			setup(t, dir, other)
			p, err := Load(context.Background(), dir, TenantPolicy)
			if err == nil {
				t.Fatalf("Load accepted the project: %+v", p.Services)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), "inside the project folder") {
				t.Fatalf("Load = %v\nwant an error saying the file must stay inside the project folder", err)
			}
			if strings.Contains(err.Error(), "other-site-secret") {
				t.Fatalf("the refusal leaks the other site's file: %v", err)
			}
		})
	}
}

// The same references are fine inside the folder.
func TestTenantFileReferencesInside(t *testing.T) {
	dir := folder(t, "site", "include: [conf/inc.yml]\nservices:\n  web:\n    extends: {file: conf/base.yml, service: base}\n    env_file: [conf/web.env]\n", "")
	write(t, dir, "conf/inc.yml", "services:\n  php:"+lockedWeb)
	write(t, dir, "conf/base.yml", "services:\n  base:"+lockedWeb)
	write(t, dir, "conf/web.env", "GREETING=hello\n")
	p, err := Load(context.Background(), dir, TenantPolicy)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, s := range p.Services {
		if s.Name == "web" {
			env = s.Container.Env
		}
	}
	if len(p.Services) != 2 || !strings.Contains(strings.Join(env, " "), "GREETING=hello") {
		t.Fatalf("services = %+v", p.Services)
	}
}

// Hole 3: a tenant's volumes and networks are its own.
func TestTenantNamespace(t *testing.T) {
	use := "    volumes: [data:/srv/data]\n"
	cases := map[string]struct{ service, top, want string }{
		"volume named":            {use, "volumes:\n  data:\n    name: other_data\n", `volume data`},
		"volume external":         {use, "volumes:\n  data:\n    external: true\n", `volume data`},
		"external volume by name": {use, "volumes:\n  data:\n    external: true\n    name: other_data\n", `volume data`},
		"network named":           {"    networks: [back]\n", "networks:\n  back:\n    name: other_default\n", `network back`},
		"default network named":   {"", "networks:\n  default:\n    name: other_default\n", `network default`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			refused(t, folder(t, "site", "services:\n  web:"+lockedWeb+c.service+c.top, ""), c.want, "site_")
		})
	}
}

// Hole 4: a tenant's project name is its folder's name.
func TestTenantProjectName(t *testing.T) {
	t.Run("COMPOSE_PROJECT_NAME", func(t *testing.T) {
		refused(t, folder(t, "site", "services:\n  web:"+lockedWeb, "COMPOSE_PROJECT_NAME=other\n"), "COMPOSE_PROJECT_NAME", `"other"`)
	})
	t.Run("name", func(t *testing.T) {
		refused(t, folder(t, "site", "name: other\nservices:\n  web:"+lockedWeb, ""), "name", `"other"`)
	})
	t.Run("name in override", func(t *testing.T) {
		dir := folder(t, "site", "services:\n  web:"+lockedWeb, "")
		write(t, dir, "docker-compose.override.yml", "name: other\n")
		refused(t, dir, "name", `"other"`)
	})
	t.Run("folder name", func(t *testing.T) {
		dir := folder(t, "site", "name: site\nservices:\n  web:"+lockedWeb, "COMPOSE_PROJECT_NAME=site\n")
		p, err := Load(context.Background(), dir, TenantPolicy)
		if err != nil || p.Name != "site" {
			t.Fatalf("Load = %v, %v; want project site", p, err)
		}
	})
}

// Hole 5: traefik.*, darse.* (and compose's own) labels come only from
// the override darse renders, never from the tenant's own files.
func TestTenantReservedLabels(t *testing.T) {
	cases := map[string]func(t *testing.T, dir string){
		"traefik in compose file": func(t *testing.T, dir string) {
			write(t, dir, "docker-compose.yml", "services:\n  web:"+lockedWeb+"    labels: {traefik.http.routers.x.rule: \"Host(`bank.example.org`)\"}\n")
		},
		"darse in compose file": func(t *testing.T, dir string) {
			write(t, dir, "docker-compose.yml", "services:\n  web:"+lockedWeb+"    labels: [darse.expose.fwd=22]\n")
		},
		"case folded": func(t *testing.T, dir string) {
			write(t, dir, "docker-compose.yml", "services:\n  web:"+lockedWeb+"    labels: [Traefik.enable=true]\n")
		},
		"compose project": func(t *testing.T, dir string) {
			write(t, dir, "docker-compose.yml", "services:\n  web:"+lockedWeb+"    labels: [com.docker.compose.project=other]\n")
		},
		"through extends": func(t *testing.T, dir string) {
			write(t, dir, "conf/base.yml", "services:\n  base:"+lockedWeb+"    labels: [darse.owner=admin]\n")
			write(t, dir, "docker-compose.yml", "services:\n  web:\n    extends: {file: conf/base.yml, service: base}\n")
		},
		"through include": func(t *testing.T, dir string) {
			write(t, dir, "conf/inc.yml", "services:\n  php:"+lockedWeb+"    labels: [traefik.enable=true]\n")
			write(t, dir, "docker-compose.yml", "include: [conf/inc.yml]\nservices:\n  web:"+lockedWeb)
		},
		"in a profile": func(t *testing.T, dir string) {
			write(t, dir, "docker-compose.yml", "services:\n  web:"+lockedWeb+"  x:"+lockedWeb+"    profiles: [later]\n    labels: [traefik.enable=true]\n")
		},
		"on a network": func(t *testing.T, dir string) {
			write(t, dir, "docker-compose.yml", "services:\n  web:"+lockedWeb+"networks:\n  default:\n    labels: [darse.managed=true]\n")
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			dir := folder(t, "site", "services:\n  web:"+lockedWeb, "")
			setup(t, dir)
			refused(t, dir, "label", "reserved")
		})
	}
	// The override darse renders pulls in no tenant file, whose labels
	// would then pass for darse's.
	t.Run("override extends tenant file", func(t *testing.T) {
		dir := folder(t, "site", "services:\n  web:"+lockedWeb, "")
		write(t, dir, "conf/base.yml", "services:\n  base:\n    labels: [traefik.enable=true]\n")
		write(t, dir, "docker-compose.override.yml", "services:\n  web:\n    extends: {file: conf/base.yml, service: base}\n")
		refused(t, dir, OverrideFile, `"extends"`)
	})
	t.Run("override includes tenant file", func(t *testing.T) {
		dir := folder(t, "site", "services:\n  web:"+lockedWeb, "")
		write(t, dir, "conf/inc.yml", "services:\n  x:"+lockedWeb+"    labels: [traefik.enable=true]\n")
		write(t, dir, "docker-compose.override.yml", "include: [conf/inc.yml]\n")
		refused(t, dir, OverrideFile, `"include"`)
	})
	t.Run("override", func(t *testing.T) {
		dir := folder(t, "site", "services:\n  web:"+lockedWeb+"    labels: [app=blog]\n", "")
		write(t, dir, "docker-compose.override.yml", "services:\n  web:\n    labels:\n      darse.site: site\n      traefik.enable: \"true\"\n")
		p, err := Load(context.Background(), dir, TenantPolicy)
		if err != nil {
			t.Fatal(err)
		}
		l := p.Services[0].Container.Labels
		if l["traefik.enable"] != "true" || l["app"] != "blog" {
			t.Fatalf("labels = %v", l)
		}
	})
}

// Every engine object of a tenant project carries darse.site, the
// compose labels kept beside it.
func TestTenantSiteLabel(t *testing.T) {
	dir := folder(t, "site", "services:\n  web:"+lockedWeb+"    volumes: [data:/d]\nvolumes:\n  data: {}\n", "")
	p, err := Load(context.Background(), dir, TenantPolicy)
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string]map[string]string{"container": p.Services[0].Container.Labels}
	for _, n := range p.Networks {
		sets["network "+n.Key] = n.Labels
	}
	for _, v := range p.Volumes {
		sets["volume "+v.Key] = v.Labels
	}
	if len(sets) != 3 {
		t.Fatalf("objects = %v", sets)
	}
	for what, l := range sets {
		if l["darse.site"] != "site" || l[LabelProject] != "site" || l[LabelVersion] != Version {
			t.Errorf("%s labels = %v", what, l)
		}
	}
	pp, err := Load(context.Background(), dir, PlatformPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pp.Services[0].Container.Labels["darse.site"]; ok {
		t.Error("a platform project carries darse.site")
	}
}

// The jail compose-go loads through takes every reference that is not a
// plain relative path, and lets through only absolute paths inside the
// folder: a backstop to the check of references.
func TestJail(t *testing.T) {
	dir := folder(t, "site", "services:\n  web:"+lockedWeb, "")
	c, err := newConfine(dir, "site")
	if err != nil {
		t.Fatal(err)
	}
	j := jail{c}
	for p, take := range map[string]bool{"conf/inc.yml": false, "../other/x.yml": true, "/etc/passwd": true, "~/x": true, "conf/../../x": true} {
		if j.Accept(p) != take {
			t.Errorf("Accept(%q) = %v", p, !take)
		}
	}
	for p, ok := range map[string]bool{filepath.Join(dir, "docker-compose.yml"): true, "/etc/passwd": false, "../other/x.yml": false, filepath.Join(dir, "..", "x"): false} {
		got, err := j.Load(context.Background(), p)
		if ok && (err != nil || got != p) {
			t.Errorf("Load(%q) = %q, %v", p, got, err)
		}
		if !ok && err == nil {
			t.Errorf("Load(%q) let a file outside the folder through", p)
		}
	}
}

// A site's own domain resolves to the front door from inside it: only
// darse's override maps it (no tenant may point a name at another
// site's container or a host service), and only to the front door.
func TestTenantExtraHosts(t *testing.T) {
	t.Run("in compose file", func(t *testing.T) {
		dir := folder(t, "site", "services:\n  web:"+lockedWeb+"    extra_hosts: [\"site.example.org:"+FrontGateway+"\"]\n", "")
		refused(t, dir, "extra_hosts is darse's", OverrideFile+" only")
	})
	t.Run("override to another address", func(t *testing.T) {
		dir := folder(t, "site", "services:\n  web:"+lockedWeb, "")
		write(t, dir, "docker-compose.override.yml", "services:\n  web:\n    extra_hosts: [\"bank.example.org:10.0.0.5\"]\n")
		refused(t, dir, "extra_hosts bank.example.org=10.0.0.5", "only resolve to the front door")
	})
	t.Run("override", func(t *testing.T) {
		dir := folder(t, "site", "services:\n  web:"+lockedWeb, "")
		write(t, dir, "docker-compose.override.yml", "services:\n  web:\n    extra_hosts: [\"site.example.org:"+FrontGateway+"\"]\n")
		p, err := Load(context.Background(), dir, TenantPolicy)
		if err != nil {
			t.Fatal(err)
		}
		if h := p.Services[0].Container.ExtraHosts; len(h) != 1 || h[0] != "site.example.org:"+FrontGateway {
			t.Fatalf("extra hosts = %v", h)
		}
	})
}
