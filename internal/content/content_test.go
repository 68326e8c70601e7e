package content

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

type member struct {
	name, body, link string
	typ              byte // tar type; 0: regular file
	mode             int64
}

func tarGz(t *testing.T, ms ...member) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Mode: 0o644, Typeflag: m.typ, Linkname: m.link, ModTime: time.Unix(0, 0)}
		if m.mode != 0 {
			h.Mode = m.mode
		}
		if m.typ == 0 {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(m.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if m.typ == 0 {
			tw.Write([]byte(m.body))
		}
	}
	tw.Close()
	zw.Close()
	p := filepath.Join(t.TempDir(), "upload.tar.gz")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

func zipFile(t *testing.T, ms ...member) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range ms {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		switch m.typ {
		case tar.TypeSymlink:
			h.SetMode(fs.ModeSymlink | 0o777)
			w, _ := zw.CreateHeader(h)
			w.Write([]byte(m.link))
			continue
		case tar.TypeDir:
			h.Name = strings.TrimSuffix(m.name, "/") + "/"
			h.SetMode(fs.ModeDir | 0o755)
		default:
			h.SetMode(0o644)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(m.body))
	}
	zw.Close()
	p := filepath.Join(t.TempDir(), "upload.zip")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		desc := rel
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case d.IsDir():
			desc += "/"
		default:
			b, _ := os.ReadFile(p)
			desc += " = " + string(b)
		}
		out = append(out, desc)
		return nil
	})
	sort.Strings(out)
	return out
}

func TestUnsafeArchivesRefusedWhole(t *testing.T) {
	ok := member{name: "index.html", body: "<h1>hi</h1>"}
	cases := []struct {
		name string
		ms   []member
		want string
	}{
		{"dot-dot", []member{ok, {name: "../evil", body: "x"}}, "goes outside data/"},
		{"nested dot-dot", []member{ok, {name: "a/../../evil", body: "x"}}, "goes outside data/"},
		{"absolute", []member{ok, {name: "/etc/passwd", body: "x"}}, "absolute path"},
		{"symlink to root", []member{ok, {name: "root", typ: tar.TypeSymlink, link: "/"}}, "points outside data/"},
		{"symlink up", []member{ok, {name: "a/up", typ: tar.TypeSymlink, link: "../../etc"}}, "points outside data/"},
		{"write through symlink", []member{{name: "d", typ: tar.TypeSymlink, link: "sub"}, {name: "d/x", body: "x"}}, "not a folder"},
		{"hard link out", []member{ok, {name: "h", typ: tar.TypeLink, link: "../../etc/shadow"}}, "points outside data/"},
		{"hard link to unknown", []member{ok, {name: "h", typ: tar.TypeLink, link: "etc/shadow"}}, "not a file of the archive"},
		{"device", []member{ok, {name: "null", typ: tar.TypeChar}}, "devices and special files"},
		{"fifo", []member{ok, {name: "fifo", typ: tar.TypeFifo}}, "devices and special files"},
		{"backslash", []member{ok, {name: `..\evil`, body: "x"}}, "backslash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			arch := tarGz(t, c.ms...)
			if _, err := Check(arch, "site.tar.gz", DefaultLimits); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Check: %v, want %q", err, c.want)
			}
			dst := filepath.Join(t.TempDir(), "new")
			if _, err := Extract(arch, "site.tar.gz", dst, DefaultLimits, -1, -1); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `archive "site.tar.gz"`) {
				t.Fatalf("Extract: %v", err)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Fatalf("refused archive left %s", dst)
			}
		})
	}
	// Zip too.
	for _, ms := range [][]member{{ok, {name: "../evil", body: "x"}}, {ok, {name: "root", typ: tar.TypeSymlink, link: "/"}}} {
		if _, err := Check(zipFile(t, ms...), "site.zip", DefaultLimits); err == nil {
			t.Errorf("zip %v accepted", ms[1].name)
		}
	}
}

