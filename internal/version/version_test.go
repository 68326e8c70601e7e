package version

import (
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	vcs := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "513dafb0123456789abcdef0123456789abcdef0"},
		{Key: "vcs.time", Value: "2026-12-01T09:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	for _, c := range []struct {
		name                string
		bi                  *debug.BuildInfo
		version, commit, at string
		want                string
	}{
		{"no build info", nil, "0.2.0-dev", "", "", "0.2.0-dev (commit unknown)"},
		{"without vcs", &debug.BuildInfo{}, "0.2.0-dev", "", "", "0.2.0-dev (commit unknown)"},
		{"from vcs", vcs, "0.2.0-dev", "", "", "0.2.0-dev (commit 513dafb01234 with uncommitted changes, committed 2026-12-01T09:00:00Z)"},
		{"link time wins", vcs, "0.2.0", "abc1234-dirty", "2026-12-02T10:00:00Z", "0.2.0 (commit abc1234-dirty, built 2026-12-02T10:00:00Z)"},
		{"link-time commit, vcs time", vcs, "0.2.0", "abc1234", "", "0.2.0 (commit abc1234, committed 2026-12-01T09:00:00Z)"},
	} {
		if got := From(c.bi, c.version, c.commit, c.at).String(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
