package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darse/darse/internal/firewall"
	"github.com/darse/darse/internal/metrics"
)

// fwMetrics is what darse-fw exports: the watcher's counters, and how
// long rules take to follow events and to apply.
type fwMetrics struct {
	reg       *prometheus.Registry
	latency   prometheus.Histogram
	applyTook prometheus.Histogram
	lastApply prometheus.Gauge
}

// latencyBuckets span the debounce (10–50 ms) to a loaded engine's
// seconds.
var latencyBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func newFWMetrics(stats func() firewall.Stats) (*fwMetrics, error) {
	m := &fwMetrics{reg: prometheus.NewRegistry(),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "darse_fw_event_to_rule_seconds",
			Help: "From an engine event to the apply of the rules it changed.", Buckets: latencyBuckets}),
		applyTook: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "darse_fw_apply_seconds",
			Help: "How long one apply of the table took the kernel.", Buckets: prometheus.ExponentialBuckets(.001, 2.5, 10)}),
		lastApply: prometheus.NewGauge(prometheus.GaugeOpts{Name: "darse_fw_last_apply_timestamp_seconds",
			Help: "When the table was last applied (Unix time)."}),
	}
	counter := func(name, help string, v func(firewall.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v(stats())) })
	}
	for _, c := range []prometheus.Collector{m.latency, m.applyTook, m.lastApply,
		counter("darse_fw_applies_total", "Tables applied.", func(s firewall.Stats) uint64 { return s.Applies }),
		counter("darse_fw_apply_failures_total", "Applies that failed (the previous rules stayed).", func(s firewall.Stats) uint64 { return s.Failures }),
		counter("darse_fw_events_total", "Engine events received.", func(s firewall.Stats) uint64 { return s.Events }),
		counter("darse_fw_syncs_total", "Rulesets built and compared with the kernel's.", func(s firewall.Stats) uint64 { return s.Syncs }),
		counter("darse_fw_reconnects_total", "Times the engine's event stream was lost.", func(s firewall.Stats) uint64 { return s.Reconnects }),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe is the watcher's OnApply.
func (m *fwMetrics) observe(a firewall.Applied) {
	m.applyTook.Observe(a.Took.Seconds())
	m.lastApply.Set(float64(a.At.UnixNano()) / 1e9)
	if !a.Since.IsZero() {
		m.latency.Observe(max(0, a.At.Sub(a.Since).Seconds()))
	}
}

// serve answers /metrics on addr until ctx is done. darse-fw runs in the
// host's network namespace: a loopback address keeps it on the host.
func (m *fwMetrics) serve(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics %s: %w", addr, err)
	}
	log.Info("metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	srv := metrics.NewServer(metrics.Handler(m.reg, log), log)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint", "err", err)
		}
	}()
	return nil
}
