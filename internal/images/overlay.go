package images

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// copyOverlay copies the overlay over the tree in dir. Files replace what
// is there (a symlink is replaced, not followed); folders are created 0755
// when missing and left alone otherwise.
func copyOverlay(overlay fs.FS, dir string) error {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	return fs.WalkDir(overlay, ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case name == ".":
			return nil
		case e.IsDir():
			if err := r.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		case !e.Type().IsRegular():
			return fmt.Errorf("%s: only files and folders can be overlaid", name)
		}
		data, err := fs.ReadFile(overlay, name)
		if err != nil {
			return err
		}
		if err := r.RemoveAll(name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		// Create with O_EXCL, then chmod: the umask must not decide the mode.
		f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		_, werr := f.Write(data)
		cerr := f.Close()
		if werr != nil || cerr != nil {
			return fmt.Errorf("%s: write: %w", name, errors.Join(werr, cerr))
		}
		if err := r.Chmod(name, overlayMode(data)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// overlayMode is the mode of an overlay file: executable when it is a script.
func overlayMode(data []byte) fs.FileMode {
	if bytes.HasPrefix(data, []byte("#!")) {
		return 0o755
	}
	return 0o644
}
