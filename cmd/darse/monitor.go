package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/darse/darse/internal/alert"
	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/metrics"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/store"
)

// startMonitoring is the panel's watch over the sites: one collector,
// read by the metrics endpoint, the history recorder (a point a minute
// per site, folded and pruned in the store) and, when darse.yml has
// alerts:, the alert watcher; and the disk walker, measuring each site's
// folder and volumes every 15 minutes for the metrics endpoint. Its loops
// end with ctx.
func startMonitoring(ctx context.Context, srv string, plat platform.Config, eng *engine.Engine, st *store.Store, log *slog.Logger) (*metrics.Collector, *metrics.DiskWalker) {
	siteNames := func(ctx context.Context) ([]string, error) {
		sites, err := st.ListSites(ctx)
		if err != nil {
			return nil, err
		}
		names := make([]string, len(sites))
		for i, s := range sites {
			names[i] = s.Name
		}
		return names, nil
	}
	collector := metrics.New(eng, metrics.Config{
		CgroupRoot: envOr("DARSE_METRICS_CGROUP", "/sys/fs/cgroup"),
		ProcRoot:   envOr("DARSE_METRICS_PROC", "/proc"),
		Sites:      siteNames,
	}, log)
	disk := metrics.NewDiskWalker(metrics.DiskConfig{
		UsersDir: hosting.Config{Srv: srv}.UsersDir(),
		Sites:    siteNames,
		Volumes:  eng.SiteVolumeMounts,
		// The engine names volumes' folders on the host; in the panel's
		// container the host's volumes folder is mounted under this.
		VolumePrefix: os.Getenv("DARSE_METRICS_HOST_ROOT"),
	}, log)
	go disk.Run(ctx)
	go metrics.NewRecorder(collector, st, log).Run(ctx)
	if plat.Alerts != nil {
		w := alert.New(*plat.Alerts, st, collector, srv, log)
		w.ACMEFile = filepath.Join(srv, platform.FrontDir, "data", "acme.json") // Traefik's /data/acme.json
		go w.Run(ctx)
	}
	return collector, disk
}
