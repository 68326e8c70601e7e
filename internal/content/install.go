package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Modes of an upload.
const (
	Replace = "replace" // data/ becomes the archive's content
	Merge   = "merge"   // the archive's files are added to data/, replacing those of the same name
)

// Installer puts uploaded archives into sites' data/ folders.
type Installer struct {
	UsersDir string // <srv>/users
	Limits   Limits
}

// Install unpacks the archive into a fresh folder next to the site's
// data/, copies the current files the archive lacks into it when mode is
// Merge (see the package comment: as the site's user, never following a
// link), then swaps the new folder with data/ in one rename
// (RENAME_EXCHANGE): data/ is always either all old or all new.
// Containers keep the folder they were started with (a bind mount follows
// the folder, not its name): restart them afterwards to serve the new one,
// then call Cleanup.
// Running it again after a crash gives the same result.
func (in Installer) Install(ctx context.Context, name, archive, displayName, mode string) (Summary, error) {
	dir := filepath.Join(in.UsersDir, name)
	data := filepath.Join(dir, "data")
	staging := filepath.Join(dir, ".data-new")
	// Leftover of an interrupted run. (Previous folders, .data-old-*, may
	// still be what a container serves: Cleanup removes them after a restart.)
	if err := os.RemoveAll(staging); err != nil {
		return Summary{}, err
	}
	uid, gid := -1, -1
	if st, err := os.Lstat(data); err == nil {
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(s.Uid), int(s.Gid)
		}
	}
	if mode == Merge && uid >= 0 {
		// The copy writes into the new folder as this user.
		uid, gid = copyOwner(uid, gid)
	}
	lim := in.Limits
	if lim == (Limits{}) {
		lim = DefaultLimits
	}
	sum, err := Extract(archive, displayName, staging, lim, uid, gid)
	if err != nil {
		return sum, err
	}
	if mode == Merge {
		if err := copyCurrent(ctx, data, staging, uid, gid); err != nil {
			os.RemoveAll(staging)
			return sum, fmt.Errorf("merge into data/ of site %q: %w", name, err)
		}
	}
	if err := exchange(staging, data); err != nil {
		os.RemoveAll(staging)
		return sum, fmt.Errorf("swap data/ of site %q: %w", name, err)
	}
	// staging now holds the previous data/, which running containers still
	// serve until they restart; nothing when there was none.
	if _, err := os.Lstat(staging); errors.Is(err, fs.ErrNotExist) {
		return sum, nil
	}
	if err := os.Rename(staging, filepath.Join(dir, fmt.Sprintf(".data-old-%d", time.Now().UnixNano()))); err != nil {
		return sum, err
	}
	return sum, nil
}

// Cleanup removes the previous data/ folders Install set aside; call it
// once the site's containers have restarted on the new one.
func (in Installer) Cleanup(name string) error {
	olds, err := filepath.Glob(filepath.Join(in.UsersDir, name, ".data-old-*"))
	if err != nil {
		return err
	}
	for _, o := range olds {
		if err := os.RemoveAll(o); err != nil {
			return err
		}
	}
	return nil
}

// exchange swaps two paths atomically; when b does not exist, a takes its place.
func exchange(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.ENOENT) {
		if _, serr := os.Lstat(b); os.IsNotExist(serr) {
			return os.Rename(a, b)
		}
	}
	return err
}
