package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/metrics"
)

// metricsBench reads the figures of N running containers, one site each
// (DARSE_BENCH_METRICS_SITES, default 200), with darse's collector (cgroup
// files and net/dev) and with the engine's stats API, as Coolify's and
// Dokploy's monitoring do: wall time per pass, this process's CPU and the
// engine's. Targets: a pass over 1,000 sites under 1 s; under 2% of one
// core at a 15 s interval.
func metricsBench(ctx context.Context, o options) error {
	sites := 200
	if v := os.Getenv("DARSE_BENCH_METRICS_SITES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("DARSE_BENCH_METRICS_SITES=%q: want a positive number", v)
		}
		sites = n
	}
	eng, err := engine.New(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	const image = "darse/nginx:bookworm"
	if ok, err := eng.ImageExists(ctx, image); err != nil || !ok {
		return fmt.Errorf("image %s is missing (darse images build nginx): %v", image, err)
	}
	names := make([]string, sites)
	var ids []string
	zero := 0
	defer func() {
		for _, id := range ids {
			if err := eng.RemoveContainer(context.Background(), id, &zero); err != nil {
				fmt.Fprintln(os.Stderr, "bench metrics: clean up:", err)
			}
		}
	}()
	start := time.Now()
	for i := range names {
		names[i] = fmt.Sprintf("mb%d-%d", i, os.Getpid())
		id, err := eng.RunContainer(ctx, names[i], compose.Container{Image: image,
			Labels: map[string]string{labels.SiteLabel: names[i]}, Memory: 32 << 20, PidsLimit: 64})
		if id != "" {
			ids = append(ids, id)
		}
		if err != nil {
			return fmt.Errorf("run %s: %w", names[i], err)
		}
	}
	fmt.Printf("%d containers, one site each, started in %.1fs\n", sites, time.Since(start).Seconds())
	dockerd := dockerdPID()

	// darse: the first pass asks the engine for each container's process
	// once; the next ones read files only.
	c := metrics.New(eng, metrics.Config{MinInterval: -1,
		Sites: func(context.Context) ([]string, error) { return names, nil }}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t0 := time.Now()
	p, err := c.Collect(ctx)
	if err != nil {
		return err
	}
	first := time.Since(t0)
	if p.Containers != sites {
		return fmt.Errorf("the collector read %d containers of %d (%d failed)", p.Containers, sites, p.Failed)
	}
	var passes []time.Duration
	cpu0, d0 := selfCPU(), procCPU(dockerd)
	for range o.n {
		t := time.Now()
		if _, err := c.Collect(ctx); err != nil {
			return err
		}
		passes = append(passes, time.Since(t))
	}
	ownCPU, engCPU := (selfCPU()-cpu0)/time.Duration(o.n), (procCPU(dockerd)-d0)/time.Duration(o.n)
	med := median(passes)
	fmt.Printf("collector  first pass %7.1f ms (with %d inspections, once per container start)\n", ms(first), sites)
	fmt.Printf("collector  pass p50 %7.1f ms, max %7.1f ms; CPU per pass: darse %.1f ms, engine %.1f ms (%d passes)\n",
		ms(med), ms(maxOf(passes)), ms(ownCPU), ms(engCPU), o.n)
	fmt.Printf("collector  at a 15 s interval: %.3f%% of one core; 1,000 sites at this rate: ~%.0f ms a pass\n",
		100*float64(ownCPU+engCPU)/float64(15*time.Second), ms(med)*1000/float64(sites))

	// The stats API, 8 containers at a time, one round over the same
	// containers.
	cpu0, d0 = selfCPU(), procCPU(dockerd)
	t0 = time.Now()
	errs := make(chan error, len(ids))
	sem := make(chan struct{}, 8)
	for _, id := range ids {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := eng.Usage(ctx, id)
			errs <- err
		}()
	}
	for range ids {
		if err := <-errs; err != nil {
			return err
		}
	}
	stats := time.Since(t0)
	sOwn, sEng := selfCPU()-cpu0, procCPU(dockerd)-d0
	fmt.Printf("stats API  pass %7.1f ms (8 at a time); CPU: darse %.1f ms, engine %.1f ms\n", ms(stats), ms(sOwn), ms(sEng))
	fmt.Printf("ratio      stats API / collector: wall %.0fx, CPU %.0fx\n",
		float64(stats)/float64(med), float64(sOwn+sEng)/float64(max(ownCPU+engCPU, time.Microsecond)))
	return nil
}

// selfCPU is this process's user and system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// dockerdPID is the engine's process: the test engine's (its pidfile in
// DARSE_TEST_ENGINE_PIDFILE) or the host's; 0 when unknown.
func dockerdPID() int {
	for _, f := range []string{os.Getenv("DARSE_TEST_ENGINE_PIDFILE"), "/var/run/docker.pid"} {
		if f == "" {
			continue
		}
		if b, err := os.ReadFile(f); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
	}
	return 0
}

// procCPU is a process's user and system time from /proc/PID/stat (clock
// ticks of 10 ms), 0 when unknown.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}
