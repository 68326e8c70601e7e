package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Engine is the part of the Docker engine the builder uses.
type Engine interface {
	// ImageExists reports whether ref names an image in the engine.
	ImageExists(ctx context.Context, ref string) (bool, error)
	// ImageImport creates the image ref from a tar of a root filesystem,
	// applying `docker import --change` instructions, and returns its ID.
	ImageImport(ctx context.Context, ref string, changes []string, rootfs io.Reader) (string, error)
}

// DefaultMirror is the Debian mirror used when Builder.Mirror is empty.
const DefaultMirror = "http://deb.debian.org/debian"

// DefaultCacheDir keeps downloaded .debs between builds, so the second image
// and every rebuild fetch only what they have not seen.
const DefaultCacheDir = "/var/cache/darse/debootstrap"

// Builder builds images and imports them into an engine.
type Builder struct {
	Engine Engine
	Log    *slog.Logger
	// Mirror is the Debian mirror; DefaultMirror when empty.
	Mirror string
	// CacheDir is debootstrap's package cache; DefaultCacheDir when empty.
	CacheDir string
	// GoCacheDir keeps Go module builds; DefaultGoCacheDir when empty.
	GoCacheDir string
	// TempDir is where build trees are made (os.TempDir() when empty). It
	// must allow exec and device files: debootstrap chroots into the tree.
	TempDir string
	// Output, when set, receives the build tools' output as it happens;
	// otherwise only its tail is kept for the error message.
	Output io.Writer
	// Progress, when set, is called with each step of a build as it
	// begins (the Step constants), from the building goroutine or from
	// the one reading a build tool's output, never from two at once.
	Progress func(step string)
}

// Result says what Ensure did for one image.
type Result struct {
	Name, Tag string
	// Built is false when the tag was already present and not forced.
	Built bool
	ID    string
	Took  time.Duration
}

// Ensure builds d unless its tag is already in the engine; force rebuilds
// anyway (the old image keeps running containers and becomes untagged).
func (b *Builder) Ensure(ctx context.Context, d Definition, force bool) (Result, error) {
	res := Result{Name: d.Name, Tag: d.Tag}
	if !force {
		ok, err := b.Engine.ImageExists(ctx, d.Tag)
		if err != nil {
			return res, fmt.Errorf("image %q: %w", d.Name, err)
		}
		if ok {
			return res, nil
		}
	}
	start := time.Now()
	id, err := b.Build(ctx, d)
	if err != nil {
		return res, err
	}
	res.Built, res.ID, res.Took = true, id, time.Since(start)
	return res, nil
}

// Build builds d and imports it under its tag, whether or not it exists.
// The build tree is removed afterwards, on failure too.
func (b *Builder) Build(ctx context.Context, d Definition) (id string, err error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	log := b.logger().With("image", d.Name, "tag", d.Tag)
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("build image %q: needs root (debootstrap chroots and creates device files)", d.Name)
	}
	work, err := os.MkdirTemp(b.TempDir, "darse-image-"+d.Name+"-")
	if err != nil {
		return "", fmt.Errorf("build image %q: %w", d.Name, err)
	}
	defer func() {
		if cerr := removeTree(work); cerr != nil {
			log.Warn("build tree left behind", "dir", work, "err", cerr)
			err = errors.Join(err, fmt.Errorf("build image %q: clean up: %w", d.Name, cerr))
		}
	}()
	root := filepath.Join(work, "rootfs")

	start := time.Now()
	switch {
	case d.Debootstrap != nil:
		if err := b.debootstrap(ctx, d.Debootstrap, root); err != nil {
			return "", fmt.Errorf("build image %q: %w", d.Name, err)
		}
	case d.GoModule != nil:
		if err := b.buildGoModule(ctx, d.Name, d.GoModule, root); err != nil {
			return "", fmt.Errorf("build image %q: %w", d.Name, err)
		}
	}
	log.Info("tree built", "took", time.Since(start).Round(time.Second))

	if d.Overlay != nil {
		b.step(StepOverlay)
		if err := copyOverlay(d.Overlay, root); err != nil {
			return "", fmt.Errorf("build image %q: overlay: %w", d.Name, err)
		}
	}

	start = time.Now()
	b.step(StepImport)
	id, err = b.importTree(ctx, d, root)
	if err != nil {
		return "", fmt.Errorf("build image %q: import: %w", d.Name, err)
	}
	log.Info("imported", "id", id, "took", time.Since(start).Round(time.Second))
	return id, nil
}

// importTree streams a tar of root to the engine while it is being written.
func (b *Builder) importTree(ctx context.Context, d Definition, root string) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	tarred := make(chan error, 1)
	go func() {
		err := writeTar(ctx, pw, root)
		pw.CloseWithError(err)
		tarred <- err
	}()
	id, err := b.Engine.ImageImport(ctx, d.Tag, d.Config.Changes(), pr)
	// Unblock the writer if the engine stopped reading, then wait for it:
	// the tree must not be removed while it is being read.
	pr.CloseWithError(errors.New("import ended"))
	cancel()
	terr := <-tarred
	if err != nil {
		return "", err
	}
	if terr != nil {
		return "", fmt.Errorf("tar: %w", terr)
	}
	return id, nil
}

func (b *Builder) logger() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Log
}
