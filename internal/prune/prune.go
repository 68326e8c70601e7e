// Package prune decides what `darse prune` removes: images no site
// (running or stopped) and no platform project uses, archives and ended
// operations past their retention. The decisions are pure functions of
// what the caller observed, so they are tested without an engine.
package prune

import (
	"strings"
	"time"
)

// DarseRepository is the prefix of every image darse builds (darse/nginx,
// darse/darse, ...).
const DarseRepository = "darse/"

// BuiltLabel is the label darse puts on the images it builds from a
// definition (images.LabelDefinition): an untagged image carrying it is an
// earlier build of darse's, left behind when its tag moved.
const BuiltLabel = "darse.image.definition"

// Image is one image in the engine.
type Image struct {
	ID     string
	Tags   []string // repo:tag; empty for an image whose tags moved away
	Size   int64
	Labels map[string]string
}

// Uses is every image something still needs: by reference (repo:tag as a
// compose file or .env names it) and by ID (what a container runs).
type Uses struct {
	Refs map[string]bool
	IDs  map[string]bool
	// Unreadable lists the project folders that failed to load: with any,
	// no darse image is removed, since one of them may need it.
	Unreadable []string
}

// NewUses is an empty Uses.
func NewUses() Uses { return Uses{Refs: map[string]bool{}, IDs: map[string]bool{}} }

// Candidate reports whether img is darse's to remove: every tag it has is
// a darse/ one or the Traefik tag the platform pins (pinned, may be
// empty), or it has no tag and carries darse's build label. An image with
// any other tag, or untagged without the label, belongs to another tool.
func Candidate(img Image, pinned string) bool {
	if len(img.Tags) == 0 {
		_, ok := img.Labels[BuiltLabel]
		return ok
	}
	for _, t := range img.Tags {
		if !strings.HasPrefix(t, DarseRepository) && (pinned == "" || t != pinned) {
			return false
		}
	}
	return true
}

// used reports whether anything needs img, by ID or by any of its tags.
func (u Uses) used(img Image) bool {
	if u.IDs[img.ID] || u.Refs[img.ID] {
		return true
	}
	for _, t := range img.Tags {
		if u.Refs[t] {
			return true
		}
	}
	return false
}

// Images returns the images to remove: darse's own that nothing uses.
// Nothing at all when some project could not be read.
func Images(imgs []Image, u Uses, pinned string) []Image {
	if len(u.Unreadable) > 0 {
		return nil
	}
	var out []Image
	for _, img := range imgs {
		if Candidate(img, pinned) && !u.used(img) {
			out = append(out, img)
		}
	}
	return out
}

// Archive is one final archive of a removed site's data.
type Archive struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Archives returns those written more than keep before now.
func Archives(as []Archive, now time.Time, keep time.Duration) []Archive {
	var out []Archive
	for _, a := range as {
		if now.Sub(a.ModTime) > keep {
			out = append(out, a)
		}
	}
	return out
}
