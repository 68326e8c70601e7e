package images

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// Labels darse puts on the images it builds, so that `darse images ls`
// and `darse images update` can tell what an image holds without running it.
const (
	// LabelPackages is the digest of the installed Debian packages
	// (PackagesDigest): two images with equal digests hold the same
	// package versions.
	LabelPackages = "darse.image.packages"
	// LabelDefinition is the digest of the image's definition (image.json
	// and the overlay): a changed definition is rebuilt too.
	LabelDefinition = "darse.image.definition"
	// LabelBuilt is when the image was built (RFC 3339, UTC).
	LabelBuilt = "darse.image.built"
	// LabelSuites names the Debian suites the packages came from.
	LabelSuites = "darse.image.suites"
)

// PackagesFile is where the image's package list is kept, one
// "name version architecture" line a package, sorted: what LabelPackages
// is the digest of. It can be read without starting the image
// (`docker cp`), and from inside it.
const PackagesFile = "usr/share/darse/packages"

// Package is one installed Debian package.
type Package struct {
	Name, Version, Arch string
}

// dpkgStatus is dpkg's database of installed packages inside a tree.
const dpkgStatus = "var/lib/dpkg/status"

// readPackages lists the packages dpkg has installed in the tree, as
// `dpkg-query -W` would, sorted by name then architecture. It reads the
// database itself (no chroot): the same tree always gives the same list.
func readPackages(r *os.Root) ([]Package, error) {
	f, err := r.Open(dpkgStatus)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseStatus(f)
}

// parseStatus reads a dpkg status file: stanzas separated by blank lines;
// only those whose Status ends in "installed" count.
func parseStatus(rd io.Reader) ([]Package, error) {
	var out []Package
	var cur Package
	installed := false
	flush := func() {
		if installed && cur.Name != "" {
			out = append(out, cur)
		}
		cur, installed = Package{}, false
	}
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			cur.Name = v
		case "Version":
			cur.Version = v
		case "Architecture":
			cur.Arch = v
		case "Status":
			installed = strings.HasSuffix(v, " installed")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", dpkgStatus, err)
	}
	flush()
	slices.SortFunc(out, func(a, b Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Arch, b.Arch)
	})
	return out, nil
}

// PackageList renders packages as PackagesFile holds them.
func PackageList(pkgs []Package) []byte {
	var b bytes.Buffer
	for _, p := range pkgs {
		fmt.Fprintf(&b, "%s %s %s\n", p.Name, p.Version, p.Arch)
	}
	return b.Bytes()
}

// PackagesDigest is the digest of a package set: "sha256:" and the hex
// SHA-256 of its PackageList.
func PackagesDigest(pkgs []Package) string {
	sum := sha256.Sum256(PackageList(pkgs))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ContentTag is the tag an image also gets from its package digest:
// the stable tag with the digest's first 12 hex digits appended
// ("darse/nginx:bookworm" → "darse/nginx:bookworm-3f2a9c1d0e4b"), so that
// each package set stays addressable after the stable tag moves on.
func ContentTag(stable, digest string) string {
	hexd := strings.TrimPrefix(digest, "sha256:")
	if len(hexd) > 12 {
		hexd = hexd[:12]
	}
	return stable + "-" + hexd
}

// DefinitionDigest is the digest of what a definition builds from: its
// build kind, runtime configuration and overlay files (names, modes as
// installed, contents), so that an edited image.json or overlay is seen
// as a change even when the packages are the same.
func DefinitionDigest(d Definition) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "tag %s\n", d.Tag)
	if b := d.Debootstrap; b != nil {
		fmt.Fprintf(h, "debootstrap %s %q %q\n", b.Suite, b.Packages, b.Remove)
	}
	if g := d.GoModule; g != nil {
		fmt.Fprintf(h, "gomodule %+v\n", *g)
	}
	for _, c := range d.Config.Changes() {
		fmt.Fprintf(h, "change %s\n", c)
	}
	if d.Overlay != nil {
		err := fs.WalkDir(d.Overlay, ".", func(name string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			data, err := fs.ReadFile(d.Overlay, name)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			fmt.Fprintf(h, "file %s %o %x\n", name, overlayMode(data), sum)
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("image %q: overlay: %w", d.Name, err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Manifest is what a built tree holds, recorded on the image as labels.
type Manifest struct {
	Packages   []Package // empty for an image without dpkg (a Go binary)
	Digest     string    // PackagesDigest(Packages), empty without packages
	Definition string    // DefinitionDigest
	Suites     []string
	Built      time.Time
}

// Labels are the manifest as image labels.
func (m Manifest) Labels() map[string]string {
	l := map[string]string{
		LabelDefinition: m.Definition,
		LabelBuilt:      m.Built.UTC().Format(time.RFC3339),
	}
	if m.Digest != "" {
		l[LabelPackages] = m.Digest
	}
	if len(m.Suites) > 0 {
		l[LabelSuites] = strings.Join(m.Suites, " ")
	}
	return l
}

// Current reports whether an image carrying labels was built from the same
// definition and holds the same packages as m: rebuilding it would give
// the same image.
func (m Manifest) Current(labels map[string]string) bool {
	return labels[LabelDefinition] == m.Definition && labels[LabelPackages] == m.Digest
}
