// Package content moves a site's files (its data/ folder) in and out:
// safe extraction of uploaded archives and a final archive on deletion.
//
// Installing never follows anything the member controls. An upload is
// unpacked into a fresh folder beside data/ (.data-new, which no container
// sees) and swapped with data/ in one rename. A merge also needs the
// current files: after the archive, the names it lacks are copied from
// data/ into the new folder, never hard-linked (a link would hand the
// member a writable twin of whatever it reached). The member may be
// changing data/ meanwhile (SFTP, PHP), so each folder is held open as an
// os.Root, out of which no symlink leads, and each entry opened is checked
// to be the inode its lstat saw; symlinks are recreated with their target,
// unfollowed; fifos, sockets and devices are skipped. Copies belong to the
// user who made them; modes and modification times are kept. Limits bound
// the archive, as before; the copied files are the site's own, uncounted.
//
// The copy does not run as root. As root, Install re-executes its own
// binary (/proc/self/exe HelperCommand: darse's hidden command, which calls
// RunHelper) as data/'s owner, or www-data (33:33) when data/ is root's,
// with no supplementary group, no capability, an empty environment and
// only the two folders open: even a bug in it cannot write root's files
// or read root-only ones. (Other sites' files share 33:33 and the store is
// world-readable: os.Root, not the uid, keeps those out.) Not running as
// root (unit tests), Install copies in-process, already unprivileged. A
// test binary that merges as root serves HelperCommand from its TestMain,
// as merge_test.go does.
package content

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Archiver writes final archives of sites' data/ folders.
type Archiver struct {
	UsersDir   string // <srv>/users
	ArchiveDir string // where archives are kept, e.g. <srv>/archives
	Now        func() time.Time
}

// copyRegular writes one regular file of root to the archive, provided it
// is still the file lstat saw (not swapped for a fifo or a link meanwhile):
// opened without following a final symlink and without blocking.
func copyRegular(tw *tar.Writer, root *os.Root, rel string, hdr *tar.Header, seen fs.FileInfo) error {
	r, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer r.Close()
	now, err := r.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(now, seen) || !now.Mode().IsRegular() {
		return fmt.Errorf("%s changed while it was archived", rel)
	}
	hdr.Size = now.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.CopyN(tw, r, now.Size())
	return err
}

// ArchiveData writes <ArchiveDir>/<name>-<UTC time>.tar.gz holding the
// site's data/ (regular files, folders and symlinks as they are) and
// returns its path; "" when the site has no data/. The archive appears
// whole or not at all (temp file, fsync, rename).
func (a Archiver) ArchiveData(ctx context.Context, name string) (string, error) {
	src := filepath.Join(a.UsersDir, name, "data")
	if _, err := os.Lstat(src); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err := os.MkdirAll(a.ArchiveDir, 0o700); err != nil {
		return "", err
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	dst := filepath.Join(a.ArchiveDir, fmt.Sprintf("%s-%s.tar.gz", name, now().UTC().Format("20060102-150405")))
	f, err := os.CreateTemp(a.ArchiveDir, ".archive-*.tmp")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	// Read through an os.Root: the site may still be running, and nothing
	// a member turns into a symlink mid-walk leads out of data/.
	root, err := os.OpenRoot(src)
	if err != nil {
		return "", fmt.Errorf("archive data of site %q: %w", name, err)
	}
	defer root.Close()
	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		info, err := root.Lstat(rel)
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = root.Readlink(rel); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // devices, sockets, fifos: not content
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if info.Mode().IsRegular() {
			return copyRegular(tw, root, rel, hdr, info)
		}
		return tw.WriteHeader(hdr)
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		return "", fmt.Errorf("archive data of site %q: %w", name, err)
	}
	return dst, nil
}
