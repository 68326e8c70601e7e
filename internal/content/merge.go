package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// HelperCommand is the hidden darse subcommand that copies a site's
// current files for a merge, run by Install as the site's user (see the
// package comment). Its command calls RunHelper.
const HelperCommand = "content-copy-helper"

// siteUID:siteGID (www-data) copy the current files when data/ is root's:
// every template's services run as 33:33.
const siteUID, siteGID = 33, 33

// helperDone is the helper's last line on success: a binary that exits 0
// without running the copy (a command not wired in) is not taken for one
// that copied.
const helperDone = "content-copy-helper: done"

const (
	// maxDepth bounds the nesting of folders: each level keeps two open.
	maxDepth = 256
	// attempts is how many times an entry that changes between its lstat
	// and its open is looked at again before the merge gives up.
	attempts = 5
)

// copyOwner is who copies the current files: data/'s owner, but never
// root, so that even a bug in the copy cannot read root's files.
func copyOwner(uid, gid int) (int, int) {
	if os.Geteuid() == 0 && (uid <= 0 || gid <= 0) {
		return siteUID, siteGID
	}
	return uid, gid
}

// copyCurrent adds to staging what data/ has and staging lacks. As root it
// runs in a child process as uid:gid (the helper); otherwise (unit tests,
// a panel started by its user) in-process, already unprivileged.
func copyCurrent(ctx context.Context, data, staging string, uid, gid int) error {
	src, err := openFolder(data)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openFolder(staging)
	if err != nil {
		return err
	}
	defer dst.Close()
	if os.Geteuid() == 0 {
		return runHelper(ctx, src, dst, uid, gid)
	}
	return copyFolders(ctx, procFD(src), procFD(dst))
}

// openFolder opens a folder darse itself names (data/, the staging
// folder), refusing a symlink in its place.
func openFolder(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open folder", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// procFD names an open folder so that os.OpenRoot reaches it by its
// descriptor, whatever the permissions of the folders above it.
func procFD(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// runHelper re-executes this binary as uid:gid, with no supplementary
// group, no capability (dropped by the kernel with root's uid), an empty
// environment and only the two folders open (as fds 3 and 4).
func runHelper(ctx context.Context, src, dst *os.File, uid, gid int) error {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "/proc/self/exe", HelperCommand)
	cmd.ExtraFiles = []*os.File{src, dst}
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		Pdeathsig:  syscall.SIGKILL,
	}
	// Pdeathsig follows the thread that started the child: keep it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("copy as %d:%d: %s", uid, gid, strings.TrimPrefix(msg, "darse: "))
	}
	if strings.TrimSpace(stdout.String()) != helperDone {
		return fmt.Errorf("copy as %d:%d: this binary has no %q command", uid, gid, HelperCommand)
	}
	return nil
}

// RunHelper is the helper's side, run as the site's user: it copies what
// the folder open as fd 3 (data/) has and the one open as fd 4 (the
// staging folder) lacks, then says it is done on out. It refuses to run
// as root: it is there to shed root.
func RunHelper(ctx context.Context, out io.Writer) error {
	if os.Geteuid() == 0 || os.Getegid() == 0 {
		return errors.New("content copy: refuses to run as root")
	}
	if err := copyFolders(ctx, "/proc/self/fd/3", "/proc/self/fd/4"); err != nil {
		return err
	}
	_, err := fmt.Fprintln(out, helperDone)
	return err
}

// copyFolders opens both folders as roots and copies from one to the other.
func copyFolders(ctx context.Context, srcName, dstName string) error {
	src, err := os.OpenRoot(srcName)
	if err != nil {
		return fmt.Errorf("open data/: %w", err)
	}
	defer src.Close()
	dst, err := os.OpenRoot(dstName)
	if err != nil {
		return fmt.Errorf("open the new data/: %w", err)
	}
	defer dst.Close()
	return copier{ctx}.folder(src, dst, "data", 0)
}

// copier copies a tree the member may be changing while it runs. Each
// folder is held open as an os.Root, so no name in it can lead outside
// the folder; each entry is opened and checked to be the one its lstat
// saw (same inode), so a swap is seen, never followed. Regular files are
// copied (never linked), symlinks recreated with the same target,
// unfollowed; devices, fifos and sockets are not content and are skipped.
type copier struct{ ctx context.Context }

