package backup

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Tags carried by darse's snapshots.
const (
	tagSite     = "site"     // site:<name>, on both parts of a site's backup
	tagRun      = "run"      // run:<id>: the snapshots of one backup run
	tagPart     = "part"     // part:files (the folder) or part:db (the dump)
	tagPlatform = "platform" // the store and darse.yml
	partFiles   = "files"
	partDB      = "db"
)

// SiteTag is the tag every snapshot of the site carries.
func SiteTag(site string) string { return tagSite + ":" + site }

// Keep is the retention of a site's backups.
type Keep struct{ Daily, Weekly, Monthly int }

// Service backs sites and the platform up to one repository.
type Service struct {
	Restic *Restic
	// Host is the host name recorded in snapshots; restic picks the
	// parent snapshot (what makes a backup incremental) among its own.
	Host string
	Keep Keep
	// MetaDir holds each site's record while its folder is backed up
	// (<srv>/conf/backup), beside but outside the folder.
	MetaDir string

	initMu sync.Mutex
	inited bool // the repository was seen (or made): no restic run to ask again
}

// init makes the repository unless this Service saw it already.
func (s *Service) init(ctx context.Context) error {
	s.initMu.Lock()
	defer s.initMu.Unlock()
	if s.inited {
		return nil
	}
	if err := s.Restic.Init(ctx); err != nil {
		return err
	}
	s.inited = true
	return nil
}

// Dump writes a consistent logical dump of a site's database on w as it
// is made (e.g. mariadb-dump run in the database's container through the
// engine's Exec API), and fails when the dump does (exits non-zero).
type Dump func(ctx context.Context, w io.Writer) error

// Load reads a dump from r into the site's database, and fails when the
// loading command does.
type Load func(ctx context.Context, r io.Reader) error

// Site is what a site's backup is made of.
type Site struct {
	Name   string
	Dir    string          // its folder
	Record json.RawMessage // what the store knows of it (store.SiteRecord)
	// DB is its database, nil when its template declares none; its files
	// (DBDir) are then left out of the folder's snapshot: the dump is the
	// consistent copy.
	DB    Dump
	DBDir string // the database's folder, relative to Dir
	// Volumes are its named volumes' files on the host, by volume name
	// (the engine's mountpoints, <root>/<name>/_data): they go into the
	// folder's snapshot beside it.
	Volumes map[string]string
}

// Set is one backup run of a site: its folder's snapshot and, for a site
// with a database, its dump's.
type Set struct {
	Site       string    `json:"site"`
	Run        string    `json:"run"`
	Time       time.Time `json:"time"`
	Files      string    `json:"files_snapshot"`
	DB         string    `json:"db_snapshot,omitempty"`
	BytesAdded int64     `json:"bytes_added"`
	Size       int64     `json:"size"` // bytes the run read
	// Volumes are the named volumes the run holds, by name: their paths
	// in the folder's snapshot.
	Volumes    map[string]string `json:"volumes,omitempty"`
	dirPath    string            // the folder's path in the snapshot
	recordPath string
	dbPath     string
}

// Complete says whether the run got to its folder's snapshot: a run
// without one was cut short and restores nothing.
func (s Set) Complete() bool { return s.Files != "" }

