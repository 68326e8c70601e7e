package content

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A site's final archive holds its own data/ only: a folder swapped for a
// symlink to another site's data/ is archived as that symlink, and none
// of the other site's files are read.
func TestArchiveDataStaysInsideData(t *testing.T) {
	users := t.TempDir()
	for _, d := range []string{"blog/data/pages", "shop/data"} {
		if err := os.MkdirAll(filepath.Join(users, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(users, "blog/data/pages/index.html"), []byte("blog"), 0o644)
	os.WriteFile(filepath.Join(users, "shop/data/secret.txt"), []byte("shop's secret"), 0o644)
	if err := os.Symlink("../../shop/data", filepath.Join(users, "blog/data/shop")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(users, "shop/data/secret.txt"), filepath.Join(users, "blog/data/stolen.txt")); err != nil {
		t.Fatal(err)
	}
	p, err := Archiver{UsersDir: users, ArchiveDir: t.TempDir()}.ArchiveData(context.Background(), "blog")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	seen := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if strings.Contains(string(b), "secret") {
			t.Errorf("%s holds the other site's file", h.Name)
		}
		seen[h.Name] = h.Linkname
	}
	if seen["shop"] != "../../shop/data" || seen["stolen.txt"] == "" {
		t.Errorf("symlinks not archived as links: %v", seen)
	}
	if _, ok := seen["shop/secret.txt"]; ok {
		t.Errorf("walked into the other site: %v", seen)
	}
	if _, ok := seen["pages/index.html"]; !ok {
		t.Errorf("own files missing: %v", seen)
	}
}
