package dockerproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// engine is a fake Docker engine on a unix socket: containers whose
// inspection carries a version, and an event stream the test feeds.
type engine struct {
	mu       sync.Mutex
	version  map[string]int
	inspects atomic.Int64
	block    chan struct{} // when set, inspections wait for it
	events   chan string   // lines to send on the current event stream
	cut      chan struct{} // closing it ends the current event stream
	socket   string
}

const idA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func newEngine(t *testing.T) *engine {
	e := &engine{version: map[string]int{idA: 1}, events: make(chan string, 16), cut: make(chan struct{}),
		socket: filepath.Join(t.TempDir(), "docker.sock")}
	l, err := net.Listen("unix", e.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: e}}
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

func (e *engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/events":
		e.mu.Lock()
		cut := e.cut
		e.mu.Unlock()
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		for {
			select {
			case l := <-e.events:
				io.WriteString(w, l+"\n")
				w.(http.Flusher).Flush()
			case <-cut:
				return
			case <-r.Context().Done():
				return
			}
		}
	case strings.HasSuffix(r.URL.Path, "/json") && strings.Contains(r.URL.Path, "/containers/"+idA):
		e.inspects.Add(1)
		if e.block != nil {
			<-e.block
		}
		e.mu.Lock()
		v := e.version[idA]
		e.mu.Unlock()
		fmt.Fprintf(w, `{"Id":%q,"Version":%d}`, idA, v)
	case strings.HasSuffix(r.URL.Path, "/containers/json"):
		fmt.Fprintf(w, `[{"Id":%q}]`, idA)
	default:
		http.NotFound(w, r)
	}
}

func (e *engine) bump() {
	e.mu.Lock()
	e.version[idA]++
	e.mu.Unlock()
}

// front serves a proxy to e and returns a client and its base URL.
func front(t *testing.T, e *engine) (*Proxy, *http.Client) {
	p := New(e.socket, slog.New(slog.NewTextHandler(io.Discard, nil)))
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: p}}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(p.Close)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	return p, c
}

func get(t *testing.T, c *http.Client, path string) (int, string) {
	t.Helper()
	resp, err := c.Get("http://docker" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func wantVersion(t *testing.T, c *http.Client, v int) {
	t.Helper()
	code, body := get(t, c, "/v1.41/containers/"+idA+"/json")
	if code != 200 || !strings.Contains(body, fmt.Sprintf(`"Version":%d`, v)) {
		t.Fatalf("inspect: %d %s, want version %d", code, body, v)
	}
}

// subscribe opens an event stream as Traefik does and returns its lines.
func subscribe(t *testing.T, c *http.Client) <-chan string {
	t.Helper()
	resp, err := c.Get(`http://docker/v1.41/events?filters={"type":{"container":true}}`)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("events: %s", resp.Status)
	}
	lines := make(chan string, 16)
	go func() {
		defer resp.Body.Close()
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return lines
}

func startEvent(id string) string {
	return fmt.Sprintf(`{"Type":"container","Action":"start","Actor":{"ID":%q,"Attributes":{}}}`, id)
}

func TestInspectionsCachedUntilAnEventAboutThem(t *testing.T) {
	e := newEngine(t)
	p, c := front(t, e)
	wantVersion(t, c, 1)
	wantVersion(t, c, 1)
	if n := e.inspects.Load(); n != 1 {
		t.Fatalf("engine inspected %d times, want 1 (second from the cache)", n)
	}
	events := subscribe(t, c)
	// An event about another container leaves the cache alone.
	e.events <- startEvent(strings.Repeat("b", 64))
	<-events
	wantVersion(t, c, 1)
	if n := e.inspects.Load(); n != 1 {
		t.Fatalf("engine inspected %d times after an unrelated event, want 1", n)
	}
	// The client sees the event only once the stale inspection is gone.
	e.bump()
	e.events <- startEvent(idA)
	if got := <-events; !strings.Contains(got, idA) {
		t.Fatalf("relayed event %q", got)
	}
	wantVersion(t, c, 2)
	if hits, misses := p.CacheCounts(); hits != 2 || misses != 2 {
		t.Errorf("hits %d misses %d, want 2 and 2", hits, misses)
	}
	// The same, as the metrics endpoint exports them.
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(p.Metrics()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
	}
	if got["darse_dockerproxy_cache_hits_total"] != 2 || got["darse_dockerproxy_cache_misses_total"] != 2 {
		t.Errorf("exported %v, want 2 hits and 2 misses", got)
	}
}

// A fetch under way when an event arrives is served but not kept.
func TestInspectionRacingAnEventIsNotKept(t *testing.T) {
	e := newEngine(t)
	_, c := front(t, e)
	events := subscribe(t, c)
	e.block = make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, c, "/containers/"+idA+"/json")
	}()
	for e.inspects.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	e.events <- startEvent(idA)
	<-events
	e.bump()
	close(e.block)
	<-done
	e.block = nil
	wantVersion(t, c, 2)
}

func TestOnlyWhatTraefikReadsPasses(t *testing.T) {
	e := newEngine(t)
	_, c := front(t, e)
	if code, body := get(t, c, "/v1.41/containers/json?all=1"); code != 200 || !strings.Contains(body, idA) {
		t.Errorf("list: %d %s", code, body)
	}
	for _, path := range []string{"/v1.41/containers/" + idA + "/logs", "/images/json", "/v1.41/exec/x/json", "/containers/" + idA + "/archive"} {
		if code, body := get(t, c, path); code != http.StatusForbidden || !strings.Contains(body, "not allowed") {
			t.Errorf("GET %s: %d %s, want 403", path, code, body)
		}
	}
	resp, err := c.Post("http://docker/v1.41/containers/create", "application/json", strings.NewReader(`{"Image":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST containers/create: %s, want 403", resp.Status)
	}
}

// When the engine's stream ends, clients' streams end and nothing stays
// cached: events missed meanwhile cannot leave a stale inspection.
func TestStreamCutDropsCacheAndClients(t *testing.T) {
	e := newEngine(t)
	_, c := front(t, e)
	wantVersion(t, c, 1)
	events := subscribe(t, c)
	e.mu.Lock()
	close(e.cut)
	e.cut = make(chan struct{})
	e.mu.Unlock()
	select {
	case _, open := <-events:
		if open {
			t.Fatal("an event arrived instead of the end of the stream")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client's event stream still open after the engine's ended")
	}
	e.bump() // missed: no event for it
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := get(t, c, "/containers/"+idA+"/json")
		if strings.Contains(body, `"Version":2`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stale inspection served after the stream was cut: %s", body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
