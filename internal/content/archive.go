// Package content moves a site's files (its data/ folder) in and out:
// safe extraction of uploaded archives and a final archive on deletion.
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
	"time"
)

// Archiver writes final archives of sites' data/ folders.
type Archiver struct {
	UsersDir   string // <srv>/users
	ArchiveDir string // where archives are kept, e.g. <srv>/archives
	Now        func() time.Time
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
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
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
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			r, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, r)
			r.Close()
			return err
		}
		return nil
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
