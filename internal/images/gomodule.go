package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// GoModule builds one static binary from a module on the Go module proxy
// (e.g. Traefik) into an otherwise empty tree holding only what a Go
// program needs: CA certificates and a writable /tmp.
type GoModule struct {
	// Module and Version are required as `require Module Version`.
	Module  string `json:"module"`
	Version string `json:"version"`
	// Package is the main package to build, inside Module.
	Package string `json:"package"`
	// Binary is where the binary goes in the image, an absolute path.
	Binary string `json:"binary"`
	// Replace and Exclude are copied into the build's go.mod, as the
	// module's own go.mod has them (replace directives of a dependency are
	// not applied by Go).
	Replace map[string]string `json:"replace,omitempty"` // old => new@version
	Exclude []string          `json:"exclude,omitempty"` // module@version
	// Ldflags are passed to go build (e.g. -X for the version string).
	Ldflags string `json:"ldflags,omitempty"`
}

// DefaultGoCacheDir keeps each module build's go.mod and the built binary,
// so that a rebuild of the same definition is a copy, not a compile.
const DefaultGoCacheDir = "/var/cache/darse/gobuild"

var modPathRe = regexp.MustCompile(`^[a-z0-9.-]+(/[A-Za-z0-9._~-]+)+$`)
var modVersionRe = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+([-+][A-Za-z0-9.+-]+)?$`)

func (g *GoModule) validate(bad func(string, ...any)) {
	if !modPathRe.MatchString(g.Module) {
		bad("gomodule.module %q: want a module path", g.Module)
	}
	if !modVersionRe.MatchString(g.Version) {
		bad("gomodule.version %q: want a semantic version such as v3.6.12", g.Version)
	}
	if g.Package != g.Module && !strings.HasPrefix(g.Package, g.Module+"/") {
		bad("gomodule.package %q: want a package inside %s", g.Package, g.Module)
	}
	if !filepath.IsAbs(g.Binary) || filepath.Clean(g.Binary) != g.Binary {
		bad("gomodule.binary %q: want a clean absolute path", g.Binary)
	}
	for old, repl := range g.Replace {
		p, v, ok := strings.Cut(repl, "@")
		if !modPathRe.MatchString(old) || !ok || !modPathRe.MatchString(p) || !modVersionRe.MatchString(v) {
			bad("gomodule.replace %q => %q: want module => module@version", old, repl)
		}
	}
	for _, e := range g.Exclude {
		p, v, ok := strings.Cut(e, "@")
		if !ok || !modPathRe.MatchString(p) || !modVersionRe.MatchString(v) {
			bad("gomodule.exclude %q: want module@version", e)
		}
	}
	if strings.ContainsAny(g.Ldflags, "'\"\n") {
		bad("gomodule.ldflags: no quotes or newlines")
	}
}

// goMod is the go.mod of the throwaway module the binary is built from.
func (g *GoModule) goMod() string {
	var b strings.Builder
	fmt.Fprintf(&b, "module darse.build/%s\n\ngo 1.24\n\nrequire %s %s\n", filepath.Base(g.Module), g.Module, g.Version)
	for _, old := range slices.Sorted(maps.Keys(g.Replace)) {
		p, v, _ := strings.Cut(g.Replace[old], "@")
		fmt.Fprintf(&b, "\nreplace %s => %s %s\n", old, p, v)
	}
	for _, e := range g.Exclude {
		p, v, _ := strings.Cut(e, "@")
		fmt.Fprintf(&b, "\nexclude %s %s\n", p, v)
	}
	return b.String()
}

// buildGoModule compiles the binary (or reuses the cached one built from
// the same definition) and lays out root.
func (b *Builder) buildGoModule(ctx context.Context, name string, g *GoModule, root string) error {
	bin, err := b.goBinary(ctx, name, g)
	if err != nil {
		return err
	}
	for _, d := range []string{"tmp", "etc/ssl/certs", filepath.Dir(strings.TrimPrefix(g.Binary, "/"))} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777|os.ModeSticky); err != nil {
		return err
	}
	if err := copyPath(bin, filepath.Join(root, g.Binary), 0o755); err != nil {
		return err
	}
	// The host's CA bundle (Debian's ca-certificates): ACME and any
	// outgoing TLS need it; a missing bundle is an error, not a silent image.
	return copyPath("/etc/ssl/certs/ca-certificates.crt", filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), 0o644)
}

// goBinary returns the path of the binary built from g, compiling it
// into the cache under name unless it is there already.
func (b *Builder) goBinary(ctx context.Context, name string, g *GoModule) (string, error) {
	spec, _ := json.Marshal(g)
	sum := sha256.Sum256(spec)
	cacheRoot := b.GoCacheDir
	if cacheRoot == "" {
		cacheRoot = DefaultGoCacheDir
	}
	dir := filepath.Join(cacheRoot, name)
	bin := filepath.Join(dir, "bin-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(g.goMod()), 0o644); err != nil {
		return "", err
	}
	os.Remove(filepath.Join(dir, "go.sum"))
	b.step(StepGoGet)
	if err := b.run(ctx, dir, nil, "go", "get", g.Package+"@"+g.Version); err != nil {
		return "", fmt.Errorf("resolve %s: %w", g.Module, err)
	}
	tmp := bin + ".tmp"
	args := []string{"build", "-trimpath", "-o", tmp}
	if g.Ldflags != "" {
		args = append(args, "-ldflags", g.Ldflags)
	}
	args = append(args, g.Package)
	b.step(StepGoBuild)
	if err := b.run(ctx, dir, []string{"CGO_ENABLED=0"}, "go", args...); err != nil {
		return "", fmt.Errorf("build %s: %w", g.Package, err)
	}
	return bin, os.Rename(tmp, bin)
}

func copyPath(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// run runs a build tool in dir with extra environment.
func (b *Builder) run(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return b.runCmd(cmd)
}

// runCmd runs cmd, its output going to b.Output and to watch as it
// happens; the tail is kept for the error message.
func (b *Builder) runCmd(cmd *exec.Cmd, watch ...io.Writer) error {
	tail := &tailBuffer{max: 4 << 10}
	outs := append([]io.Writer{tail}, watch...)
	if b.Output != nil {
		outs = append(outs, b.Output)
	}
	out := io.MultiWriter(outs...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, tail.String())
	}
	return nil
}
