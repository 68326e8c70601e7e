package main

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/firewall"
	"github.com/darse/darse/internal/metrics"
)

func TestFWMetrics(t *testing.T) {
	stats := firewall.Stats{Applies: 7, Failures: 2, Events: 30, Syncs: 12, Reconnects: 1}
	m, err := newFWMetrics(func() firewall.Stats { return stats })
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 0)
	m.observe(firewall.Applied{At: at, Took: 3 * time.Millisecond, Since: at.Add(-40 * time.Millisecond)})
	m.observe(firewall.Applied{At: at.Add(time.Minute), Took: time.Millisecond}) // a resync: no event, no latency
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(metrics.NewServer(metrics.Handler(m.reg, log), log).Handler)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := string(b)
	for _, line := range []string{
		"darse_fw_applies_total 7",
		"darse_fw_apply_failures_total 2",
		"darse_fw_events_total 30",
		"darse_fw_reconnects_total 1",
		"darse_fw_event_to_rule_seconds_count 1",
		`darse_fw_event_to_rule_seconds_bucket{le="0.025"} 0`,
		`darse_fw_event_to_rule_seconds_bucket{le="0.05"} 1`,
		"darse_fw_apply_seconds_count 2",
		"darse_fw_last_apply_timestamp_seconds 1.70000006e+09",
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("no line %q in:\n%s", line, out)
		}
	}
}
