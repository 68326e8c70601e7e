// Package version says which build of darse is running: its version, the
// commit it was built from and when, for `darse --version`, `darse platform
// status` and the panel.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Set at link time for release builds, e.g.
//
//	go build -ldflags "-X github.com/darse/darse/internal/version.Version=0.2.0 \
//	  -X github.com/darse/darse/internal/version.Commit=513dafb \
//	  -X github.com/darse/darse/internal/version.Date=2026-12-01T09:00:00Z"
//
// Empty Commit and Date are read from the build information Go records
// when it builds from a git checkout (not from a worktree, nor with
// -buildvcs=false).
var (
	Version = "0.2.0-dev"
	Commit  = ""
	Date    = ""
)

// Info is the running build, as `darse platform status --json` prints it.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`    // short revision; "" when unknown
	Dirty     bool   `json:"dirty"`     // built from a checkout with uncommitted changes
	Built     string `json:"built"`     // build time (-ldflags), RFC 3339; "" when unknown
	Committed string `json:"committed"` // the commit's time (vcs.time); "" when unknown
}

// Get returns the running build's information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return From(bi, Version, Commit, Date)
}

// String is the one line `darse --version` prints after "darse ".
func String() string { return Get().String() }

// From combines the link-time values with Go's build information (nil
// when absent); link-time values win.
func From(bi *debug.BuildInfo, version, commit, date string) Info {
	info := Info{Version: version, Commit: commit, Built: date}
	if bi == nil {
		return info
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if info.Commit == "" {
		info.Commit = settings["vcs.revision"]
		if len(info.Commit) > 12 {
			info.Commit = info.Commit[:12]
		}
		info.Dirty = settings["vcs.modified"] == "true"
	}
	if info.Built == "" {
		info.Committed = settings["vcs.time"]
	}
	return info
}

// String reads e.g. "0.2.0-dev (commit 513dafb, built 2026-12-01T09:00:00Z)".
func (i Info) String() string {
	var parts []string
	commit := i.Commit
	if commit == "" {
		commit = "unknown"
	}
	if i.Dirty {
		commit += " with uncommitted changes"
	}
	parts = append(parts, "commit "+commit)
	switch {
	case i.Built != "":
		parts = append(parts, "built "+i.Built)
	case i.Committed != "":
		parts = append(parts, "committed "+i.Committed)
	}
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(parts, ", "))
}
