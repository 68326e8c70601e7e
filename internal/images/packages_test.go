package images

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const status = `Package: zlib1g
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 1:1.2.13.dfsg-1
Description: compression library - runtime
 zlib is a library implementing the deflate compression method found
 in gzip and PKZIP.

Package: nginx-light
Status: deinstall ok config-files
Architecture: amd64
Version: 1.22.1-9

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u10
Conffiles:
 /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9+deb12u10
`

func TestParseStatus(t *testing.T) {
	pkgs, err := parseStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	got := string(PackageList(pkgs))
	// Only installed packages (not one whose config files are all that
	// is left), sorted by name then architecture; continuation lines are
	// not fields.
	want := "libc6 2.36-9+deb12u10 amd64\nlibc6 2.36-9+deb12u10 i386\nzlib1g 1:1.2.13.dfsg-1 amd64\n"
	if got != want {
		t.Errorf("package list:\n%s\nwant:\n%s", got, want)
	}
}

func TestPackagesDigestFollowsVersions(t *testing.T) {
	a := []Package{{"libc6", "2.36-9+deb12u9", "amd64"}, {"nginx-light", "1.22.1-9", "amd64"}}
	b := []Package{{"libc6", "2.36-9+deb12u10", "amd64"}, {"nginx-light", "1.22.1-9", "amd64"}}
	da, db := PackagesDigest(a), PackagesDigest(b)
	if da == db {
		t.Fatal("a security update did not change the digest")
	}
	if da != PackagesDigest(append([]Package(nil), a...)) {
		t.Error("equal package sets, different digests")
	}
	if !strings.HasPrefix(da, "sha256:") || len(da) != len("sha256:")+64 {
		t.Errorf("digest %q", da)
	}
	if tag := ContentTag("darse/nginx:bookworm", da); tag != "darse/nginx:bookworm-"+da[7:19] {
		t.Errorf("content tag %q", tag)
	}
	if !tagRe.MatchString(ContentTag("darse/php-fpm:8.2-bookworm", da)) {
		t.Error("content tag is not a valid tag")
	}
}

func TestDefinitionDigest(t *testing.T) {
	d := Definition{Name: "web", Tag: "darse/web:bookworm",
		Debootstrap: &Debootstrap{Suite: "bookworm", Packages: []string{"nginx-light"}},
		Config:      Config{Cmd: []string{"nginx"}},
		Overlay:     fstest.MapFS{"start.sh": {Data: []byte("#!/bin/sh\n")}}}
	base, err := DefinitionDigest(d)
	if err != nil {
		t.Fatal(err)
	}
	changed := func(what string, edit func(*Definition)) {
		t.Helper()
		e := d
		edit(&e)
		got, err := DefinitionDigest(e)
		if err != nil {
			t.Fatal(err)
		}
		if got == base {
			t.Errorf("%s: digest unchanged", what)
		}
	}
	changed("package added", func(e *Definition) {
		e.Debootstrap = &Debootstrap{Suite: "bookworm", Packages: []string{"nginx-light", "curl"}}
	})
	changed("cmd", func(e *Definition) { e.Config.Cmd = []string{"nginx", "-g", "daemon off;"} })
	changed("overlay content", func(e *Definition) {
		e.Overlay = fstest.MapFS{"start.sh": {Data: []byte("#!/bin/sh\nexit 0\n")}}
	})
	changed("overlay mode", func(e *Definition) { e.Overlay = fstest.MapFS{"start.sh": {Data: []byte("echo\n")}} })
	if again, _ := DefinitionDigest(d); again != base {
		t.Error("same definition, different digest")
	}
}

func TestManifestCurrent(t *testing.T) {
	m := Manifest{Digest: "sha256:p", Definition: "sha256:d", Suites: []string{"bookworm", "bookworm-updates", "bookworm-security"},
		Built: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	l := m.Labels()
	if l[LabelBuilt] != "2025-03-01T12:00:00Z" || l[LabelSuites] != "bookworm bookworm-updates bookworm-security" {
		t.Errorf("labels %v", l)
	}
	if !m.Current(l) {
		t.Error("an image is not current against its own labels")
	}
	for _, stale := range []map[string]string{
		{LabelPackages: "sha256:older", LabelDefinition: "sha256:d"},
		{LabelPackages: "sha256:p", LabelDefinition: "sha256:edited"},
		{}, // built before darse labelled images
	} {
		if m.Current(stale) {
			t.Errorf("current against %v", stale)
		}
	}
}

func TestUpgradeSources(t *testing.T) {
	d := &Debootstrap{Suite: "bookworm", Packages: []string{"nginx-light"}}
	got := string(sourcesList(d, DefaultMirror, DefaultSecurityMirror))
	want := "deb http://deb.debian.org/debian bookworm main\n" +
		"deb http://deb.debian.org/debian bookworm-updates main\n" +
		"deb http://deb.debian.org/debian-security bookworm-security main\n"
	if got != want {
		t.Errorf("sources.list:\n%s\nwant:\n%s", got, want)
	}
	cmds := upgradeCommands()
	if len(cmds) != 2 || cmds[0][len(cmds[0])-1] != "update" || cmds[1][len(cmds[1])-1] != "dist-upgrade" {
		t.Errorf("commands %q: want apt-get update, then dist-upgrade", cmds)
	}
	if cmds[0][0] != "apt-get" || strings.Join(cmds[1], " ") == strings.Join(cmds[0], " ") {
		t.Errorf("commands %q", cmds)
	}
}

func TestTooOld(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	built := func(d time.Duration) map[string]string {
		return map[string]string{LabelBuilt: now.Add(-d).Format(time.RFC3339)}
	}
	day := 24 * time.Hour
	for _, c := range []struct {
		labels map[string]string
		maxAge time.Duration
		want   bool
	}{
		{built(16 * day), 15 * day, true},
		{built(14 * day), 15 * day, false},
		{built(100 * day), 0, false},
		{map[string]string{}, 15 * day, true},
		{map[string]string{LabelBuilt: "yesterday"}, 15 * day, true},
	} {
		if got := TooOld(c.labels, c.maxAge, now); got != c.want {
			t.Errorf("TooOld(%v, %v) = %v, want %v", c.labels, c.maxAge, got, c.want)
		}
	}
}
