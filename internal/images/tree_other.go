//go:build !linux

package images

import "os"

// removeTree deletes a build tree. Builds need debootstrap, so only Linux
// ever makes one; this keeps the package compiling elsewhere for its tests.
func removeTree(dir string) error { return os.RemoveAll(dir) }
