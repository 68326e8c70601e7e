package metrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
)

// DiskUsage adds up the disk space (allocated blocks, as du) of the trees
// at roots. Each inode counts once however many names it has (seen is
// shared between the roots, so a hard link between a site's folder and
// its volume counts once), symbolic links are counted as themselves and
// never followed, and a walk stays on the file system of its root (a
// mount inside a tree is not counted: it is someone else's). An entry
// that cannot be read is skipped and the walk goes on: the figure is what
// could be counted, and the error says how many were skipped.
func DiskUsage(ctx context.Context, roots ...string) (uint64, error) {
	w := &diskWalk{seen: map[fileID]bool{}}
	for _, root := range roots {
		st, err := lstat(root)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			w.fail(err)
			continue
		}
		w.dev = uint64(st.Dev)
		w.walk(ctx, root)
		if err := ctx.Err(); err != nil {
			return w.total, err
		}
	}
	if w.failed > 0 {
		return w.total, fmt.Errorf("%d entries not counted, the first: %w", w.failed, w.first)
	}
	return w.total, nil
}

// fileID is an inode: what two hard links share.
type fileID struct{ dev, ino uint64 }

type diskWalk struct {
	dev    uint64
	seen   map[fileID]bool
	total  uint64
	failed int
	first  error
}

func (w *diskWalk) fail(err error) {
	if w.failed == 0 {
		w.first = err
	}
	w.failed++
}

func lstat(path string) (*syscall.Stat_t, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	return &st, nil
}

// walk counts path and, when it is a directory on w.dev, what is under
// it. Entries vanishing during the walk are skipped: a site runs while it
// is measured.
func (w *diskWalk) walk(ctx context.Context, path string) {
	if ctx.Err() != nil {
		return
	}
	st, err := lstat(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			w.fail(err)
		}
		return
	}
	if uint64(st.Dev) != w.dev {
		return // another file system mounted here
	}
	id := fileID{uint64(st.Dev), uint64(st.Ino)}
	if w.seen[id] {
		return
	}
	w.seen[id] = true
	w.total += uint64(st.Blocks) * 512
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return
	}
	names, err := readNames(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			w.fail(err)
		}
	}
	for _, n := range names {
		w.walk(ctx, filepath.Join(path, n))
	}
}

// readNames lists a directory and closes it before its entries are
// walked: a deep tree must not hold one descriptor per level.
func readNames(path string) ([]string, error) {
	dir, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return names, fmt.Errorf("read %s: %w", path, err)
	}
	return names, nil
}

// DiskConfig tunes a DiskWalker; zero fields take the defaults.
type DiskConfig struct {
	// UsersDir holds the sites' folders (<srv>/users).
	UsersDir string
	// Sites lists the sites to measure (the store's).
	Sites func(ctx context.Context) ([]string, error)
	// Volumes gives each site's named volumes' mountpoints, as the engine
	// names them on the host (may be nil: folders only).
	Volumes func(ctx context.Context) (map[string][]string, error)
	// VolumePrefix is put before each mountpoint: where the host's root
	// is seen from here ("/host" in the panel's container, "" on the host).
	VolumePrefix string
	// Interval is how old a site's figure may grow before it is walked
	// again (default 15m).
	Interval time.Duration
	// Step is how often the walker wakes (default 10s) and Budget how
	// long it may walk then (default 1s): the walks take at most a tenth
	// of one core's time and I/O, one site at a time, and a new site is
	// measured within a step.
	Step, Budget time.Duration
	Now          func() time.Time
}

// DiskWalker measures each site's folder and volumes on a slow
// schedule, one site at a time, and keeps the last figures.
type DiskWalker struct {
	cfg DiskConfig
	log *slog.Logger

	mu    sync.Mutex
	sizes map[string]diskFigure
}

type diskFigure struct {
	bytes uint64
	at    time.Time
}

// NewDiskWalker returns a walker; Run makes it walk.
func NewDiskWalker(cfg DiskConfig, log *slog.Logger) *DiskWalker {
	if cfg.Interval == 0 {
		cfg.Interval = 15 * time.Minute
	}
	if cfg.Step == 0 {
		cfg.Step = 10 * time.Second
	}
	if cfg.Budget == 0 {
		cfg.Budget = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &DiskWalker{cfg: cfg, log: log, sizes: map[string]diskFigure{}}
}

// DiskBytes returns the last figure of every site measured.
func (d *DiskWalker) DiskBytes() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]uint64, len(d.sizes))
	for s, f := range d.sizes {
		out[s] = f.bytes
	}
	return out
}

// Run walks a step's worth of due sites every Step until ctx ends.
func (d *DiskWalker) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.Step)
	defer t.Stop()
	for {
		if err := d.Step(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("disk use", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step walks the sites due (never measured first, then the oldest
// figures past Interval) until Budget is spent, and forgets deleted sites.
func (d *DiskWalker) Step(ctx context.Context) error {
	names, err := d.cfg.Sites(ctx)
	if err != nil {
		return fmt.Errorf("disk use: list sites: %w", err)
	}
	due := d.due(names)
	if len(due) == 0 {
		return nil
	}
	var vols map[string][]string
	if d.cfg.Volumes != nil {
		if vols, err = d.cfg.Volumes(ctx); err != nil {
			return fmt.Errorf("disk use: list volumes: %w", err)
		}
	}
	start := time.Now()
	var errs []error
	for _, name := range due {
		if time.Since(start) >= d.cfg.Budget {
			break
		}
		roots := []string{filepath.Join(d.cfg.UsersDir, name)}
		for _, mp := range vols[name] {
			roots = append(roots, filepath.Join(d.cfg.VolumePrefix, mp))
		}
		n, err := DiskUsage(ctx, roots...)
		if err != nil {
			errs = append(errs, fmt.Errorf("site %s: %w", name, err))
			if ctx.Err() != nil {
				break
			}
			// Keep what could be counted: a figure short of an
			// unreadable entry beats none, and the error is logged.
		}
		d.mu.Lock()
		d.sizes[name] = diskFigure{bytes: n, at: d.cfg.Now()}
		d.mu.Unlock()
	}
	return errors.Join(errs...)
}

// due orders the sites to walk and drops the figures of sites gone.
func (d *DiskWalker) due(names []string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	keep := make(map[string]bool, len(names))
	now := d.cfg.Now()
	var due []string
	for _, n := range names {
		keep[n] = true
		if f, ok := d.sizes[n]; !ok || now.Sub(f.at) >= d.cfg.Interval {
			due = append(due, n)
		}
	}
	for n := range d.sizes {
		if !keep[n] {
			delete(d.sizes, n)
		}
	}
	sort.SliceStable(due, func(i, j int) bool {
		return d.sizes[due[i]].at.Before(d.sizes[due[j]].at) // zero (never) first
	})
	return due
}
