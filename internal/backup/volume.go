package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// A named volume's files are its mountpoint, <root>/<name>/_data for the
// engine's local driver: they go into the site's folder snapshot under
// that path, which names the volume.
const volumeData = "_data"

// Suffixes of the folders beside a volume's _data while it is restored:
// the restored files (in a _data of their own), then the previous ones kept until the restored site
// runs healthy. Both are in the volume's own folder, on its file system:
// the swap is two renames.
const (
	volumeRestoring = "_data.darse-restore"
	volumeOld       = "_data.darse-old"
)

// volumeOf returns the name of the volume whose files path is in a
// snapshot, or "" when path is not a volume's.
func volumeOf(path string) string {
	if filepath.Base(path) != volumeData {
		return ""
	}
	return filepath.Base(filepath.Dir(path))
}

// VolumeKey is the key in the site's compose file of its volume name
// (compose names it <project>_<key>), "" when name is not the site's.
func VolumeKey(site, name string) string {
	key, ok := strings.CutPrefix(name, site+"_")
	if !ok {
		return ""
	}
	return key
}

// RestoreVolume puts the run's copy of volume name (one of set.Volumes)
// in place of the files at mountpoint, the restored volume's: the
// current files are kept aside (PutBackVolume undoes the swap,
// DropOldVolume ends it) and the restored ones renamed in. The volume's
// containers must be stopped.
func (s *Service) RestoreVolume(ctx context.Context, set Set, name, mountpoint string) error {
	src, ok := set.Volumes[name]
	if !ok {
		return fmt.Errorf("backup %s of %s holds no volume %s", set.Run, set.Site, name)
	}
	if filepath.Base(mountpoint) != volumeData {
		return fmt.Errorf("restore volume %s: mountpoint %s is not a local volume's", name, mountpoint)
	}
	dir := filepath.Dir(mountpoint)
	fresh, old := filepath.Join(dir, volumeRestoring), filepath.Join(dir, volumeOld)
	if err := os.RemoveAll(fresh); err != nil {
		return fmt.Errorf("restore volume %s: %w", name, err)
	}
	// The volume's folder is restored, not _data: restic gives the root
	// of what it restores no owner nor mode, and _data's are the volume's.
	if err := s.Restic.run(ctx, nil, io.Discard, "restore", set.Files+":"+filepath.Dir(src), "--target", fresh); err != nil {
		return fmt.Errorf("restore volume %s of %s from backup %s: %w", name, set.Site, set.Run, err)
	}
	// An old copy left by a swap cut short is the state before it: kept.
	if _, err := os.Lstat(old); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(mountpoint, old); err != nil {
			return fmt.Errorf("restore volume %s: set its files aside: %w", name, err)
		}
	} else if err := os.RemoveAll(mountpoint); err != nil {
		return fmt.Errorf("restore volume %s: %w", name, err)
	}
	if err := os.Rename(filepath.Join(fresh, volumeData), mountpoint); err != nil {
		return fmt.Errorf("restore volume %s: swap the restored files in: %w", name, err)
	}
	return os.RemoveAll(fresh)
}

// PutBackVolume undoes RestoreVolume at mountpoint: the files set aside
// are the volume's again. Nothing set aside: nothing to do.
func PutBackVolume(mountpoint string) error {
	dir := filepath.Dir(mountpoint)
	old := filepath.Join(dir, volumeOld)
	os.RemoveAll(filepath.Join(dir, volumeRestoring))
	if _, err := os.Lstat(old); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.RemoveAll(mountpoint); err != nil {
		return fmt.Errorf("put volume back: %w", err)
	}
	if err := os.Rename(old, mountpoint); err != nil {
		return fmt.Errorf("put volume back: %w", err)
	}
	return nil
}

// DropOldVolume ends RestoreVolume at mountpoint: the files set aside go.
func DropOldVolume(mountpoint string) error {
	dir := filepath.Dir(mountpoint)
	if err := os.RemoveAll(filepath.Join(dir, volumeOld)); err != nil {
		return fmt.Errorf("remove a volume's previous files: %w", err)
	}
	return os.RemoveAll(filepath.Join(dir, volumeRestoring))
}
