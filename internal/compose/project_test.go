package compose

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const lockedWeb = `
    image: darse/nginx:bookworm
    cap_drop: [ALL]
    security_opt: [no-new-privileges:true]
    cpus: ${CPUS:-0.5}
    mem_limit: 64m
    pids_limit: 64
`

// folder writes a project folder and returns its path.
func folder(t *testing.T, name, compose, env string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadLabelsAndNames(t *testing.T) {
	dir := folder(t, "blog", "services:\n  web:"+lockedWeb+"    volumes: [./data:/srv/data:ro]\n", "")
	p, err := Load(context.Background(), dir, TenantPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "blog" || len(p.Services) != 1 || p.ContainerName("web") != "blog_web_1" {
		t.Fatalf("project = %+v", p)
	}
	c := p.Services[0].Container
	for k, want := range map[string]string{
		LabelProject: "blog", LabelService: "web", LabelOneOff: "False", LabelNumber: "1",
		LabelConfigHash: p.Services[0].Hash, LabelWorkingDir: dir,
		LabelConfigFiles: filepath.Join(dir, "docker-compose.yml"),
	} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	if len(c.Mounts) != 1 || c.Mounts[0].Source != filepath.Join(dir, "data") || !c.Mounts[0].ReadOnly {
		t.Errorf("mounts = %+v", c.Mounts)
	}
	if c.NanoCPUs != 5e8 || c.Memory != 64<<20 || c.PidsLimit != 64 {
		t.Errorf("limits = %d %d %d", c.NanoCPUs, c.Memory, c.PidsLimit)
	}
	if len(p.Networks) != 1 || p.Networks[0].Name != "blog_default" || c.Networks[0].Network != "blog_default" {
		t.Errorf("networks = %+v / %+v", p.Networks, c.Networks)
	}
}

// The platform's projects are named in their .env (a site's cannot be:
// TestTenantProjectName).
func TestPlatformProjectNameFromEnv(t *testing.T) {
	dir := folder(t, "folder", "services:\n  web:"+lockedWeb, "COMPOSE_PROJECT_NAME=blog\n")
	p, err := Load(context.Background(), dir, PlatformPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "blog" {
		t.Fatalf("name = %q", p.Name)
	}
}

// An .env value feeds only the services that use it: only their hash moves.
func TestEnvChangeMovesOnlyItsServiceHash(t *testing.T) {
	compose := "services:\n  web:" + lockedWeb + "  php:" + strings.ReplaceAll(lockedWeb, "${CPUS:-0.5}", "0.5") +
		"    environment:\n      LIMIT: ${LIMIT}\n"
	a, err := Load(context.Background(), folder(t, "a", compose, "LIMIT=128M\n"), TenantPolicy)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(context.Background(), folder(t, "a", compose, "LIMIT=256M\n"), TenantPolicy)
	if err != nil {
		t.Fatal(err)
	}
	hash := func(p *Project, svc string) string {
		for _, s := range p.Services {
			if s.Name == svc {
				return s.Hash
			}
		}
		t.Fatalf("no service %s", svc)
		return ""
	}
	if hash(a, "web") != hash(b, "web") {
		t.Error("web hash changed though LIMIT does not reach it")
	}
	if hash(a, "php") == hash(b, "php") {
		t.Error("php hash did not change with LIMIT")
	}
}

func TestRefused(t *testing.T) {
	cases := map[string]string{
		"build":                      "services:\n  web:" + lockedWeb + "    build: .\n",
		"privileged":                 "services:\n  web:" + lockedWeb + "    privileged: true\n",
		"network_mode":               "services:\n  web:" + lockedWeb + "    network_mode: host\n",
		"devices":                    "services:\n  web:" + lockedWeb + "    devices: [/dev/sda:/dev/sda]\n",
		"pid":                        "services:\n  web:" + lockedWeb + "    pid: host\n",
		"secrets":                    "services:\n  web:" + lockedWeb + "secrets:\n  s:\n    file: ./x\n",
		"volumes.bind.propagation":   "services:\n  web:" + lockedWeb + "    volumes:\n      - type: bind\n        source: ./data\n        target: /d\n        bind: {propagation: rshared}\n",
		"cap_drop must include ALL":  "services:\n  web:\n    image: x\n    security_opt: [no-new-privileges:true]\n    cpus: 1\n    mem_limit: 1g\n    pids_limit: 9\n",
		"no-new-privileges":          "services:\n  web:\n    image: x\n    cap_drop: [ALL]\n    cpus: 1\n    mem_limit: 1g\n    pids_limit: 9\n",
		"pids_limit must all be set": "services:\n  web:\n    image: x\n    cap_drop: [ALL]\n    security_opt: [no-new-privileges:true]\n",
		"cap_add SYS_ADMIN":          "services:\n  web:" + lockedWeb + "    cap_add: [SYS_ADMIN]\n",
		"inside the project folder":  "services:\n  web:" + lockedWeb + "    volumes: [/var/run/docker.sock:/var/run/docker.sock]\n",
		"ports are not allowed":      "services:\n  web:" + lockedWeb + "    ports: ['80:8080']\n",
		"neither an image":           "services:\n  web:\n    cap_drop: [ALL]\n    security_opt: [no-new-privileges:true]\n    cpus: 1\n    mem_limit: 1g\n    pids_limit: 9\n    command: x\n",
	}
	for want, compose := range cases {
		t.Run(want, func(t *testing.T) {
			_, err := Load(context.Background(), folder(t, "x", compose, ""), TenantPolicy)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Load = %v, want an error mentioning %q", err, want)
			}
		})
	}
}

func TestSymlinkOutOfFolderRefused(t *testing.T) {
	dir := folder(t, "x", "services:\n  web:"+lockedWeb+"    volumes: [./data/escape:/srv]\n", "")
	if err := os.Symlink("/etc", filepath.Join(dir, "data", "escape")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(context.Background(), dir, TenantPolicy); err == nil || !strings.Contains(err.Error(), "inside the project folder") {
		t.Fatalf("Load = %v, want the symlinked bind refused", err)
	}
}

func TestPlatformPolicyAllowsHost(t *testing.T) {
	dir := folder(t, "front", "services:\n  traefik:\n    image: traefik:v3.6\n    volumes: [/var/run/docker.sock:/var/run/docker.sock:ro]\n    ports: ['80:80']\n", "")
	if _, err := Load(context.Background(), dir, PlatformPolicy); err != nil {
		t.Fatal(err)
	}
}
