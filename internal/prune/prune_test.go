package prune

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// fakeEngine holds images and containers; RemoveImage records what went.
type fakeEngine struct {
	images          []Image
	ctrIDs, ctrRefs []string
	removed         []string
}

func (f *fakeEngine) Images(context.Context) ([]Image, error) { return f.images, nil }
func (f *fakeEngine) ContainerImages(context.Context) ([]string, []string, error) {
	return f.ctrIDs, f.ctrRefs, nil
}
func (f *fakeEngine) RemoveImage(_ context.Context, img Image) error {
	f.removed = append(f.removed, img.ID)
	return nil
}

type fakeOps struct {
	before time.Time
	dryRun bool
}

func (f *fakeOps) PruneOps(_ context.Context, before time.Time, dryRun bool) (int64, error) {
	f.before, f.dryRun = before, dryRun
	return 3, nil
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// site writes a stopped site's folder whose web service runs image.
func site(t *testing.T, srv, name, image string) {
	write(t, filepath.Join(srv, "users", name, "docker-compose.yml"), `services:
  web:
    image: `+image+`
    cap_drop: [ALL]
    security_opt: [no-new-privileges:true]
    cpus: 0.5
    mem_limit: 64m
    pids_limit: 64
`)
}

func ids(imgs []ImageReport) []string {
	var out []string
	for _, i := range imgs {
		out = append(out, i.ID)
	}
	return out
}

func TestCandidate(t *testing.T) {
	built := map[string]string{BuiltLabel: "abc"}
	for _, c := range []struct {
		name string
		img  Image
		want bool
	}{
		{"darse tag", Image{ID: "1", Tags: []string{"darse/php:bookworm"}}, true},
		{"pinned traefik", Image{ID: "2", Tags: []string{"traefik:v3.6"}}, true},
		{"another traefik", Image{ID: "3", Tags: []string{"traefik:v2.11"}}, false},
		{"foreign", Image{ID: "4", Tags: []string{"postgres:16"}}, false},
		{"foreign with darse label", Image{ID: "5", Tags: []string{"me/thing:1"}, Labels: built}, false},
		{"darse and foreign tags", Image{ID: "6", Tags: []string{"darse/php:x", "myphp:1"}}, false},
		{"untagged darse build", Image{ID: "7", Labels: built}, true},
		{"untagged foreign", Image{ID: "8"}, false},
		{"look-alike repository", Image{ID: "9", Tags: []string{"darsex/php:1"}}, false},
	} {
		if got := Candidate(c.img, "traefik:v3.6"); got != c.want {
			t.Errorf("%s: Candidate = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestRunImages(t *testing.T) {
	srv := t.TempDir()
	site(t, srv, "stopped", "darse/nginx:bookworm")
	write(t, filepath.Join(srv, ".env"), "DARSE_IMAGE=darse/darse:cafe\n")
	// A template no site uses yet: its image stays for the next creation.
	write(t, filepath.Join(srv, "templates", "pg", "docker-compose.yml"), "services:\n  db:\n    image: darse/postgres:15-bookworm\n    command: [\"${X:?}\"]\n")
	e := &fakeEngine{
		images: []Image{
			{ID: "sha256:nginx", Tags: []string{"darse/nginx:bookworm"}, Size: 100},
			{ID: "sha256:php", Tags: []string{"darse/php:bookworm"}, Size: 200},
			{ID: "sha256:old", Labels: map[string]string{BuiltLabel: "x"}, Size: 50},
			{ID: "sha256:self", Tags: []string{"darse/darse:cafe"}, Size: 10},
			{ID: "sha256:oldself", Tags: []string{"darse/darse:beef"}, Size: 10},
			{ID: "sha256:ctr", Tags: []string{"darse/mariadb:bookworm"}, Size: 300},
			{ID: "sha256:pg", Tags: []string{"postgres:16"}, Size: 400},
			{ID: "sha256:tmpl", Tags: []string{"darse/postgres:15-bookworm"}, Size: 500},
		},
		// An exited container of some other project still runs this one.
		ctrIDs: []string{"sha256:ctr"}, ctrRefs: []string{"darse/mariadb:bookworm"},
	}
	ops := &fakeOps{}
	now := time.Now()
	rep, err := Run(context.Background(), e, ops, Options{Srv: srv, ArchivesAge: 90 * 24 * time.Hour, OperationsAge: 180 * 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sha256:php", "sha256:old", "sha256:oldself"}
	if !slices.Equal(ids(rep.Images), want) || !slices.Equal(e.removed, want) {
		t.Fatalf("removed %v (reported %v), want %v: the stopped site's, the template's, the container's, the .env's and the foreign image stay", e.removed, ids(rep.Images), want)
	}
	if rep.BytesFreed != 260 || rep.Operations != 3 || ops.dryRun || !ops.before.Equal(now.Add(-180*24*time.Hour)) {
		t.Fatalf("report %+v, ops %+v", rep, ops)
	}

	// A dry run removes nothing and reports the same.
	e.removed = nil
	rep, err = Run(context.Background(), e, ops, Options{Srv: srv, DryRun: true, Now: now})
	if err != nil || len(e.removed) != 0 || !slices.Equal(ids(rep.Images), want) || !ops.dryRun {
		t.Fatalf("dry run: removed %v, report %+v, %v", e.removed, rep, err)
	}
}

func TestUnreadableSiteKeepsEveryImage(t *testing.T) {
	srv := t.TempDir()
	site(t, srv, "ok", "darse/nginx:bookworm")
	// A member's edit the tenant policy refuses: prune cannot know what it needs.
	write(t, filepath.Join(srv, "users", "broken", "docker-compose.yml"), "services:\n  web:\n    image: darse/php:bookworm\n    privileged: true\n")
	e := &fakeEngine{images: []Image{{ID: "sha256:php", Tags: []string{"darse/php:bookworm"}, Size: 200}}}
	rep, err := Run(context.Background(), e, &fakeOps{}, Options{Srv: srv, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.removed) != 0 || len(rep.Images) != 0 || len(rep.KeptImages) != 1 {
		t.Fatalf("removed %v, report %+v; want nothing removed and the broken site named", e.removed, rep)
	}
	t.Log(rep.KeptImages)
}

func TestRunArchives(t *testing.T) {
	srv := t.TempDir()
	dir := filepath.Join(srv, "archives")
	now := time.Now()
	for name, age := range map[string]time.Duration{"old-20250101T000000Z.tar.gz": 100, "new-20260101T000000Z.tar.gz": 10, "old.tmp": 100} {
		p := filepath.Join(dir, name)
		write(t, p, "12345")
		mt := now.Add(-age * 24 * time.Hour)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Run(context.Background(), &fakeEngine{}, &fakeOps{}, Options{Srv: srv, ArchivesAge: 90 * 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Archives) != 1 || rep.Archives[0].Name != "old-20250101T000000Z.tar.gz" || rep.BytesFreed != 5 {
		t.Fatalf("report %+v", rep)
	}
	for name, want := range map[string]bool{"old-20250101T000000Z.tar.gz": false, "new-20260101T000000Z.tar.gz": true, "old.tmp": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s: exists = %v, want %v", name, err == nil, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{"darse/x": "darse/x:latest", "darse/x:1": "darse/x:1",
		"localhost:5000/x": "localhost:5000/x:latest", "sha256:ab": "sha256:ab", "x@sha256:ab": "x@sha256:ab"} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}
