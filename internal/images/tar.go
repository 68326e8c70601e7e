package images

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// writeTar writes the tree at root as a tar stream for `docker import`:
// numeric owners only (names would be resolved on the build host), hard
// links kept as links, and nothing from other filesystems or from dev/,
// proc/ and sys/, which the engine provides at run time.
func writeTar(ctx context.Context, w io.Writer, root string) error {
	rootInfo, err := os.Lstat(root)
	if err != nil {
		return err
	}
	rootDev := devOf(rootInfo)
	skipContents := map[string]bool{"dev": true, "proc": true, "sys": true}
	links := map[[2]uint64]string{} // (device, inode) → first name seen

	tw := tar.NewWriter(w)
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		name := filepath.ToSlash(rel)
		info, err := e.Info()
		if err != nil {
			return err
		}
		if devOf(info) != rootDev {
			// A mount left in the tree: never archive (or walk) the host.
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		mode := info.Mode()
		if mode&(fs.ModeSocket|fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice) != 0 {
			return nil
		}

		target := ""
		if mode&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, target)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		hdr.Name = name
		hdr.Uname, hdr.Gname = "", ""
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if mode.IsRegular() && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if first, seen := links[key]; seen {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = name
				}
			}
		}
		if e.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyFile(tw, p, hdr.Size); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		if e.IsDir() && skipContents[name] {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func copyFile(w io.Writer, name string, size int64) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err == nil && n != size {
		err = fmt.Errorf("changed while archived: %d bytes, want %d", n, size)
	}
	return err
}

func devOf(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}
