package prune

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Engine is what prune needs of the engine.
type Engine interface {
	Images(ctx context.Context) ([]Image, error)
	// ContainerImages are the image IDs and references of every
	// container, running or not.
	ContainerImages(ctx context.Context) (ids, refs []string, err error)
	// RemoveImage removes img; the engine refuses one a container uses.
	RemoveImage(ctx context.Context, img Image) error
}

// Ops deletes ended operations (store.Store.PruneOps).
type Ops interface {
	PruneOps(ctx context.Context, before time.Time, dryRun bool) (int64, error)
}

// Options say what to prune and how old is too old.
type Options struct {
	Srv           string
	DryRun        bool
	ArchivesAge   time.Duration
	OperationsAge time.Duration
	Now           time.Time
}

// Report is what prune removed (or, in a dry run, would remove).
type Report struct {
	DryRun     bool            `json:"dry_run"`
	Images     []ImageReport   `json:"images"`
	Archives   []ArchiveReport `json:"archives"`
	Operations int64           `json:"operations"`
	BytesFreed int64           `json:"bytes_freed"`
	// KeptImages says why no image was removed: the projects that failed
	// to load.
	KeptImages []string `json:"kept_images_because,omitempty"`
}

// ImageReport is one removed image.
type ImageReport struct {
	ID   string   `json:"id"`
	Tags []string `json:"tags"`
	Size int64    `json:"size_bytes"`
}

// ArchiveReport is one removed archive.
type ArchiveReport struct {
	Name     string    `json:"name"`
	Size     int64     `json:"size_bytes"`
	Modified time.Time `json:"modified"`
}

// Run observes, decides and (unless a dry run) removes.
func Run(ctx context.Context, e Engine, ops Ops, o Options) (Report, error) {
	rep := Report{DryRun: o.DryRun, Images: []ImageReport{}, Archives: []ArchiveReport{}}
	if err := pruneImages(ctx, e, o, &rep); err != nil {
		return rep, err
	}
	if err := pruneArchives(o, &rep); err != nil {
		return rep, err
	}
	n, err := ops.PruneOps(ctx, o.Now.Add(-o.OperationsAge), o.DryRun)
	if err != nil {
		return rep, err
	}
	rep.Operations = n
	return rep, nil
}

// uses gathers every image something needs.
func uses(ctx context.Context, e Engine, srv string) (Uses, string, error) {
	u := NewUses()
	folders, err := Folders(srv)
	if err != nil {
		return u, "", err
	}
	pinned := AddFolders(ctx, &u, folders)
	if err := AddTemplates(&u, srv); err != nil {
		return u, "", err
	}
	if err := AddEnvImage(&u, srv); err != nil {
		return u, "", err
	}
	ids, refs, err := e.ContainerImages(ctx)
	if err != nil {
		return u, "", err
	}
	AddContainers(&u, ids, refs)
	return u, pinned, nil
}

func pruneImages(ctx context.Context, e Engine, o Options, rep *Report) error {
	u, pinned, err := uses(ctx, e, o.Srv)
	if err != nil {
		return err
	}
	rep.KeptImages = u.Unreadable
	imgs, err := e.Images(ctx)
	if err != nil {
		return err
	}
	for _, img := range Images(imgs, u, pinned) {
		if !o.DryRun {
			if err := e.RemoveImage(ctx, img); err != nil {
				return fmt.Errorf("remove image %s: %w", img.ID, err)
			}
		}
		rep.Images = append(rep.Images, ImageReport{ID: img.ID, Tags: img.Tags, Size: img.Size})
		rep.BytesFreed += img.Size
	}
	return nil
}

// listArchives reads <srv>/archives: the .tar.gz files `site rm` wrote,
// nothing else (no temp file, no link, no folder).
func listArchives(dir string) ([]Archive, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list archives: %w", err)
	}
	var out []Archive
	for _, ent := range ents {
		if !ent.Type().IsRegular() || !strings.HasSuffix(ent.Name(), ".tar.gz") {
			continue
		}
		fi, err := ent.Info()
		if err != nil {
			return nil, fmt.Errorf("archive %s: %w", ent.Name(), err)
		}
		out = append(out, Archive{Name: ent.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

func pruneArchives(o Options, rep *Report) error {
	dir := filepath.Join(o.Srv, "archives")
	as, err := listArchives(dir)
	if err != nil {
		return err
	}
	for _, a := range Archives(as, o.Now, o.ArchivesAge) {
		if !o.DryRun {
			if err := os.Remove(filepath.Join(dir, a.Name)); err != nil {
				return fmt.Errorf("remove archive: %w", err)
			}
		}
		rep.Archives = append(rep.Archives, ArchiveReport{Name: a.Name, Size: a.Size, Modified: a.ModTime})
		rep.BytesFreed += a.Size
	}
	return nil
}
