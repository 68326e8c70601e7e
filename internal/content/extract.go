package content

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/darse/darse/internal/site"
)

// Limits bound what one upload may unpack.
type Limits struct {
	Entries int   // files, folders and links
	Bytes   int64 // total size of the files once unpacked
}

// DefaultLimits fit a web site, not a backup.
var DefaultLimits = Limits{Entries: 20000, Bytes: 512 << 20}

// Summary is what an archive holds.
type Summary struct {
	Files   int
	Entries int
	Bytes   int64
}

// refuse is why an archive is refused whole, named after the upload field.
func refuse(name, format string, args ...any) error {
	return &site.FieldError{Field: "archive", Value: name, Rule: fmt.Sprintf(format, args...)}
}

type kind int

const (
	kindFile kind = iota
	kindDir
	kindSymlink
	kindHardlink
)

// entry is one member of a zip or tar archive, its name already checked.
type entry struct {
	name   string // clean, relative, slash-separated
	kind   kind
	exec   bool
	size   int64
	target string // symlink target, or hard link's entry name
	open   func() (io.Reader, error)
}

// cleanName checks an entry name: relative, no "..", no backslash or NUL.
// It returns "" for the archive's root itself.
func cleanName(raw string) (string, error) {
	switch {
	case strings.ContainsAny(raw, "\x00\\"):
		return "", fmt.Errorf("entry %q: backslash or NUL in its name", raw)
	case strings.HasPrefix(raw, "/"), len(raw) >= 2 && raw[1] == ':':
		return "", fmt.Errorf("entry %q: absolute path", raw)
	}
	var parts []string
	for _, p := range strings.Split(raw, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("entry %q: goes outside data/ (..)", raw)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "/"), nil
}

// checkSymlink allows relative targets below the link's own folder only:
// with no "..", a chain of such links can never leave data/.
func checkSymlink(name, target string) error {
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsAny(target, "\x00\\") {
		return fmt.Errorf("symlink %q -> %q: points outside data/", name, target)
	}
	for _, p := range strings.Split(target, "/") {
		if p == ".." {
			return fmt.Errorf("symlink %q -> %q: points outside data/ (..)", name, target)
		}
	}
	return nil
}

// walk reads the archive at p (zip or gzip'd tar, told by its first bytes)
// and calls fn for each entry, in order, after checking its name and type.
func walk(p string, lim Limits, fn func(entry) error) (Summary, error) {
	var sum Summary
	f, err := os.Open(p)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return sum, err
	}
	count := func(e entry) error {
		sum.Entries++
		if sum.Entries > lim.Entries {
			return fmt.Errorf("more than %d entries", lim.Entries)
		}
		if e.kind == kindFile {
			sum.Files++
			sum.Bytes += e.size
			if e.size < 0 || sum.Bytes > lim.Bytes {
				return fmt.Errorf("more than %d MiB once unpacked", lim.Bytes>>20)
			}
		}
		return fn(e)
	}
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		st, err := f.Stat()
		if err != nil {
			return sum, err
		}
		return sum, walkZip(f, st.Size(), count)
	case bytes.HasPrefix(head, []byte("\x1f\x8b")):
		return sum, walkTarGz(f, count)
	}
	return sum, errors.New("not a .zip or .tar.gz archive")
}

