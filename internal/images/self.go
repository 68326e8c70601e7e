package images

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// SelfRepository is the repository of the image holding darse's own
// binaries (the firewall watcher runs from it); its tag is a hash of the
// binaries, so a rebuilt darse never runs an older image by mistake.
const SelfRepository = "darse/darse"

// SelfTag is the image reference for these binaries.
func SelfTag(bins []string) (string, error) {
	h := sha256.New()
	for _, b := range bins {
		f, err := os.Open(b)
		if err != nil {
			return "", fmt.Errorf("darse image: %w", err)
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("darse image: %w", err)
		}
	}
	return SelfRepository + ":" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// EnsureSelf imports an image holding bins in /usr/local/bin, with the
// host's CA bundle and a writable /tmp, unless it is already there. The
// binaries are copied as they are, so they must be static (CGO_ENABLED=0).
// The restic installed beside the first binary goes in too (and so into
// the tag); without it the image cannot run backups, which is logged.
func (b *Builder) EnsureSelf(ctx context.Context, bins []string) (string, error) {
	withR := withRestic(bins)
	if len(withR) == len(bins) && !hasRestic(bins) {
		b.logger().Warn("darse image without restic: backups cannot run from it (darse backup install-restic)")
	}
	bins = withR
	tag, err := SelfTag(bins)
	if err != nil {
		return "", err
	}
	if ok, err := b.Engine.ImageExists(ctx, tag); err != nil || ok {
		return tag, err
	}
	for _, bin := range bins {
		if err := checkStatic(bin); err != nil {
			return "", err
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeSelf(pw, bins)) }()
	_, err = b.Engine.ImageImport(ctx, tag, []string{`ENV PATH="/usr/local/bin"`, `ENV SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt"`}, pr)
	pr.Close()
	if err != nil {
		return "", fmt.Errorf("darse image %s: %w", tag, err)
	}
	return tag, nil
}

func checkStatic(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("darse image: %s: %w", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("darse image: %s is dynamically linked: build it with CGO_ENABLED=0", bin)
		}
	}
	return nil
}

func writeSelf(w io.Writer, bins []string) error {
	tw := tar.NewWriter(w)
	for _, d := range []struct {
		name string
		mode int64
	}{{"tmp/", 0o1777}, {"etc/", 0o755}, {"etc/ssl/", 0o755}, {"etc/ssl/certs/", 0o755}, {"usr/", 0o755}, {"usr/local/", 0o755}, {"usr/local/bin/", 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode}); err != nil {
			return err
		}
	}
	files := map[string]string{"etc/ssl/certs/ca-certificates.crt": "/etc/ssl/certs/ca-certificates.crt"}
	for _, b := range bins {
		files["usr/local/bin/"+filepath.Base(b)] = b
	}
	for name, src := range files {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil {
			mode := int64(0o644)
			if filepath.Dir(name) == "usr/local/bin" {
				mode = 0o755
			}
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: st.Size()})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

func hasRestic(bins []string) bool {
	for _, b := range bins {
		if filepath.Base(b) == "restic" {
			return true
		}
	}
	return false
}
