package ops

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/darse/darse/internal/content"
	"github.com/darse/darse/internal/hosting"
)

type statuser interface {
	Status(ctx context.Context, name string) (*hosting.Status, error)
}

// Content swaps an upload, already checked and saved, in as the site's
// data/, restarts what runs so that it serves it, and deletes the upload.
type Content struct {
	Archive  string `json:"archive"`  // path of the saved upload
	Filename string `json:"filename"` // as the member named it
	Mode     string `json:"mode"`     // content.Replace or content.Merge
}

func (*Content) Name() string  { return "content" }
func (*Content) Title() string { return "Upload" }

func (k *Content) Check(ctx context.Context, e *Env, t Target) error {
	if e.Files == nil {
		return errors.New("uploads are not possible here")
	}
	if k.Mode != content.Replace && k.Mode != content.Merge {
		return fmt.Errorf("upload mode %q: must be %s or %s", k.Mode, content.Replace, content.Merge)
	}
	if _, err := os.Stat(k.Archive); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	return onSite{}.Check(ctx, e, t)
}

// Run installs the upload. Run again after a crash it does the same; once
// the upload file is gone, it was all done.
func (k *Content) Run(ctx context.Context, e *Env, t Target) error {
	if e.Files == nil {
		return errors.New("uploads are not possible here")
	}
	if _, err := os.Stat(k.Archive); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := e.Files.Install(ctx, t.Site, k.Archive, k.Filename, k.Mode); err != nil {
		return err
	}
	st, err := e.Hosting.Status(ctx, t.Site)
	if err != nil {
		return err
	}
	if st.State != hosting.StateStopped {
		if _, err := e.Hosting.Restart(ctx, t.Site); err != nil {
			return fmt.Errorf("new content in place, but the site did not restart: %w", err)
		}
	}
	if err := e.Files.Cleanup(t.Site); err != nil {
		e.runner.log.Warn("remove the previous data/", "site", t.Site, "err", err)
	}
	return os.Remove(k.Archive)
}

func (k *Content) Resume(ctx context.Context, e *Env, t Target) error { return k.Run(ctx, e, t) }