func walkZip(r io.ReaderAt, size int64, fn func(entry) error) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("unreadable zip: %w", err)
	}
	for _, zf := range zr.File {
		name, err := cleanName(zf.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue
		}
		mode := zf.Mode()
		e := entry{name: name, exec: mode&0o111 != 0}
		switch {
		case mode.IsDir():
			e.kind = kindDir
		case mode&fs.ModeSymlink != 0:
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			t, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return err
			}
			e.kind, e.target = kindSymlink, string(t)
		case mode.IsRegular():
			zf := zf
			e.kind, e.size = kindFile, int64(zf.UncompressedSize64)
			e.open = func() (io.Reader, error) { return zf.Open() }
		default:
			return fmt.Errorf("entry %q: devices and special files are not site content", zf.Name)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func walkTarGz(r io.Reader, fn func(entry) error) error {
	zr, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return fmt.Errorf("unreadable gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unreadable tar: %w", err)
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue
		}
		e := entry{name: name, exec: h.Mode&0o111 != 0}
		switch h.Typeflag {
		case tar.TypeDir:
			e.kind = kindDir
		case tar.TypeReg, tar.TypeRegA:
			e.kind, e.size = kindFile, h.Size
			e.open = func() (io.Reader, error) { return tr, nil }
		case tar.TypeSymlink:
			e.kind, e.target = kindSymlink, h.Linkname
		case tar.TypeLink:
			target, err := cleanName(h.Linkname)
			if err != nil || target == "" {
				return fmt.Errorf("hard link %q -> %q: points outside data/", h.Name, h.Linkname)
			}
			e.kind, e.target = kindHardlink, target
		default:
			return fmt.Errorf("entry %q: devices and special files are not site content", h.Name)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// Check reads the whole archive as Extract would, writing nothing: the
// upload is refused at once, with the first reason, if any entry is unsafe.
func Check(archive, displayName string, lim Limits) (Summary, error) {
	kinds := map[string]kind{}
	sum, err := walk(archive, lim, func(e entry) error {
		if err := checkEntry(e, kinds); err != nil {
			return err
		}
		if e.kind == kindFile {
			r, err := e.open()
			if err != nil {
				return err
			}
			n, err := io.Copy(io.Discard, io.LimitReader(r, e.size+1))
			if err != nil {
				return fmt.Errorf("entry %q: %w", e.name, err)
			}
			if n != e.size {
				return fmt.Errorf("entry %q: size does not match its header", e.name)
			}
		}
		return nil
	})
	if err != nil {
		return sum, refuse(displayName, "%v; nothing was changed", err)
	}
	return sum, nil
}

// checkEntry refuses entries that would write through a symlink, link
// outside the archive, or turn one kind of entry into another.
func checkEntry(e entry, kinds map[string]kind) error {
	for dir := path.Dir(e.name); dir != "."; dir = path.Dir(dir) {
		if k, ok := kinds[dir]; ok && k != kindDir {
			return fmt.Errorf("entry %q: inside %q, which is not a folder", e.name, dir)
		}
	}
	if k, ok := kinds[e.name]; ok && (k == kindDir) != (e.kind == kindDir) {
		return fmt.Errorf("entry %q: appears twice as different kinds", e.name)
	}
	switch e.kind {
	case kindSymlink:
		if err := checkSymlink(e.name, e.target); err != nil {
			return err
		}
	case kindHardlink:
		if k, ok := kinds[e.target]; !ok || k != kindFile {
			return fmt.Errorf("hard link %q -> %q: not a file of the archive", e.name, e.target)
		}
	}
	kinds[e.name] = e.kind
	return nil
}

// Extract unpacks the archive into dst, a folder it creates, owned by
// uid:gid (-1 keeps root's). Any unsafe entry refuses the whole archive
// and removes dst.
func Extract(archive, displayName, dst string, lim Limits, uid, gid int) (sum Summary, err error) {
	if err := os.Mkdir(dst, 0o755); err != nil {
		return sum, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dst)
		}
	}()
	kinds := map[string]kind{}
	sum, err = walk(archive, lim, func(e entry) error {
		if err := checkEntry(e, kinds); err != nil {
			return err
		}
		return write(dst, e, uid, gid)
	})
	if err != nil {
		var fe *site.FieldError
		if errors.As(err, &fe) {
			return sum, err
		}
		return sum, refuse(displayName, "%v; nothing was changed", err)
	}
	if uid >= 0 {
		os.Lchown(dst, uid, gid)
	}
	return sum, nil
}

func write(dst string, e entry, uid, gid int) error {
	p := filepath.Join(dst, filepath.FromSlash(e.name))
	if err := mkdirs(dst, path.Dir(e.name), uid, gid); err != nil {
		return err
	}
	// A later entry of the same name replaces an earlier one (never in place:
	// a hard link would carry the change to its twin).
	if st, err := os.Lstat(p); err == nil && !st.IsDir() {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	switch e.kind {
	case kindDir:
		if err := os.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
	case kindSymlink:
		if err := os.Symlink(e.target, p); err != nil {
			return err
		}
	case kindHardlink:
		if err := os.Link(filepath.Join(dst, filepath.FromSlash(e.target)), p); err != nil {
			return err
		}
		return nil
	case kindFile:
		mode := os.FileMode(0o644)
		if e.exec {
			mode = 0o755
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		r, err := e.open()
		if err == nil {
			var n int64
			n, err = io.Copy(f, io.LimitReader(r, e.size+1))
			if err == nil && n != e.size {
				err = fmt.Errorf("entry %q: size does not match its header", e.name)
			}
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if uid >= 0 {
		return os.Lchown(p, uid, gid)
	}
	return nil
}

// mkdirs creates the folders of rel under root, refusing to pass through
// anything that is not a folder.
func mkdirs(root, rel string, uid, gid int) error {
	if rel == "." || rel == "" {
		return nil
	}
	cur := root
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		st, err := os.Lstat(cur)
		switch {
		case err == nil && st.IsDir():
			continue
		case err == nil:
			return fmt.Errorf("%s is not a folder", rel)
		case !os.IsNotExist(err):
			return err
		}
		if err := os.Mkdir(cur, 0o755); err != nil {
			return err
		}
		if uid >= 0 {
			os.Lchown(cur, uid, gid)
		}
	}
	return nil
}
