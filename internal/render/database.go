package render

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/darse/darse/internal/template"
)

// DatabaseDir makes the folder of the template's database (db/), beside
// data/ and never inside it: mode 0700, owned by the database's uid:gid
// (when darse runs as root, as in production), so that neither SFTP nor
// the web services, which run as the files' owner, can read it. An
// existing folder is kept, its data being the site's, and given back to
// the database's owner if it lost it; anything else at that name (a file,
// a symlink a member might have planted) is refused.
func DatabaseDir(t *template.Template, dir string) error {
	d := t.Database
	if d == nil {
		return nil
	}
	p := filepath.Join(dir, d.Dir)
	st, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(p, 0o700); err != nil {
			return fmt.Errorf("database folder: %w", err)
		}
	case err != nil:
		return fmt.Errorf("database folder: %w", err)
	case !st.IsDir():
		return fmt.Errorf("database folder %s: is not a folder (%s)", p, st.Mode().Type())
	}
	if os.Geteuid() != 0 {
		return nil // tests without root: the mode is the boundary we can check
	}
	if err := os.Lchown(p, d.UID, d.GID); err != nil {
		return fmt.Errorf("database folder: %w", err)
	}
	if err := os.Chmod(p, 0o700); err != nil {
		return fmt.Errorf("database folder: %w", err)
	}
	return nil
}
