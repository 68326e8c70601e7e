package images_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/images"
	"github.com/darse/darse/internal/testenv"
)

// TestBuildWithUpdatesAndUpdate builds a small Debian image of its own
// (needs root, the Debian mirrors, and an engine): its packages come from
// the release, updates and security suites, it is labelled with its
// package digest and build date, carries its package list, is tagged by
// content too; Update then finds it current and imports nothing.
func TestBuildWithUpdatesAndUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image from the Debian mirrors (minutes)")
	}
	testenv.NeedRoot(t)
	testenv.NeedEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	e, err := engine.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tag := fmt.Sprintf("darse-test/upgrade-%d:bookworm", os.Getpid())
	d, err := images.Parse("upgrade", []byte(`{"tag": "`+tag+`",
		"debootstrap": {"suite": "bookworm", "packages": ["libexpat1"]},
		"config": {"cmd": ["cat", "/usr/share/darse/packages"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var out testenv.Buffer
	b := &images.Builder{Engine: e, Output: &out}
	res, err := b.Ensure(ctx, d, false)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag, res.ContentTag).Run() })
	if !res.Built || res.Manifest.Digest == "" || res.ContentTag != images.ContentTag(tag, res.Manifest.Digest) {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(out.String(), "bookworm-security") || !strings.Contains(out.String(), "bookworm-updates") {
		t.Errorf("apt did not read the updates and security suites:\n%s", out.String())
	}

	labels, ok, err := e.ImageLabels(ctx, tag)
	if err != nil || !ok {
		t.Fatalf("labels: %v %v", ok, err)
	}
	if labels[images.LabelPackages] != res.Manifest.Digest || labels[images.LabelSuites] != "bookworm bookworm-updates bookworm-security" {
		t.Errorf("labels %v", labels)
	}
	if built, err := time.Parse(time.RFC3339, labels[images.LabelBuilt]); err != nil || time.Since(built) > time.Hour {
		t.Errorf("built label %q: %v", labels[images.LabelBuilt], err)
	}
	byContent, err := e.ImageInspect(ctx, res.ContentTag)
	if err != nil || byContent.ID != res.ID {
		t.Errorf("content tag %s: %+v %v, want image %s", res.ContentTag, byContent, err, res.ID)
	}
	// The list in the image is the one digested, and libexpat1 is in it.
	list, err := exec.Command("docker", "run", "--rm", tag).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(list, images.PackageList(res.Manifest.Packages)) || !bytes.Contains(list, []byte("\nlibexpat1 ")) {
		t.Errorf("package list in the image:\n%s", list)
	}

	// Nothing moved on in the suites since: Update imports nothing.
	again, err := b.Update(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if again.Built || again.Manifest.Digest != res.Manifest.Digest {
		t.Errorf("update of a current image: %+v", again)
	}
	if img, _ := e.ImageInspect(ctx, tag); img.ID != res.ID {
		t.Errorf("update replaced a current image: %s, was %s", img.ID, res.ID)
	}
}
