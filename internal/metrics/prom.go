package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/darse/darse/internal/store"
)

// Ops counts the operations in each state and lists the ended ones
// (*store.Store): the panel's and the CLI's operations alike, since both
// record them there.
type Ops interface {
	OpCounts(ctx context.Context) (map[string]int, error)
	ListOps(ctx context.Context, f store.OpFilter) ([]*store.Operation, error)
}

// Backups gives each site's last backup runs (*store.Store), as the alert
// watcher reads them.
type Backups interface {
	LastBackups(ctx context.Context) (last, lastDone map[string]*store.Backup, err error)
}

// DiskFigures gives each site's last measured disk use (*DiskWalker).
type DiskFigures interface {
	DiskBytes() map[string]uint64
}

// Sources are what an Exporter reads besides the collector; nil fields
// are not exported.
type Sources struct {
	Ops     Ops
	Backups Backups
	Disk    DiskFigures
	Now     func() time.Time
}

// endedWindow is how many of the latest ended operations each scrape
// looks at for durations not yet observed: more than end between two
// scrapes only on a very busy host, and those few are then not observed.
const endedWindow = 500

// durationBuckets span a start (a second) to a big restore (an hour).
var durationBuckets = []float64{0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// opStates are the states exported; done operations only grow in number
// and say nothing an alert needs.
var opStates = []string{"queued", "running", "failed"}

// Exporter is a prometheus.Collector over a Collector and the store's
// operations. Its labels are per site only: no container, no request.
type Exporter struct {
	c       *Collector
	src     Sources
	timeout time.Duration
	log     *slog.Logger

	// Operation durations: observed once each, for operations ended
	// since the exporter started (the histogram's counters start then,
	// as any process's do).
	mu       sync.Mutex
	since    time.Time
	observed map[int64]bool
	opDur    *prometheus.HistogramVec

	cpu, mem, oom, rx, tx, ioR, ioW, pids, up, containers *prometheus.Desc
	passSeconds, passContainers, collectOK, cgroupVersion *prometheus.Desc
	opsDesc, disk, backupAge, platformBackupAge           *prometheus.Desc
}

// NewExporter exports c's passes and what src gives: operations queued,
// running and failed and how long the ended ones took, disk use and
// backup age per site.
func NewExporter(c *Collector, src Sources, log *slog.Logger) *Exporter {
	if src.Now == nil {
		src.Now = time.Now
	}
	site := []string{"site"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Exporter{c: c, src: src, timeout: 10 * time.Second, log: log,
		since: src.Now(), observed: map[int64]bool{},
		opDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "darse_operation_duration_seconds",
			Help:    "How long operations took, from start to end (done or failed), by kind.",
			Buckets: durationBuckets,
		}, []string{"kind"}),
		disk:              d("darse_site_disk_bytes", "Disk space used by the site's folder and named volumes, walked every 15 minutes.", site),
		backupAge:         d("darse_site_backup_age_seconds", "Time since the site's last successful backup.", site),
		platformBackupAge: d("darse_platform_backup_age_seconds", "Time since the platform's last successful backup (its store).", nil),
		cpu:               d("darse_site_cpu_seconds_total", "CPU time used by the site's containers.", site),
		mem:               d("darse_site_memory_bytes", "Memory used by the site's containers, less the inactive page cache.", site),
		oom:               d("darse_site_oom_kills_total", "Processes of the site killed for exceeding its memory limit.", site),
		rx:                d("darse_site_network_receive_bytes_total", "Bytes received by the site's containers.", site),
		tx:                d("darse_site_network_transmit_bytes_total", "Bytes sent by the site's containers.", site),
		ioR:               d("darse_site_io_read_bytes_total", "Bytes read from block devices by the site's containers.", site),
		ioW:               d("darse_site_io_write_bytes_total", "Bytes written to block devices by the site's containers.", site),
		pids:              d("darse_site_pids", "Processes running in the site's containers.", site),
		up:                d("darse_site_up", "1 when every container of the site runs, else 0.", site),
		containers:        d("darse_site_containers", "Containers of the site, running or not.", site),
		passSeconds:       d("darse_metrics_pass_seconds", "How long the last pass over every site's containers took.", nil),
		passContainers:    d("darse_metrics_pass_containers", "Running containers read by the last pass.", nil),
		collectOK:         d("darse_metrics_collect_ok", "1 when the last pass succeeded.", nil),
		cgroupVersion:     d("darse_metrics_cgroup_version", "The cgroup layout read: 1 or 2.", nil),
		opsDesc:           d("darse_operations", "Operations by state (queued, running, failed).", []string{"state"}),
	}
}

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{e.cpu, e.mem, e.oom, e.rx, e.tx, e.ioR, e.ioW, e.pids, e.up, e.containers,
		e.passSeconds, e.passContainers, e.collectOK, e.cgroupVersion, e.opsDesc, e.disk, e.backupAge, e.platformBackupAge} {
		ch <- d
	}
	e.opDur.Describe(ch)
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
	var sites map[string]bool // the store's, when the pass says
	if p != nil {
		sites = make(map[string]bool, len(p.Sites))
		for _, s := range p.Sites {
			sites[s.Name] = true
		}
	}
	if e.src.Disk != nil {
		for name, n := range e.src.Disk.DiskBytes() {
			gauge(e.disk, float64(n), name)
		}
	}
	if e.src.Backups != nil {
		e.backupAges(ctx, sites, gauge)
	}
	if e.src.Ops != nil {
		e.operations(ctx, gauge)
		e.opDur.Collect(ch)
	}
}

// backupAges exports the age of each site's last successful backup (of
// sites still in the store) and the platform's.
func (e *Exporter) backupAges(ctx context.Context, sites map[string]bool, gauge func(*prometheus.Desc, float64, ...string)) {
	_, done, err := e.src.Backups.LastBackups(ctx)
	if err != nil {
		e.log.Warn("read backups for metrics", "err", err)
		return
	}
	now := e.src.Now()
	for site, b := range done {
		age := max(now.Sub(b.FinishedAt).Seconds(), 0)
		switch {
		case site == "":
			gauge(e.platformBackupAge, age)
		case sites == nil || sites[site]:
			gauge(e.backupAge, age, site)
		}
	}
}

// operations exports the counts by state and observes the durations of
// operations ended since the last scrape.
func (e *Exporter) operations(ctx context.Context, gauge func(*prometheus.Desc, float64, ...string)) {
	counts, err := e.src.Ops.OpCounts(ctx)
	if err != nil {
		e.log.Warn("count operations for metrics", "err", err)
	} else {
		for _, st := range opStates {
			gauge(e.opsDesc, float64(counts[st]), st)
		}
	}
	ended, err := e.src.Ops.ListOps(ctx, store.OpFilter{States: []string{store.OpDone, store.OpFailed}, Limit: endedWindow})
	if err != nil {
		e.log.Warn("list ended operations for metrics", "err", err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Only ids still in the window are remembered: one that left it
	// cannot come back.
	seen := make(map[int64]bool, len(ended))
	for _, op := range ended {
		if op.FinishedAt.Before(e.since) {
			continue
		}
		seen[op.ID] = true
		if e.observed[op.ID] {
			continue
		}
		start := op.StartedAt
		if start.IsZero() { // failed before it ran (its early check)
			start = op.CreatedAt
		}
		e.opDur.WithLabelValues(op.Kind).Observe(max(op.FinishedAt.Sub(start).Seconds(), 0))
	}
	e.observed = seen
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
