package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// darse prune against the real engine: an image nothing names goes; the
// image a stopped site needs stays, and the site comes up again after.
func TestPruneKeepsAStoppedSitesImage(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm")
	e := newEnv(t)
	name := siteName("prn")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "static")
	e.ok("site", "stop", name)
	unused := fmt.Sprintf("darse/unused-%d:old", os.Getpid())
	// An image of its own (an empty tree), which nothing names.
	imp := exec.Command("docker", "import", "-", unused)
	imp.Stdin = strings.NewReader(strings.Repeat("\x00", 1024)) // an empty tar archive
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", unused).Run() })

	var dry struct {
		DryRun bool `json:"dry_run"`
		Images []struct {
			Tags []string `json:"tags"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(e.ok("prune", "--dry-run", "--json")), &dry); err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || !strings.Contains(fmt.Sprint(dry.Images), unused) || strings.Contains(fmt.Sprint(dry.Images), "darse/nginx:bookworm") {
		t.Fatalf("dry run would remove %+v: want %s and not darse/nginx:bookworm", dry.Images, unused)
	}
	if err := exec.Command("docker", "image", "inspect", unused).Run(); err != nil {
		t.Fatal("the dry run removed an image")
	}
	out := e.ok("prune")
	if !strings.Contains(out, unused) {
		t.Errorf("prune does not say it removed %s:\n%s", unused, out)
	}
	if err := exec.Command("docker", "image", "inspect", unused).Run(); err == nil {
		t.Errorf("%s still there after prune", unused)
	}
	if err := exec.Command("docker", "image", "inspect", "darse/nginx:bookworm").Run(); err != nil {
		t.Fatal("prune removed the stopped site's image")
	}
	e.ok("site", "up", name)
	get(t, name+"_web_1", "/", 200)
}
