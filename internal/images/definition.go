// Package images builds the platform's own container images from their
// definitions under images/ in the repository: no registry is needed, every
// image is assembled from Debian packages and imported into the engine.
//
// Each image is a folder images/<name>/ holding:
//
//	image.json   what to build and how the image runs (see Definition)
//	rootfs/      optional overlay copied over the built tree
//
// Overlay files are installed owned by root, mode 0644 (0755 for folders
// and for files starting with "#!"): go:embed keeps no modes, so the rule
// is fixed here rather than carried by the files.
package images

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// MetadataFile is the name of an image's definition inside its folder.
const MetadataFile = "image.json"

// OverlayDir is the optional folder copied over the built tree.
const OverlayDir = "rootfs"

// Definition is one image as described by images/<name>/image.json.
//
// Exactly one build kind is set; Debootstrap is the only one today. A later
// kind (say, a Go binary built from the module proxy for Traefik) is a new
// field beside it, validated to be alone, with its own build step.
type Definition struct {
	// Name is the image's folder name; it is not in the file.
	Name string `json:"-"`
	// Tag is the full reference the image is imported as, e.g.
	// "darse/nginx:bookworm". Production installs may pull upstream images
	// under the same tag instead.
	Tag         string `json:"tag"`
	Description string `json:"description,omitempty"`

	Debootstrap *Debootstrap `json:"debootstrap,omitempty"`
	GoModule    *GoModule    `json:"gomodule,omitempty"`

	// Config becomes the image's runtime configuration through
	// `docker import --change` instructions.
	Config Config `json:"config"`

	// Overlay is the rootfs/ folder, or nil when the image has none.
	Overlay fs.FS `json:"-"`
}

// Debootstrap builds a Debian tree with
// `debootstrap --variant=minbase --include=PACKAGES SUITE DIR MIRROR`.
type Debootstrap struct {
	Suite    string   `json:"suite"`
	Packages []string `json:"packages"`
	// Remove lists paths (relative to the tree's root) deleted after the
	// packages are installed and before the overlay is copied, e.g. a
	// package's default site that the image does not want.
	Remove []string `json:"remove,omitempty"`
}

// Config is what `docker import -c` can set on engine 20.10 (which refuses
// STOPSIGNAL there: set stop_signal in compose instead). Env entries are
// "KEY=value"; Expose entries are "PORT" or "PORT/tcp|udp".
type Config struct {
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Env        []string          `json:"env,omitempty"`
	Expose     []string          `json:"expose,omitempty"`
	User       string            `json:"user,omitempty"`
	Workdir    string            `json:"workdir,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

var (
	nameRe    = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	tagRe     = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	suiteRe   = regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)
	packageRe = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	envKeyRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	exposeRe  = regexp.MustCompile(`^([0-9]{1,5})(/(tcp|udp))?$`)
	labelRe   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	userRe    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)
)

// Parse reads one image.json. Unknown fields are errors, so a typo does not
// silently build a different image.
func Parse(name string, data []byte) (Definition, error) {
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Definition{}, fmt.Errorf("image %q: %s: %w", name, MetadataFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Definition{}, fmt.Errorf("image %q: %s: trailing data after the object", name, MetadataFile)
	}
	d.Name = name
	if err := d.Validate(); err != nil {
		return Definition{}, err
	}
	return d, nil
}

// Validate reports every problem found, joined.
func (d Definition) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if !nameRe.MatchString(d.Name) {
		bad("name %q: want lowercase letters, digits and single dashes", d.Name)
	}
	if !tagRe.MatchString(d.Tag) {
		bad("tag %q: want repository:tag, lowercase repository, explicit tag", d.Tag)
	}

	kinds := 0
	if b := d.Debootstrap; b != nil {
		kinds++
		if !suiteRe.MatchString(b.Suite) {
			bad("debootstrap.suite %q: want a Debian suite name such as bookworm", b.Suite)
		}
		if len(b.Packages) == 0 {
			bad("debootstrap.packages: empty; list the packages the image is for")
		}
		for _, p := range b.Packages {
			if !packageRe.MatchString(p) {
				bad("debootstrap.packages: %q is not a Debian package name", p)
			}
		}
		for _, r := range b.Remove {
			if err := checkRelPath(r); err != nil {
				bad("debootstrap.remove: %w", err)
			}
		}
	}
	if g := d.GoModule; g != nil {
		kinds++
		g.validate(bad)
	}
	if kinds != 1 {
		bad("want exactly one build kind (debootstrap or gomodule), got %d", kinds)
	}

	c := d.Config
	if len(c.Entrypoint) == 0 && len(c.Cmd) == 0 {
		bad("config: set cmd or entrypoint, or the image cannot run")
	}
	for _, e := range c.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || !envKeyRe.MatchString(k) {
			bad("config.env: %q is not KEY=value", e)
		}
	}
	for _, p := range c.Expose {
		m := exposeRe.FindStringSubmatch(p)
		if m == nil {
			bad("config.expose: %q is not PORT or PORT/tcp|udp", p)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n < 1 || n > 65535 {
			bad("config.expose: port %q out of range", p)
		}
	}
	if c.User != "" && !userRe.MatchString(c.User) {
		bad("config.user %q: want user[:group]", c.User)
	}
	if c.Workdir != "" && (!path.IsAbs(c.Workdir) || path.Clean(c.Workdir) != c.Workdir) {
		bad("config.workdir %q: want a clean absolute path", c.Workdir)
	}
	for k := range c.Labels {
		if !labelRe.MatchString(k) {
			bad("config.labels: %q is not a label key", k)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("image %q: %w", d.Name, err)
	}
	return nil
}

func checkRelPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("%q: want a clean path relative to the image's root", p)
	}
	return nil
}

// Changes renders Config as `docker import --change` instructions
// (Dockerfile syntax), in a fixed order so that equal definitions give
// equal images.
func (c Config) Changes() []string {
	var out []string
	if len(c.Entrypoint) > 0 {
		out = append(out, "ENTRYPOINT "+jsonArray(c.Entrypoint))
	}
	if len(c.Cmd) > 0 {
		out = append(out, "CMD "+jsonArray(c.Cmd))
	}
	for _, e := range c.Env {
		k, v, _ := strings.Cut(e, "=")
		out = append(out, "ENV "+k+"="+quote(v))
	}
	if len(c.Labels) > 0 {
		keys := make([]string, 0, len(c.Labels))
		for k := range c.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, "LABEL "+k+"="+quote(c.Labels[k]))
		}
	}
	for _, p := range c.Expose {
		out = append(out, "EXPOSE "+p)
	}
	if c.User != "" {
		out = append(out, "USER "+c.User)
	}
	if c.Workdir != "" {
		out = append(out, "WORKDIR "+c.Workdir)
	}
	return out
}

func jsonArray(words []string) string {
	b, _ := json.Marshal(words) // []string always marshals
	return string(b)
}

// quote writes a value the Dockerfile parser reads back verbatim: double
// quotes, with the characters it treats specially escaped ($ would
// otherwise be expanded at import time).
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`)
	return `"` + r.Replace(v) + `"`
}

