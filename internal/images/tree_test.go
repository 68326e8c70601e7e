package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// writeFiles creates files (name → content; a trailing "/" makes a folder).
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteTar(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"etc/passwd":     "root:x:0:0::/root:/bin/bash\n",
		"usr/bin/tool":   "#!/bin/sh\n",
		"dev/null-ish":   "skipped: the engine provides /dev",
		"proc/":          "",
		"srv/data/":      "",
		"var/empty.conf": "",
	})
	if err := os.Chmod(filepath.Join(root, "usr/bin/tool"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool2")); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	if err := writeTar(context.Background(), &buf, root); err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		names = append(names, h.Name)
	}
	want := []string{"bin", "dev/", "etc/", "etc/passwd", "proc/", "srv/", "srv/data/", "usr/", "usr/bin/", "usr/bin/tool", "usr/bin/tool2", "var/", "var/empty.conf"}
	if !slices.Equal(names, want) {
		t.Fatalf("entries:\n got %q\nwant %q", names, want)
	}
	if h := got["bin"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Errorf("bin: %+v", h)
	}
	if h := got["usr/bin/tool"]; h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 || h.Size != 10 {
		t.Errorf("tool: type %c mode %o size %d", h.Typeflag, h.Mode, h.Size)
	}
	if h := got["usr/bin/tool2"]; h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/tool" {
		t.Errorf("tool2: type %c link %q, want a hard link to usr/bin/tool", h.Typeflag, h.Linkname)
	}
	for name, h := range got {
		if h.Uname != "" || h.Gname != "" || h.Uid != os.Getuid() {
			t.Errorf("%s: owner %q/%q %d, want numeric %d only", name, h.Uname, h.Gname, h.Uid, os.Getuid())
		}
	}
}

func TestWriteTarCancelled(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a": "a"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := writeTar(ctx, io.Discard, root); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestCopyOverlay(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"etc/nginx/nginx.conf": "package default",
		"etc/outside-target":   "must not change",
	})
	// A package's symlink where the overlay puts a file: replaced, not followed.
	if err := os.Symlink("../outside-target", filepath.Join(root, "etc/nginx/link.conf")); err != nil {
		t.Fatal(err)
	}
	overlay := fstest.MapFS{
		"etc/nginx/nginx.conf": {Data: []byte("ours")},
		"etc/nginx/link.conf":  {Data: []byte("ours too")},
		"usr/local/bin/start":  {Data: []byte("#!/bin/sh\nexec nginx\n")},
		"srv/data/index.html":  {Data: []byte("<p>hi</p>")},
	}
	if err := copyOverlay(overlay, root); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		content string
		mode    fs.FileMode
	}{
		"etc/nginx/nginx.conf": {"ours", 0o644},
		"etc/nginx/link.conf":  {"ours too", 0o644},
		"etc/outside-target":   {"must not change", 0o644},
		"usr/local/bin/start":  {"#!/bin/sh\nexec nginx\n", 0o755},
		"srv/data/index.html":  {"<p>hi</p>", 0o644},
	} {
		p := filepath.Join(root, name)
		st, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		data, _ := os.ReadFile(p)
		if string(data) != want.content || st.Mode() != want.mode {
			t.Errorf("%s: %q %v, want %q %v", name, data, st.Mode(), want.content, want.mode)
		}
	}
	if st, _ := os.Stat(filepath.Join(root, "usr/local/bin")); st == nil || st.Mode().Perm() != 0o755 {
		t.Errorf("new folder mode: %v", st)
	}
}

func TestTrimDebian(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"var/cache/apt/archives/nginx.deb":   "deb",
		"var/cache/apt/pkgcache.bin":         "bin",
		"var/lib/apt/lists/deb.debian.org_x": "index",
		"var/log/dpkg.log":                   "log",
		"var/log/apt/history.log":            "log",
		"usr/share/doc/nginx/copyright":      "licence",
		"usr/share/doc/nginx/changelog.gz":   "changes",
		"usr/share/doc/README":               "loose file",
		"usr/share/man/man8/nginx.8.gz":      "man",
		"usr/share/locale/fr/LC_MESSAGES/x":  "bonjour",
		"usr/share/locale/locale.alias":      "alias",
		"var/lib/dpkg/status":                "db",
		"var/lib/dpkg/status-old":            "old db",
		"etc/resolv.conf":                    "nameserver 10.0.0.1\n",
		"etc/hostname":                       "buildhost\n",
		"etc/nginx/nginx.conf":               "kept",
	})
	if err := os.Symlink("nginx", filepath.Join(root, "usr/share/doc/nginx-light")); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := trimDebian(r); err != nil {
		t.Fatal(err)
	}
	var left []string
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(root, p)
			st, _ := os.Lstat(p)
			left = append(left, rel+":"+map[bool]string{true: "empty", false: "data"}[st.Size() == 0 && st.Mode().IsRegular()])
		}
		return nil
	})
	want := []string{
		"etc/hostname:empty",
		"etc/nginx/nginx.conf:data",
		"etc/resolv.conf:empty",
		"usr/share/doc/nginx/copyright:data",
		"usr/share/doc/nginx-light:data",
		"usr/share/locale/locale.alias:data",
		"var/lib/dpkg/status:data",
	}
	if !slices.Equal(left, want) {
		t.Errorf("left:\n got %q\nwant %q", left, want)
	}
	for _, d := range []string{"var/cache/apt", "var/lib/apt/lists", "var/log", "usr/share/man"} {
		if st, err := os.Stat(filepath.Join(root, d)); err != nil || !st.IsDir() {
			t.Errorf("%s: the folder itself must stay: %v", d, err)
		}
	}
}

func TestRemoveTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "build")
	writeFiles(t, dir, map[string]string{"rootfs/etc/passwd": "x"})
	if err := removeTree(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("still there: %v", err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a\040b`: "/tmp/a b",
		`/plain`:      "/plain",
		`/tail\04`:    `/tail\04`,
		`/x\134y`:     `/x\y`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 8}
	io.WriteString(tb, "0123456789")
	io.WriteString(tb, "ab")
	if got := tb.String(); got != "456789ab" {
		t.Errorf("tail = %q", got)
	}
}