func TestLimits(t *testing.T) {
	many := []member{}
	for i := 0; i < 11; i++ {
		many = append(many, member{name: "f" + string(rune('a'+i)), body: "x"})
	}
	if _, err := Check(tarGz(t, many...), "a.tar.gz", Limits{Entries: 10, Bytes: 1 << 20}); err == nil || !strings.Contains(err.Error(), "more than 10 entries") {
		t.Fatalf("too many entries: %v", err)
	}
	big := member{name: "big", body: strings.Repeat("x", 2<<20)}
	if _, err := Check(tarGz(t, big), "a.tar.gz", Limits{Entries: 10, Bytes: 1 << 20}); err == nil || !strings.Contains(err.Error(), "more than 1 MiB") {
		t.Fatalf("too big: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "x.tar.gz")
	os.WriteFile(bad, []byte("not an archive at all"), 0o644)
	if _, err := Check(bad, "x.tar.gz", DefaultLimits); err == nil || !strings.Contains(err.Error(), "not a .zip or .tar.gz") {
		t.Fatalf("garbage: %v", err)
	}
}

func TestExtractGood(t *testing.T) {
	ms := []member{
		{name: "./", typ: tar.TypeDir},
		{name: "index.html", body: "home"},
		{name: "css/", typ: tar.TypeDir},
		{name: "css/site.css", body: "body{}"},
		{name: "img/logo.svg", body: "<svg/>"}, // folder created on the way
		{name: "latest", typ: tar.TypeSymlink, link: "css/site.css"},
		{name: "copy.html", typ: tar.TypeLink, link: "index.html"},
		{name: "run.sh", body: "#!/bin/sh", mode: 0o755},
	}
	for _, arch := range []string{tarGz(t, ms...), zipFile(t, ms[:6]...)} {
		dst := filepath.Join(t.TempDir(), "new")
		sum, err := Extract(arch, "a", dst, DefaultLimits, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(tree(t, dst), "\n")
		for _, want := range []string{"index.html = home", "css/site.css = body{}", "img/logo.svg = <svg/>", "latest -> css/site.css"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: tree lacks %q:\n%s", filepath.Base(arch), want, got)
			}
		}
		if sum.Files < 3 {
			t.Errorf("summary %+v", sum)
		}
	}
}

func TestInstallReplaceMergeAndArchive(t *testing.T) {
	ctx := context.Background()
	users := t.TempDir()
	data := filepath.Join(users, "blog", "data")
	os.MkdirAll(filepath.Join(data, "old"), 0o755)
	os.WriteFile(filepath.Join(data, "index.html"), []byte("old home"), 0o644)
	os.WriteFile(filepath.Join(data, "old", "page.html"), []byte("old page"), 0o644)
	in := Installer{UsersDir: users}

	// A refused upload leaves data/ exactly as it was.
	before := tree(t, data)
	if _, err := in.Install(ctx, "blog", tarGz(t, member{name: "index.html", body: "new"}, member{name: "../evil", body: "x"}), "bad.tar.gz", Replace); err == nil {
		t.Fatal("unsafe archive installed")
	}
	if after := tree(t, data); strings.Join(after, "|") != strings.Join(before, "|") {
		t.Fatalf("refused upload changed data/: %v -> %v", before, after)
	}

	// A running container holds the old folder open; after the swap, the
	// old folder is intact until Cleanup.
	held, _ := os.Open(data)
	defer held.Close()
	if _, err := in.Install(ctx, "blog", tarGz(t, member{name: "index.html", body: "merged home"}, member{name: "new.html", body: "new"}), "m.tar.gz", Merge); err != nil {
		t.Fatal(err)
	}
	want := []string{"index.html = merged home", "new.html = new", "old/", "old/page.html = old page"}
	if got := tree(t, data); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("after merge: %v", got)
	}
	olds, _ := filepath.Glob(filepath.Join(users, "blog", ".data-old-*"))
	if len(olds) != 1 {
		t.Fatalf("previous data/ not set aside: %v", olds)
	}
	if b, _ := os.ReadFile(filepath.Join(olds[0], "index.html")); string(b) != "old home" {
		t.Fatalf("the previous folder changed: %q", b)
	}
	if _, err := in.Install(ctx, "blog", zipFile(t, member{name: "index.html", body: "replaced"}), "r.zip", Replace); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, data); strings.Join(got, "|") != "index.html = replaced" {
		t.Fatalf("after replace: %v", got)
	}
	if err := in.Cleanup("blog"); err != nil {
		t.Fatal(err)
	}
	if olds, _ := filepath.Glob(filepath.Join(users, "blog", ".data-*")); len(olds) != 0 {
		t.Fatalf("cleanup left %v", olds)
	}

	// The final archive holds data/ and unpacks to the same tree.
	a := Archiver{UsersDir: users, ArchiveDir: filepath.Join(t.TempDir(), "archives")}
	p, err := a.ArchiveData(ctx, "blog")
	if err != nil || !strings.HasPrefix(filepath.Base(p), "blog-") {
		t.Fatalf("archive %q: %v", p, err)
	}
	back := filepath.Join(t.TempDir(), "back")
	if _, err := Extract(p, "archive", back, DefaultLimits, -1, -1); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, back); strings.Join(got, "|") != "index.html = replaced" {
		t.Fatalf("archive round trip: %v", got)
	}
	if p, err := a.ArchiveData(ctx, "nosite"); p != "" || err != nil {
		t.Fatalf("archive of a site without data/: %q %v", p, err)
	}
}
