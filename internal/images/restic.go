package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
)

// Restic is the backup engine darse drives (it has no library API: its
// repository format and its command line are the contracts), pinned and
// built from the Go module proxy. Debian's restic (0.14) lacks
// --stdin-from-command, which fails a snapshot whose dump fails.
func Restic() GoModule {
	return GoModule{
		Module:  "github.com/restic/restic",
		Version: "v0.18.1",
		Package: "github.com/restic/restic/cmd/restic",
		Binary:  "/usr/local/bin/restic",
		Ldflags: "-s -w -X main.version=0.18.1",
	}
}

// RestServer is restic's REST server, the off-host repository the tests
// back up to (started on loopback); darse itself never runs it.
func RestServer() GoModule {
	return GoModule{
		Module:  "github.com/restic/rest-server",
		Version: "v0.14.0",
		Package: "github.com/restic/rest-server/cmd/rest-server",
		Binary:  "/usr/local/bin/rest-server",
		Ldflags: "-s -w",
	}
}

// EnsureTool returns the path of the static binary g builds, compiling it
// into the Go build cache the first time (minutes for restic on 2 cores).
func (b *Builder) EnsureTool(ctx context.Context, g GoModule) (string, error) {
	var errs []error
	g.validate(func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) })
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("tool %s: %w", g.Module, err)
	}
	return b.goBinary(ctx, path.Base(g.Package), &g)
}

// InstallTool copies the tool g builds to dir (bin/ beside darse), where
// darse finds it and from where the darse image takes it.
func (b *Builder) InstallTool(ctx context.Context, g GoModule, dir string) (string, error) {
	bin, err := b.EnsureTool(ctx, g)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, path.Base(g.Binary))
	tmp := dst + ".tmp"
	if err := copyPath(bin, tmp, 0o755); err != nil {
		return "", fmt.Errorf("install %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("install %s: %w", dst, err)
	}
	return dst, nil
}

// withRestic adds the restic found beside the first binary (bin/restic,
// put there by `darse backup install-restic`) to the darse image's
// binaries, so that backups run from the image as from the host.
func withRestic(bins []string) []string {
	if len(bins) == 0 {
		return bins
	}
	r := filepath.Join(filepath.Dir(bins[0]), "restic")
	if slices.ContainsFunc(bins, func(b string) bool { return filepath.Base(b) == "restic" }) {
		return bins
	}
	if st, err := os.Stat(r); err != nil || !st.Mode().IsRegular() {
		return bins
	}
	return append(slices.Clone(bins), r)
}
