package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/darse/darse/internal/testenv"
)

// countingWriter counts what it is given and keeps nothing.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// Exec streams stdin in and stdout out, keeps stderr for its error, and
// reports the command's exit status.
func TestExec(t *testing.T) {
	const image = "darse/nginx:bookworm"
	testenv.NeedEngine(t, image)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	name := fmt.Sprintf("darse-exec-%d", os.Getpid())
	res, err := e.c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
		Config:     &container.Config{Image: image, Entrypoint: []string{"sleep", "600"}, User: "65534:65534"},
		HostConfig: &container.HostConfig{NetworkMode: "none", CapDrop: []string{"ALL"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.c.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := e.c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("stdin to stdout", func(t *testing.T) {
		var out bytes.Buffer
		if err := e.Exec(ctx, name, "65534:65534", []string{"sh", "-c", "tr a-z A-Z; id -u >&2"}, strings.NewReader("hello dump\n"), &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != "HELLO DUMP\n" {
			t.Errorf("stdout = %q", out.String())
		}
	})
	t.Run("large output streamed", func(t *testing.T) {
		var w countingWriter
		if err := e.Exec(ctx, name, "", []string{"head", "-c", "67108864", "/dev/zero"}, nil, &w); err != nil {
			t.Fatal(err)
		}
		if w.n != 64<<20 {
			t.Errorf("got %d bytes, want %d", w.n, 64<<20)
		}
	})
	t.Run("exit status", func(t *testing.T) {
		var out bytes.Buffer
		err := e.Exec(ctx, name, "", []string{"sh", "-c", "echo half; echo 'mariadb-dump: Got error: 1049' >&2; exit 2"}, nil, &out)
		var ee *ExecError
		if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(ee.Stderr, "Got error: 1049") {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(err.Error(), "exit status 2") || out.String() != "half\n" {
			t.Errorf("err %q, stdout %q", err, out.String())
		}
	})
	t.Run("exits without reading stdin", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < 1000; i++ {
				if _, err := pw.Write(bytes.Repeat([]byte("x"), 64<<10)); err != nil {
					return
				}
			}
			pw.Close()
		}()
		err := e.Exec(ctx, name, "", []string{"sh", "-c", "exit 5"}, pr, io.Discard)
		pr.Close()
		var ee *ExecError
		if !errors.As(err, &ee) || ee.Code != 5 {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no such container", func(t *testing.T) {
		if err := e.Exec(ctx, name+"-none", "", []string{"true"}, nil, io.Discard); err == nil {
			t.Fatal("exec in a missing container succeeded")
		}
	})
}
