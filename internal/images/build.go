package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	// ImageTag gives the image source the further tag target.
	ImageTag(ctx context.Context, source, target string) error
	// ImageLabels returns the labels of the image ref, and whether the
	// engine has it.
	ImageLabels(ctx context.Context, ref string) (map[string]string, bool, error)
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
	// SecurityMirror serves SUITE-security; DefaultSecurityMirror when empty.
	SecurityMirror string
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
	// MaxAge, when set, makes Update rebuild an image built longer ago
	// than that even when its packages did not move (darse.yml's
	// updates.max_age: nothing runs on an old build for long).
	MaxAge time.Duration
}

// Result says what Ensure did for one image.
type Result struct {
	Name, Tag string
	// Built is false when the tag was already present and not forced,
	// or, for Update, when the image was current.
	Built bool
	ID    string
	Took  time.Duration
	// Manifest is what the tree held; zero when nothing was built.
	Manifest Manifest
	// ContentTag is the tag from the package digest, when there is one.
	ContentTag string
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
	return b.build(ctx, d, nil)
}

// Update builds d's tree and imports it only if it differs from the image
// the engine has under d's tag: other package versions (the suites moved
// on) or another definition. An image without darse's labels (built before
// they existed, or pulled) is replaced.
func (b *Builder) Update(ctx context.Context, d Definition) (Result, error) {
	labels, ok, err := b.Engine.ImageLabels(ctx, d.Tag)
	if err != nil {
		return Result{Name: d.Name, Tag: d.Tag}, fmt.Errorf("image %q: %w", d.Name, err)
	}
	if !ok || labels == nil {
		labels = map[string]string{}
	}
	if TooOld(labels, b.MaxAge, time.Now()) {
		labels = nil // built again whatever its packages
	}
	return b.build(ctx, d, labels)
}

// TooOld reports whether an image with these labels was built more than
// maxAge before now (never when maxAge is 0; always when the build time
// is missing or unreadable).
func TooOld(labels map[string]string, maxAge time.Duration, now time.Time) bool {
	if maxAge <= 0 {
		return false
	}
	built, err := time.Parse(time.RFC3339, labels[LabelBuilt])
	return err != nil || now.Sub(built) > maxAge
}

// Build builds d and imports it under its tag, whether or not it exists.
// The build tree is removed afterwards, on failure too.
func (b *Builder) Build(ctx context.Context, d Definition) (string, error) {
	res, err := b.build(ctx, d, nil)
	return res.ID, err
}

// build builds d's tree and imports it, unless current (the labels of the
// image under d's tag) says that image already holds the same.
func (b *Builder) build(ctx context.Context, d Definition, current map[string]string) (res Result, err error) {
	res = Result{Name: d.Name, Tag: d.Tag}
	begin := time.Now()
	if err := d.Validate(); err != nil {
		return res, err
	}
	log := b.logger().With("image", d.Name, "tag", d.Tag)
	if os.Geteuid() != 0 {
		return res, fmt.Errorf("build image %q: needs root (debootstrap chroots and creates device files)", d.Name)
	}
	work, err := os.MkdirTemp(b.TempDir, "darse-image-"+d.Name+"-")
	if err != nil {
		return res, fmt.Errorf("build image %q: %w", d.Name, err)
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
			return res, fmt.Errorf("build image %q: %w", d.Name, err)
		}
	case d.GoModule != nil:
		if err := b.buildGoModule(ctx, d.Name, d.GoModule, root); err != nil {
			return res, fmt.Errorf("build image %q: %w", d.Name, err)
		}
	}
	log.Info("tree built", "took", time.Since(start).Round(time.Second))

	if d.Overlay != nil {
		b.step(StepOverlay)
		if err := copyOverlay(d.Overlay, root); err != nil {
			return res, fmt.Errorf("build image %q: overlay: %w", d.Name, err)
		}
	}
	m, err := record(d, root, time.Now())
	if err != nil {
		return res, fmt.Errorf("build image %q: %w", d.Name, err)
	}
	res.Manifest = m
	if m.Digest != "" {
		res.ContentTag = ContentTag(d.Tag, m.Digest)
	}
	if current != nil && m.Current(current) {
		log.Info("image is current", "packages", m.Digest)
		res.Took = time.Since(begin)
		return res, nil
	}

	start = time.Now()
	b.step(StepImport)
	id, err := b.importTree(ctx, d, m, root)
	if err != nil {
		return res, fmt.Errorf("build image %q: import: %w", d.Name, err)
	}
	if res.ContentTag != "" {
		if err := b.Engine.ImageTag(ctx, id, res.ContentTag); err != nil {
			return res, fmt.Errorf("build image %q: %w", d.Name, err)
		}
	}
	log.Info("imported", "id", id, "packages", m.Digest, "took", time.Since(start).Round(time.Second))
	res.Built, res.ID, res.Took = true, id, time.Since(begin)
	return res, nil
}

// record reads what the tree holds into a manifest and, for a Debian
// tree, writes the package list into it (PackagesFile).
func record(d Definition, root string, now time.Time) (Manifest, error) {
	def, err := DefinitionDigest(d)
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{Definition: def, Built: now.UTC().Truncate(time.Second)}
	if d.Debootstrap != nil {
		m.Suites = d.Debootstrap.Suites()
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return m, err
	}
	defer r.Close()
	pkgs, err := readPackages(r)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil // not a Debian tree
	}
	if err != nil {
		return m, fmt.Errorf("package list: %w", err)
	}
	m.Packages, m.Digest = pkgs, PackagesDigest(pkgs)
	if err := r.MkdirAll(filepath.Dir(PackagesFile), 0o755); err != nil {
		return m, fmt.Errorf("package list: %w", err)
	}
	if err := r.WriteFile(PackagesFile, PackageList(pkgs), 0o644); err != nil {
		return m, fmt.Errorf("package list: %w", err)
	}
	return m, nil
}

// importTree streams a tar of root to the engine while it is being written.
func (b *Builder) importTree(ctx context.Context, d Definition, m Manifest, root string) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	tarred := make(chan error, 1)
	go func() {
		err := writeTar(ctx, pw, root)
		pw.CloseWithError(err)
		tarred <- err
	}()
	changes := append(d.Config.Changes(), Config{Labels: m.Labels()}.Changes()...)
	id, err := b.Engine.ImageImport(ctx, d.Tag, changes, pr)
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
