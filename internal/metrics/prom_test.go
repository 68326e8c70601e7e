package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darse/darse/internal/store"
)

type fakeOps struct {
	counts map[string]int
	ended  []*store.Operation // newest first, as the store lists them
	err    error
}

func (f *fakeOps) OpCounts(ctx context.Context) (map[string]int, error) { return f.counts, f.err }

func (f *fakeOps) ListOps(ctx context.Context, flt store.OpFilter) ([]*store.Operation, error) {
	if len(flt.States) != 2 || flt.States[0] != store.OpDone || flt.States[1] != store.OpFailed {
		return nil, fmt.Errorf("asked for states %v, want done and failed", flt.States)
	}
	return f.ended, f.err
}

type fakeBackups map[string]*store.Backup

func (f fakeBackups) LastBackups(ctx context.Context) (last, lastDone map[string]*store.Backup, err error) {
	return f, f, nil
}

type fakeDisk map[string]uint64

func (f fakeDisk) DiskBytes() map[string]uint64 { return f }

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
	out := scrape(t, NewExporter(c, Sources{Ops: &fakeOps{counts: map[string]int{"queued": 2, "running": 1, "done": 40, "failed": 3}}}, quiet))
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
	out := scrape(t, NewExporter(c, Sources{Ops: &fakeOps{err: errors.New("database is locked")}}, quiet))
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

// Durations are observed once per ended operation, by kind, from its
// start (or its recording, when it failed before running); operations
// ended before the exporter started are not; disk use and backup age are
// per site, the platform's backup apart, deleted sites left out.
func TestExporterDurationsDiskAndBackupAge(t *testing.T) {
	c := New(twoSites(), Config{CgroupRoot: filepath.Join("testdata", "v1"), ProcRoot: filepath.Join("testdata", "proc"), MinInterval: -1}, quiet)
	now := time.Unix(1_700_000_000, 0)
	op := func(id int64, kind string, created, started, finished time.Duration, state string) *store.Operation {
		o := &store.Operation{ID: id, Kind: kind, State: state, CreatedAt: now.Add(created), FinishedAt: now.Add(finished)}
		if started != 0 {
			o.StartedAt = now.Add(started)
		}
		return o
	}
	ops := &fakeOps{counts: map[string]int{}, ended: []*store.Operation{
		op(3, "site.create", 1*time.Second, 2*time.Second, 5*time.Second, store.OpDone),         // 3 s
		op(2, "site.create", -time.Hour, -time.Hour, -time.Minute, store.OpDone),                // before the exporter
		op(1, "site.stop", time.Second, 0, 2*time.Second, store.OpFailed),                       // 1 s, never started
		op(0, "site.start", -time.Hour, -time.Minute, 20*time.Second+time.Second, store.OpDone), // 81 s, a low id ending late
	}}
	e := NewExporter(c, Sources{Ops: ops, Now: func() time.Time { return now },
		Disk: fakeDisk{"blog": 123456789},
		Backups: fakeBackups{
			"blog":    {Site: "blog", State: store.OpDone, FinishedAt: now.Add(-90 * time.Minute)},
			"":        {State: store.OpDone, FinishedAt: now.Add(-10 * time.Minute)},
			"deleted": {Site: "deleted", State: store.OpDone, FinishedAt: now.Add(-time.Hour)},
		}}, quiet)
	out := scrape(t, e)
	out = scrape(t, e) // the same operations seen again are not observed twice
	for _, line := range []string{
		`darse_operation_duration_seconds_count{kind="site.create"} 1`,
		`darse_operation_duration_seconds_sum{kind="site.create"} 3`,
		`darse_operation_duration_seconds_bucket{kind="site.create",le="2"} 0`,
		`darse_operation_duration_seconds_bucket{kind="site.create",le="5"} 1`,
		`darse_operation_duration_seconds_count{kind="site.stop"} 1`,
		`darse_operation_duration_seconds_sum{kind="site.stop"} 1`,
		`darse_operation_duration_seconds_count{kind="site.start"} 1`,
		`darse_operation_duration_seconds_sum{kind="site.start"} 81`,
		`darse_site_disk_bytes{site="blog"} 1.23456789e+08`,
		`darse_site_backup_age_seconds{site="blog"} 5400`,
		`darse_platform_backup_age_seconds 600`,
		`# TYPE darse_operation_duration_seconds histogram`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("no line %q in:\n%s", line, out)
		}
	}
	if strings.Contains(out, `site="deleted"`) || strings.Contains(out, `site=""`) {
		t.Errorf("a deleted site or an empty label:\n%s", out)
	}
	// A new operation ends: it alone is added.
	ops.ended = append([]*store.Operation{op(4, "site.create", 10*time.Second, 10*time.Second, 40*time.Second, store.OpDone)}, ops.ended...)
	out = scrape(t, e)
	for _, line := range []string{
		`darse_operation_duration_seconds_count{kind="site.create"} 2`,
		`darse_operation_duration_seconds_sum{kind="site.create"} 33`,
		`darse_operation_duration_seconds_count{kind="site.start"} 1`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("after one more: no line %q in:\n%s", line, out)
		}
	}
}
