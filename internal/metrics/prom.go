package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// OpCounter counts the operations in each state (*store.Store).
type OpCounter interface {
	OpCounts(ctx context.Context) (map[string]int, error)
}

// opStates are the states exported; done operations only grow in number
// and say nothing an alert needs.
var opStates = []string{"queued", "running", "failed"}

// Exporter is a prometheus.Collector over a Collector and the store's
// operations. Its labels are per site only: no container, no request.
type Exporter struct {
	c       *Collector
	ops     OpCounter // may be nil
	timeout time.Duration
	log     *slog.Logger

	cpu, mem, oom, rx, tx, ioR, ioW, pids, up, containers *prometheus.Desc
	passSeconds, passContainers, collectOK, cgroupVersion *prometheus.Desc
	opsDesc                                               *prometheus.Desc
}

// NewExporter exports c's passes and, when ops is not nil, the number of
// operations queued, running and failed.
func NewExporter(c *Collector, ops OpCounter, log *slog.Logger) *Exporter {
	site := []string{"site"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Exporter{c: c, ops: ops, timeout: 10 * time.Second, log: log,
		cpu:            d("darse_site_cpu_seconds_total", "CPU time used by the site's containers.", site),
		mem:            d("darse_site_memory_bytes", "Memory used by the site's containers, less the inactive page cache.", site),
		oom:            d("darse_site_oom_kills_total", "Processes of the site killed for exceeding its memory limit.", site),
		rx:             d("darse_site_network_receive_bytes_total", "Bytes received by the site's containers.", site),
		tx:             d("darse_site_network_transmit_bytes_total", "Bytes sent by the site's containers.", site),
		ioR:            d("darse_site_io_read_bytes_total", "Bytes read from block devices by the site's containers.", site),
		ioW:            d("darse_site_io_write_bytes_total", "Bytes written to block devices by the site's containers.", site),
		pids:           d("darse_site_pids", "Processes running in the site's containers.", site),
		up:             d("darse_site_up", "1 when every container of the site runs, else 0.", site),
		containers:     d("darse_site_containers", "Containers of the site, running or not.", site),
		passSeconds:    d("darse_metrics_pass_seconds", "How long the last pass over every site's containers took.", nil),
		passContainers: d("darse_metrics_pass_containers", "Running containers read by the last pass.", nil),
		collectOK:      d("darse_metrics_collect_ok", "1 when the last pass succeeded.", nil),
		cgroupVersion:  d("darse_metrics_cgroup_version", "The cgroup layout read: 1 or 2.", nil),
		opsDesc:        d("darse_operations", "Operations by state (queued, running, failed).", []string{"state"}),
	}
}

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{e.cpu, e.mem, e.oom, e.rx, e.tx, e.ioR, e.ioW, e.pids, e.up, e.containers,
		e.passSeconds, e.passContainers, e.collectOK, e.cgroupVersion, e.opsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: a pass (or the last one, if
// recent) and the operation counts. A failure is logged and shown as
// darse_metrics_collect_ok 0; the rest of the answer still comes.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	p, err := e.c.Collect(ctx)
	if err != nil {
		e.log.Warn("metrics pass", "err", err)
		gauge(e.collectOK, 0)
	} else {
		gauge(e.collectOK, 1)
		gauge(e.passSeconds, p.Took.Seconds())
		gauge(e.passContainers, float64(p.Containers))
		for _, s := range p.Sites {
			counter(e.cpu, s.CPUSeconds, s.Name)
			gauge(e.mem, float64(s.MemoryBytes), s.Name)
			counter(e.oom, float64(s.OOMKills), s.Name)
			counter(e.rx, float64(s.ReceiveBytes), s.Name)
			counter(e.tx, float64(s.TransmitBytes), s.Name)
			counter(e.ioR, float64(s.IOReadBytes), s.Name)
			counter(e.ioW, float64(s.IOWriteBytes), s.Name)
			gauge(e.pids, float64(s.Pids), s.Name)
			gauge(e.containers, float64(s.Containers), s.Name)
			up := 0.0
			if s.Up() {
				up = 1
			}
			gauge(e.up, up, s.Name)
		}
	}
	if v := e.c.CgroupVersion(); v != 0 {
		gauge(e.cgroupVersion, float64(v))
	}
	if e.ops == nil {
		return
	}
	counts, err := e.ops.OpCounts(ctx)
	if err != nil {
		e.log.Warn("count operations for metrics", "err", err)
		return
	}
	states := append([]string(nil), opStates...)
	sort.Strings(states)
	for _, st := range states {
		gauge(e.opsDesc, float64(counts[st]), st)
	}
}

// Handler serves the registry in Prometheus' text format.
func Handler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       30 * time.Second,
	})
}

// NewServer is an http.Server answering /metrics only, with deadlines: it
// is meant for a loopback address that a Prometheus on the host scrapes.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
