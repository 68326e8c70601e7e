package panel

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darse/darse"
	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/store"
)

// switchEngine is an engine whose listing fails while down is set.
type switchEngine struct{ down atomic.Bool }

func (e *switchEngine) Containers(ctx context.Context) ([]engine.ContainerInfo, error) {
	if e.down.Load() {
		return nil, errors.New("Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
	}
	return nil, nil
}
func (e *switchEngine) Logs(ctx context.Context, id string, tail int) (string, error) { return "", nil }
func (e *switchEngine) Usage(ctx context.Context, id string) (engine.Usage, error) {
	return engine.Usage{}, nil
}

// readyClock is a Config.Now that tests move forward.
type readyClock struct{ ns atomic.Int64 }

func timeNow() *readyClock {
	c := &readyClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *readyClock) get() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *readyClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /readyz follows the store and the engine; /healthz only the process.
// Neither shows the causes, which go to the log.
func TestReadyz(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "darse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	web, _ := fs.Sub(darse.Web, "web")
	eng := &switchEngine{}
	now := timeNow()
	p, err := New(Config{HashParams: cheap, Now: now.get}, st, nil, nil, eng, web, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(p)
	defer hs.Close()

	check := func(what string, wantCode int, wantBody string) {
		t.Helper()
		code, body := getStatus(t, hs.URL+"/readyz")
		if code != wantCode || body != wantBody {
			t.Errorf("%s: /readyz %d %q, want %d %q", what, code, body, wantCode, wantBody)
		}
		if code, _ := getStatus(t, hs.URL+"/healthz"); code != http.StatusOK {
			t.Errorf("%s: /healthz %d", what, code)
		}
	}
	check("all up", 200, "ok\n")
	eng.down.Store(true)
	now.advance(2 * containersTTL) // past the cached listing
	check("engine down", 503, "engine: unreachable\n")
	st.Close()
	now.advance(2 * containersTTL)
	check("store closed too", 503, "store: unreachable\nengine: unreachable\n")
	eng.down.Store(false)
	now.advance(2 * containersTTL)
	code, body := getStatus(t, hs.URL+"/readyz")
	if code != 503 || strings.Contains(body, "engine") || strings.Contains(body, "sql") {
		t.Errorf("store closed, engine back: %d %q", code, body)
	}
}
