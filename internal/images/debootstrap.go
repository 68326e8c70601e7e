package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"
)

// debootstrap builds a minbase tree with the definition's packages in root,
// then trims what a container never reads.
func (b *Builder) debootstrap(ctx context.Context, d *Debootstrap, root string) error {
	cache := b.CacheDir
	if cache == "" {
		cache = DefaultCacheDir
	}
	mirror := b.Mirror
	if mirror == "" {
		mirror = DefaultMirror
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return fmt.Errorf("package cache: %w", err)
	}
	cmd := exec.CommandContext(ctx, "debootstrap", debootstrapArgs(d, cache, root, mirror)...)
	// SIGTERM, not SIGKILL, so debootstrap's exit trap unmounts what it
	// mounted in the tree (proc, sys, bound /dev nodes) before we remove it.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	b.step(StepResolve)
	var watch []io.Writer
	if b.Progress != nil {
		watch = append(watch, &stepWriter{parse: debootstrapStep, report: b.Progress, last: StepResolve})
	}
	if err := b.runCmd(cmd, watch...); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("debootstrap: %w", ctx.Err())
		}
		return err
	}
	if err := b.upgrade(ctx, d, root, mirror); err != nil {
		return err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	b.step(StepTrim)
	for _, p := range d.Remove {
		if err := r.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	if err := trimDebian(r); err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	return nil
}

// DefaultSecurityMirror serves the security suite (SUITE-security), which
// the main mirror does not carry.
const DefaultSecurityMirror = "http://deb.debian.org/debian-security"

// Suites are the suites an image's packages come from: the release, its
// stable updates and its security updates.
func (d *Debootstrap) Suites() []string {
	return []string{d.Suite, d.Suite + "-updates", d.Suite + "-security"}
}

// sourcesList is the tree's apt sources: debootstrap installs from the
// release alone; these add the updates and security suites, and stay in
// the image to say where its packages came from.
func sourcesList(d *Debootstrap, mirror, security string) []byte {
	s := d.Suites()
	return []byte(fmt.Sprintf("deb %s %s main\ndeb %s %s main\ndeb %s %s main\n",
		mirror, s[0], mirror, s[1], security, s[2]))
}

// upgradeCommands are run in the tree (chroot) to bring every package,
// those debootstrap installed included, to the newest version the three
// suites hold. dist-upgrade, not upgrade: a security fix that needs a new
// dependency is installed, not held back.
func upgradeCommands() [][]string {
	apt := []string{"apt-get", "-q", "-y", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}
	return [][]string{
		append(slices.Clone(apt), "update"),
		append(slices.Clone(apt), "--no-install-recommends", "dist-upgrade"),
	}
}

// upgrade installs the updates and security suites over the tree.
func (b *Builder) upgrade(ctx context.Context, d *Debootstrap, root, mirror string) error {
	security := b.SecurityMirror
	if security == "" {
		security = DefaultSecurityMirror
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	err = r.WriteFile("etc/apt/sources.list", sourcesList(d, mirror, security), 0o644)
	r.Close()
	if err != nil {
		return fmt.Errorf("apt sources: %w", err)
	}
	b.step(StepUpgrade)
	for _, args := range upgradeCommands() {
		cmd := exec.CommandContext(ctx, "chroot", append([]string{root}, args...)...)
		cmd.Env = []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		if err := b.runCmd(cmd); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("upgrade: %w", ctx.Err())
			}
			return fmt.Errorf("upgrade from %s: %w", strings.Join(d.Suites()[1:], ", "), err)
		}
	}
	return nil
}

func debootstrapArgs(d *Debootstrap, cache, root, mirror string) []string {
	return []string{
		"--variant=minbase",
		"--include=" + strings.Join(d.Packages, ","),
		"--cache-dir=" + cache,
		d.Suite, root, mirror,
	}
}

// trimDebian removes what no container reads: apt's caches and indexes,
// documentation (keeping each package's copyright file, which the licences
// ask us to ship), man and info pages, translations, install logs, and the
// files that would make every container look like the build host or like
// each other (resolv.conf and hostname copied from the host, a fixed
// machine-id). Those stay, empty, as mount points for the engine.
//
// All paths go through r, so a symlink in the tree can never lead a removal
// onto the host.
func trimDebian(r *os.Root) error {
	emptyDirs := []string{
		"var/cache/apt",
		"var/lib/apt/lists",
		"var/log",
		"usr/share/man",
		"usr/share/info",
		"usr/share/lintian",
	}
	for _, d := range emptyDirs {
		if err := emptyDir(r, d, nil); err != nil {
			return err
		}
	}
	if err := emptyDir(r, "usr/share/locale", []string{"locale.alias"}); err != nil {
		return err
	}
	for _, f := range []string{"etc/resolv.conf", "etc/hostname", "etc/machine-id"} {
		if err := truncate(r, f); err != nil {
			return err
		}
	}
	for _, glob := range []string{"var/cache/debconf/*-old", "var/lib/dpkg/*-old"} {
		old, _ := fs.Glob(r.FS(), glob) // the patterns are constant and valid
		for _, f := range old {
			if err := r.Remove(f); err != nil {
				return err
			}
		}
	}
	return trimDocs(r, "usr/share/doc")
}

func truncate(r *os.Root, name string) error {
	if _, err := r.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	f, err := r.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// emptyDir removes everything inside dir except the names kept, but keeps
// dir itself: packages own it.
func emptyDir(r *os.Root, dir string, keep []string) error {
	entries, err := fs.ReadDir(r.FS(), dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if slices.Contains(keep, e.Name()) {
			continue
		}
		if err := r.RemoveAll(path.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// trimDocs keeps only usr/share/doc/<package>/copyright. Symlinks to
// another package's doc folder are kept: they are tiny and dpkg made them.
func trimDocs(r *os.Root, doc string) error {
	pkgs, err := fs.ReadDir(r.FS(), doc)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, p := range pkgs {
		name := path.Join(doc, p.Name())
		switch {
		case p.Type()&fs.ModeSymlink != 0:
		case p.IsDir():
			if err := emptyDir(r, name, []string{"copyright"}); err != nil {
				return err
			}
		default:
			if err := r.Remove(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.buf)) }