// folder copies the entries of src that dst lacks; folders of both are
// merged; for any other name in both, dst (the upload) wins.
func (c copier) folder(src, dst *os.Root, rel string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: folders nested more than %d deep", rel, maxDepth)
	}
	d, err := src.Open(".")
	if err != nil {
		return entryErr(rel, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return entryErr(rel, err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.entry(src, dst, name, path.Join(rel, name), depth); err != nil {
			return err
		}
	}
	return nil
}

// entry copies one name, looking again while it changes under the copy.
func (c copier) entry(src, dst *os.Root, name, rel string, depth int) error {
	var err error
	for i := 0; i < attempts; i++ {
		var again bool
		if again, err = c.try(src, dst, name, rel, depth); !again {
			return err
		}
	}
	return fmt.Errorf("%s: kept changing while being copied (%w)", rel, err)
}

// try copies one name once; again reports that it changed between its
// lstat and its open, before anything was written.
func (c copier) try(src, dst *os.Root, name, rel string, depth int) (again bool, err error) {
	st, err := src.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // removed meanwhile
	}
	if err != nil {
		return false, entryErr(rel, err)
	}
	have, err := dst.Lstat(name)
	switch {
	case err == nil && !(have.IsDir() && st.IsDir()):
		return false, nil // the upload's entry wins
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, entryErr(rel, err)
	}
	switch {
	case st.IsDir():
		return c.subfolder(src, dst, name, rel, st, have != nil, depth)
	case st.Mode()&fs.ModeSymlink != 0:
		return c.symlink(src, dst, name, rel, st)
	case st.Mode().IsRegular():
		return c.file(src, dst, name, rel, st)
	}
	return false, nil
}

// entryErr names the entry by its path in data/ (a PathError would name
// it by its folder's descriptor).
func entryErr(rel string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w", rel, err)
}

// moved reports whether name is no longer the file st describes.
func moved(r *os.Root, name string, st fs.FileInfo) bool {
	now, err := r.Lstat(name)
	return err != nil || !os.SameFile(now, st)
}

func (c copier) subfolder(src, dst *os.Root, name, rel string, st fs.FileInfo, exists bool, depth int) (bool, error) {
	// "name/." opens name as a folder (O_DIRECTORY): a fifo swapped in
	// cannot block the open.
	sub, err := src.OpenRoot(name + "/.")
	if err != nil {
		return moved(src, name, st), entryErr(rel, err)
	}
	defer sub.Close()
	if got, err := sub.Stat("."); err != nil || !os.SameFile(got, st) {
		return true, fmt.Errorf("%s: changed while being opened", rel)
	}
	if !exists {
		if err := dst.Mkdir(name, 0o700); err != nil {
			return false, entryErr(rel, err)
		}
	}
	out, err := dst.OpenRoot(name)
	if err != nil {
		return false, entryErr(rel, err)
	}
	defer out.Close()
	if err := c.folder(sub, out, rel, depth+1); err != nil {
		return false, err
	}
	if exists {
		return false, nil // the upload's folder keeps its mode
	}
	// Mode and time last: a read-only folder is filled first.
	if err := dst.Chmod(name, st.Mode().Perm()); err != nil {
		return false, entryErr(rel, err)
	}
	return false, dst.Chtimes(name, time.Time{}, st.ModTime())
}

func (c copier) symlink(src, dst *os.Root, name, rel string, st fs.FileInfo) (bool, error) {
	target, err := src.Readlink(name)
	if err != nil {
		return moved(src, name, st), entryErr(rel, err)
	}
	if err := dst.Symlink(target, name); err != nil {
		return false, entryErr(rel, err)
	}
	return false, nil
}

func (c copier) file(src, dst *os.Root, name, rel string, st fs.FileInfo) (bool, error) {
	// O_NONBLOCK: a fifo swapped in cannot block the open.
	in, err := src.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return moved(src, name, st), entryErr(rel, err)
	}
	defer in.Close()
	if got, err := in.Stat(); err != nil || !os.SameFile(got, st) {
		return true, fmt.Errorf("%s: changed while being opened", rel)
	}
	out, err := dst.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, entryErr(rel, err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(st.Mode().Perm())
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dst.Chtimes(name, time.Time{}, st.ModTime())
	}
	if err != nil {
		dst.Remove(name) // no half file taken for the upload's
		return false, entryErr(rel, err)
	}
	return false, nil
}
