package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeOps struct {
	counts map[string]int
	err    error
}

func (f fakeOps) OpCounts(ctx context.Context) (map[string]int, error) { return f.counts, f.err }

func scrape(t *testing.T, e *Exporter) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry() // checks descriptions against what is collected
	if err := reg.Register(e); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(Handler(reg, quiet), quiet).Handler)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", resp.StatusCode, b)
	}
	return string(b)
}

func TestExporter(t *testing.T) {
	c := New(twoSites(), Config{CgroupRoot: filepath.Join("testdata", "v1"), ProcRoot: filepath.Join("testdata", "proc"), MinInterval: -1}, quiet)
	out := scrape(t, NewExporter(c, fakeOps{counts: map[string]int{"queued": 2, "running": 1, "done": 40, "failed": 3}}, quiet))
	for _, line := range []string{
		`darse_site_cpu_seconds_total{site="blog"} 2`,
		`darse_site_memory_bytes{site="blog"} 1.2582912e+07`,
		`darse_site_oom_kills_total{site="blog"} 2`,
		`darse_site_network_receive_bytes_total{site="blog"} 1011`,
		`darse_site_network_transmit_bytes_total{site="blog"} 2022`,
		`darse_site_io_read_bytes_total{site="blog"} 4196`,
		`darse_site_io_write_bytes_total{site="blog"} 8192`,
		`darse_site_pids{site="blog"} 3`,
		`darse_site_up{site="blog"} 1`,
		`darse_site_up{site="shop"} 0`,
		`darse_site_containers{site="shop"} 1`,
		`darse_metrics_collect_ok 1`,
		`darse_metrics_pass_containers 2`,
		`darse_metrics_cgroup_version 1`,
		`darse_operations{state="queued"} 2`,
		`darse_operations{state="running"} 1`,
		`darse_operations{state="failed"} 3`,
		`# TYPE darse_site_cpu_seconds_total counter`,
		`# TYPE darse_site_up gauge`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("no line %q in:\n%s", line, out)
		}
	}
	// Per site only: no container, no done operations.
	for _, absent := range []string{"aaa1", "ccc1", `state="done"`} {
		if strings.Contains(out, absent) {
			t.Errorf("the answer shows %q:\n%s", absent, out)
		}
	}
}

// A failed pass or count still answers, saying so.
func TestExporterFailures(t *testing.T) {
	c := New(twoSites(), Config{CgroupRoot: t.TempDir()}, quiet)
	out := scrape(t, NewExporter(c, fakeOps{err: errors.New("database is locked")}, quiet))
	if !strings.Contains(out, "darse_metrics_collect_ok 0\n") || strings.Contains(out, "darse_site_up") || strings.Contains(out, "darse_operations{") {
		t.Errorf("a failed pass:\n%s", out)
	}
}

// The metrics server answers /metrics and nothing else.
func TestServerOnlyMetrics(t *testing.T) {
	srv := httptest.NewServer(NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "m\n") }), quiet).Handler)
	defer srv.Close()
	for path, want := range map[string]int{"/metrics": 200, "/": 404, "/healthz": 404, "/sites": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