// NewRun names a new backup run: its time, then a random suffix.
func NewRun(now time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// dumpFile is the name the dump has in its snapshot.
func dumpFile(site string) string { return "/" + site + "/db.sql" }

// BackupSite takes one backup of the site, tagged with run. The
// database's dump goes first: a dump that fails fails the backup before
// anything is stored; a folder snapshot that fails then removes the dump's.
func (s *Service) BackupSite(ctx context.Context, site Site, run string) (Set, error) {
	set := Set{Site: site.Name, Run: run, Time: time.Now().UTC()}
	if st, err := os.Stat(site.Dir); err != nil || !st.IsDir() {
		return set, fmt.Errorf("backup of %s: its folder %s cannot be read: %v", site.Name, site.Dir, cmp.Or(err, errors.New("not a folder")))
	}
	if err := s.init(ctx); err != nil {
		return set, err
	}
	tags := []string{SiteTag(site.Name), tagRun + ":" + run}
	if site.DB != nil {
		args := []string{"--host", s.Host, "--tag", strings.Join(append(slices.Clone(tags), tagPart+":"+partDB), ","),
			"--stdin-filename", strings.TrimPrefix(dumpFile(site.Name), "/")}
		sum, derr, err := s.Restic.backupFrom(ctx, site.DB, args...)
		if derr != nil {
			err = fmt.Errorf("database dump of %s failed, no snapshot kept: %w", site.Name, derr)
		}
		if err != nil {
			// Whatever restic kept despite the failure goes too.
			return set, s.undo(ctx, set, err)
		}
		set.DB, set.BytesAdded = sum.SnapshotID, sum.DataAdded
	}
	record, err := s.writeRecord(site)
	if err != nil {
		return set, s.undo(ctx, set, err)
	}
	defer os.Remove(record)
	args := []string{"--host", s.Host, "--tag", strings.Join(append(tags, tagPart+":"+partFiles), ",")}
	if site.DB != nil && site.DBDir != "" {
		args = append(args, "--exclude", filepath.Join(site.Dir, site.DBDir))
	}
	paths := []string{site.Dir, record}
	for _, name := range slices.Sorted(maps.Keys(site.Volumes)) {
		mp := site.Volumes[name]
		if volumeOf(mp) != name {
			return set, s.undo(ctx, set, fmt.Errorf("backup of %s: volume %s: its mountpoint %s is not a local volume's (<root>/%s/_data)", site.Name, name, mp, name))
		}
		if _, err := os.Stat(mp); err != nil {
			return set, s.undo(ctx, set, fmt.Errorf("backup of %s: volume %s cannot be read on this host: %w", site.Name, name, err))
		}
		paths = append(paths, mp)
	}
	sum, err := s.Restic.backup(ctx, append(args, paths...)...)
	if err != nil {
		return set, s.undo(ctx, set, fmt.Errorf("snapshot of %s's folder: %w", site.Name, err))
	}
	set.Files, set.BytesAdded = sum.SnapshotID, set.BytesAdded+sum.DataAdded
	return set, nil
}

// undo forgets whatever the run stored (its dump; a folder snapshot
// restic kept despite an error, exit status 3), so that a failed run
// leaves no snapshot; err is returned, with the undo's failure if any.
func (s *Service) undo(ctx context.Context, set Set, err error) error {
	ctx = context.WithoutCancel(ctx)
	snaps, lerr := s.Restic.Snapshots(ctx, SiteTag(set.Site), tagRun+":"+set.Run)
	if lerr != nil {
		return errors.Join(err, fmt.Errorf("list the failed run's snapshots: %w", lerr))
	}
	var ids []string
	for _, sn := range snaps {
		ids = append(ids, sn.ID)
	}
	if ferr := s.Restic.forget(ctx, ids); ferr != nil {
		return errors.Join(err, fmt.Errorf("forget the failed run's snapshots: %w", ferr))
	}
	return err
}

// DropRun forgets every snapshot of the site's run (one cut short).
func (s *Service) DropRun(ctx context.Context, site, run string) error {
	err := s.undo(ctx, Set{Site: site, Run: run}, nil)
	var re *Error
	if errors.As(err, &re) && re.Code == exitRepoMissing {
		return nil
	}
	return err
}

// writeRecord writes the site's record where its folder's snapshot takes it.
func (s *Service) writeRecord(site Site) (string, error) {
	if err := os.MkdirAll(s.MetaDir, 0o700); err != nil {
		return "", fmt.Errorf("site record: %w", err)
	}
	path := filepath.Join(s.MetaDir, site.Name+".json")
	if err := os.WriteFile(path, site.Record, 0o600); err != nil {
		return "", fmt.Errorf("site record: %w", err)
	}
	return path, nil
}

// Sets lists the site's backup runs, newest first; site empty: every
// site's. Runs cut short (no folder snapshot) are listed too.
func (s *Service) Sets(ctx context.Context, site string) ([]Set, error) {
	tags := []string{}
	if site != "" {
		tags = append(tags, SiteTag(site))
	}
	snaps, err := s.Restic.Snapshots(ctx, tags...)
	var re *Error
	if errors.As(err, &re) && re.Code == exitRepoMissing {
		return []Set{}, nil
	}
	if err != nil {
		return nil, err
	}
	return sets(snaps), nil
}

// sets groups site snapshots by run.
func sets(snaps []Snapshot) []Set {
	byRun := map[string]*Set{}
	for _, sn := range snaps {
		site, run := sn.Tag(tagSite), sn.Tag(tagRun)
		if site == "" || run == "" {
			continue
		}
		key := site + "\x00" + run
		set := byRun[key]
		if set == nil {
			set = &Set{Site: site, Run: run, Time: sn.Time}
			byRun[key] = set
		}
		if sn.Time.Before(set.Time) {
			set.Time = sn.Time
		}
		if sn.Summary != nil {
			set.BytesAdded += sn.Summary.DataAdded
			set.Size += sn.Summary.TotalBytesProcessed
		}
		switch sn.Tag(tagPart) {
		case partFiles:
			set.Files = sn.ID
			for _, p := range sn.Paths {
				if v := volumeOf(p); v != "" {
					if set.Volumes == nil {
						set.Volumes = map[string]string{}
					}
					set.Volumes[v] = p
				} else if strings.HasSuffix(p, ".json") {
					set.recordPath = p
				} else {
					set.dirPath = p
				}
			}
		case partDB:
			set.DB = sn.ID
			if len(sn.Paths) > 0 {
				set.dbPath = sn.Paths[0]
			}
		}
	}
	out := make([]Set, 0, len(byRun))
	for _, set := range byRun {
		out = append(out, *set)
	}
	slices.SortFunc(out, func(a, b Set) int {
		return cmp.Or(b.Time.Compare(a.Time), strings.Compare(a.Site, b.Site), strings.Compare(b.Run, a.Run))
	})
	return out
}

// ErrNoBackup is asked for a run the repository does not hold.
var ErrNoBackup = errors.New("no such backup")

// Find returns the site's complete run named by id (a run, or the ID or
// short ID of one of its snapshots); id empty: the latest.
func (s *Service) Find(ctx context.Context, site, id string) (Set, error) {
	list, err := s.Sets(ctx, site)
	if err != nil {
		return Set{}, err
	}
	for _, set := range list {
		if !set.Complete() {
			continue
		}
		if id == "" || id == set.Run || strings.HasPrefix(set.Files, id) && len(id) >= 8 || set.DB != "" && strings.HasPrefix(set.DB, id) && len(id) >= 8 {
			return set, nil
		}
	}
	if id == "" {
		return Set{}, fmt.Errorf("site %s: %w: it has no complete backup in the repository", site, ErrNoBackup)
	}
	return Set{}, fmt.Errorf("site %s: %w %q", site, ErrNoBackup, id)
}

// Forget applies the retention to the site's runs and to nothing else:
// restic chooses which folder snapshots to keep among this site's only
// (--tag site:NAME), and the runs it drops are forgotten by ID, dump
// included, each checked to carry the site's tag. It returns the runs
// forgotten.
func (s *Service) Forget(ctx context.Context, site string) ([]string, error) {
	k := s.Keep
	if k == (Keep{}) {
		return nil, nil
	}
	// One group (--group-by ''): every folder snapshot of the site.
	args := []string{"forget", "--dry-run", "--tag", SiteTag(site) + "," + tagPart + ":" + partFiles, "--group-by", ""}
	for _, p := range []struct {
		flag string
		n    int
	}{{"--keep-daily", k.Daily}, {"--keep-weekly", k.Weekly}, {"--keep-monthly", k.Monthly}} {
		if p.n > 0 {
			args = append(args, p.flag, strconv.Itoa(p.n))
		}
	}
	var groups []struct {
		Remove []Snapshot `json:"remove"`
	}
	if err := s.Restic.runJSON(ctx, &groups, args...); err != nil {
		return nil, fmt.Errorf("retention of %s: %w", site, err)
	}
	drop := map[string]bool{}
	for _, g := range groups {
		for _, sn := range g.Remove {
			if sn.Tag(tagSite) != site {
				return nil, fmt.Errorf("retention of %s: restic chose snapshot %s of site %q: refused", site, sn.ShortID, sn.Tag(tagSite))
			}
			drop[sn.Tag(tagRun)] = true
		}
	}
	if len(drop) == 0 {
		return nil, nil
	}
	snaps, err := s.Restic.Snapshots(ctx, SiteTag(site))
	if err != nil {
		return nil, fmt.Errorf("retention of %s: %w", site, err)
	}
	var ids, runs []string
	for _, sn := range snaps {
		if sn.Tag(tagSite) == site && drop[sn.Tag(tagRun)] {
			ids = append(ids, sn.ID)
		}
	}
	for run := range drop {
		runs = append(runs, run)
	}
	slices.Sort(runs)
	if err := s.Restic.forget(ctx, ids); err != nil {
		return nil, fmt.Errorf("retention of %s: %w", site, err)
	}
	return runs, nil
}

// ReadRecord returns the site record the run holds.
func (s *Service) ReadRecord(ctx context.Context, set Set) ([]byte, error) {
	if set.recordPath == "" {
		return nil, fmt.Errorf("backup %s of %s holds no site record", set.Run, set.Site)
	}
	var out strings.Builder
	if err := s.Restic.run(ctx, nil, &out, "dump", set.Files, set.recordPath); err != nil {
		return nil, fmt.Errorf("read the site record of backup %s: %w", set.Run, err)
	}
	return []byte(out.String()), nil
}

// RestoreFiles restores the run's folder into target, which must not
// exist yet (a fresh folder, swapped in afterwards).
func (s *Service) RestoreFiles(ctx context.Context, set Set, target string) error {
	if set.dirPath == "" {
		return fmt.Errorf("backup %s of %s holds no folder", set.Run, set.Site)
	}
	if _, err := os.Lstat(target); err == nil {
		return fmt.Errorf("restore %s: %s exists already", set.Site, target)
	}
	if err := s.Restic.run(ctx, nil, io.Discard, "restore", set.Files+":"+set.dirPath, "--target", target); err != nil {
		return fmt.Errorf("restore the folder of %s from backup %s: %w", set.Site, set.Run, err)
	}
	return nil
}

// LoadDump streams the run's dump from restic into load.
func (s *Service) LoadDump(ctx context.Context, set Set, load Load) error {
	if set.DB == "" {
		return fmt.Errorf("backup %s of %s holds no database dump", set.Run, set.Site)
	}
	if load == nil {
		return errors.New("load dump: no loader")
	}
	args := []string{"dump", set.DB, cmp.Or(set.dbPath, dumpFile(set.Site))}
	pr, pw := io.Pipe()
	dump := s.Restic.command(ctx, args...)
	var dumpErr strings.Builder
	dump.Stdout, dump.Stderr = pw, &dumpErr
	if err := dump.Start(); err != nil {
		return fmt.Errorf("read the dump of %s: %w", set.Site, err)
	}
	done := make(chan error, 1)
	go func() {
		err := dump.Wait()
		pw.CloseWithError(cmp.Or(err, io.EOF))
		done <- err
	}()
	lerr := load(ctx, pr)
	pr.Close() // a loader that stopped early frees restic (EPIPE)
	derr := <-done
	if err := s.Restic.wrap(args, derr, dumpErr.String()); err != nil && lerr == nil {
		return fmt.Errorf("read the dump of %s from backup %s: %w", set.Site, set.Run, err)
	}
	if lerr != nil {
		return fmt.Errorf("load the dump of %s: %w", set.Site, lerr)
	}
	return nil
}

// PlatformSet is one backup of the platform.
type PlatformSet struct {
	ID         string    `json:"snapshot"`
	Time       time.Time `json:"time"`
	BytesAdded int64     `json:"bytes_added"`
}

// BackupPlatform backs up the store, copied online with copy (SQLite's
// VACUUM INTO a file in MetaDir, removed afterwards), and darse.yml.
func (s *Service) BackupPlatform(ctx context.Context, copyStore func(ctx context.Context, path string) error, config string) (PlatformSet, error) {
	if err := s.init(ctx); err != nil {
		return PlatformSet{}, err
	}
	if err := os.MkdirAll(s.MetaDir, 0o700); err != nil {
		return PlatformSet{}, fmt.Errorf("platform backup: %w", err)
	}
	db := filepath.Join(s.MetaDir, "darse.db")
	os.Remove(db) // left by a run that died: VACUUM INTO needs a new file
	if err := copyStore(ctx, db); err != nil {
		return PlatformSet{}, fmt.Errorf("platform backup: %w", err)
	}
	defer os.Remove(db)
	paths := []string{db}
	if _, err := os.Stat(config); err == nil {
		paths = append(paths, config)
	}
	sum, err := s.Restic.backup(ctx, append([]string{"--host", s.Host, "--tag", tagPlatform}, paths...)...)
	if err != nil {
		return PlatformSet{}, fmt.Errorf("platform backup: %w", err)
	}
	return PlatformSet{ID: sum.SnapshotID, Time: time.Now().UTC(), BytesAdded: sum.DataAdded}, nil
}

// LatestPlatform returns the newest backup of the platform: the snapshot,
// and the paths in it of the store's copy and of darse.yml ("" if none).
func (s *Service) LatestPlatform(ctx context.Context) (snap Snapshot, store, config string, err error) {
	snaps, err := s.Restic.Snapshots(ctx, tagPlatform)
	if err != nil {
		return snap, "", "", fmt.Errorf("platform backups: %w", err)
	}
	for _, sn := range snaps {
		if sn.Time.After(snap.Time) {
			snap = sn
		}
	}
	if snap.ID == "" {
		return snap, "", "", fmt.Errorf("platform: %w: the repository holds no backup of the platform (backup run --all takes one)", ErrNoBackup)
	}
	for _, p := range snap.Paths {
		switch filepath.Base(p) {
		case "darse.db":
			store = p
		case "darse.yml":
			config = p
		}
	}
	if store == "" {
		return snap, "", "", fmt.Errorf("platform backup %s holds no store", snap.ShortID)
	}
	return snap, store, config, nil
}

// DumpFile writes the file at path in snapshot id to target, a new file.
func (s *Service) DumpFile(ctx context.Context, id, path, target string) error {
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("restore %s: %w", filepath.Base(path), err)
	}
	err = s.Restic.run(ctx, nil, f, "dump", id, path)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(target)
		return fmt.Errorf("restore %s from snapshot %.8s: %w", filepath.Base(path), id, err)
	}
	return nil
}
