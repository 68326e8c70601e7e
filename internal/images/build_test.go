package images

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
)

type fakeEngine struct {
	present  map[string]bool
	err      error
	imported []string
}

func (f *fakeEngine) ImageExists(_ context.Context, ref string) (bool, error) {
	return f.present[ref], f.err
}

func (f *fakeEngine) ImageTag(context.Context, string, string) error { return nil }

func (f *fakeEngine) ImageLabels(_ context.Context, ref string) (map[string]string, bool, error) {
	return nil, f.present[ref], f.err
}

func (f *fakeEngine) ImageImport(_ context.Context, ref string, _ []string, _ io.Reader) (string, error) {
	f.imported = append(f.imported, ref)
	return "sha256:fake", nil
}

func TestEnsureSkipsPresentImage(t *testing.T) {
	d, err := Parse("nginx", []byte(validJSON))
	if err != nil {
		t.Fatal(err)
	}
	e := &fakeEngine{present: map[string]bool{d.Tag: true}}
	res, err := (&Builder{Engine: e}).Ensure(context.Background(), d, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Built || len(e.imported) > 0 {
		t.Errorf("built a present image: %+v, imported %q", res, e.imported)
	}
}

func TestEnsureEngineError(t *testing.T) {
	d, err := Parse("nginx", []byte(validJSON))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("engine down")
	_, err = (&Builder{Engine: &fakeEngine{err: boom}}).Ensure(context.Background(), d, false)
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want it to wrap %v", err, boom)
	}
}

func TestDebootstrapArgs(t *testing.T) {
	got := debootstrapArgs(&Debootstrap{Suite: "bookworm", Packages: []string{"nginx-light", "bash"}},
		"/var/cache/darse/debootstrap", "/tmp/b/rootfs", DefaultMirror)
	want := []string{
		"--variant=minbase", "--include=nginx-light,bash", "--cache-dir=/var/cache/darse/debootstrap",
		"bookworm", "/tmp/b/rootfs", "http://deb.debian.org/debian",
	}
	if !slices.Equal(got, want) {
		t.Errorf("args:\n got %q\nwant %q", got, want)
	}
}