// Load reads every images/<name>/image.json in fsys (a tree whose top-level
// folders are images) and returns the definitions sorted by name. Two images
// with the same tag are an error.
func Load(fsys fs.FS) ([]Definition, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read image definitions: %w", err)
	}
	var defs []Definition
	tags := map[string]string{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		data, err := fs.ReadFile(fsys, path.Join(name, MetadataFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue // a folder that is not an image, e.g. shared notes
		}
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", name, err)
		}
		d, err := Parse(name, data)
		if err != nil {
			return nil, err
		}
		if other, dup := tags[d.Tag]; dup {
			return nil, fmt.Errorf("images %q and %q: both tagged %s", other, name, d.Tag)
		}
		tags[d.Tag] = name
		if st, err := fs.Stat(fsys, path.Join(name, OverlayDir)); err == nil {
			if !st.IsDir() {
				return nil, fmt.Errorf("image %q: %s is not a folder", name, OverlayDir)
			}
			sub, err := fs.Sub(fsys, path.Join(name, OverlayDir))
			if err != nil {
				return nil, fmt.Errorf("image %q: %w", name, err)
			}
			d.Overlay = sub
		}
		defs = append(defs, d)
	}
	sort.Slice(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name })
	return defs, nil
}

// Select returns the definitions named, in the order given, or all of them
// when names is empty. An unknown name is an error that lists the valid ones.
func Select(defs []Definition, names []string) ([]Definition, error) {
	if len(names) == 0 {
		return defs, nil
	}
	byName := make(map[string]Definition, len(defs))
	valid := make([]string, 0, len(defs))
	for _, d := range defs {
		byName[d.Name] = d
		valid = append(valid, d.Name)
	}
	var out []Definition
	seen := map[string]bool{}
	var unknown []string
	for _, n := range names {
		d, ok := byName[n]
		if !ok {
			unknown = append(unknown, strconv.Quote(n))
			continue
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, d)
		}
	}
	if len(unknown) > 0 {
		word := "image"
		if len(unknown) > 1 {
			word = "images"
		}
		return nil, fmt.Errorf("unknown %s %s (defined: %s)", word, strings.Join(unknown, ", "), strings.Join(valid, ", "))
	}
	return out, nil
}
