package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	densitySizes    = flag.String("density-sizes", "100,500,1000,2000", "site counts the density suite measures at, ascending")
	densityParallel = flag.Int("density-parallel", 8, "sites the density suite creates at a time")
	densityProbes   = flag.Int("density-probes", 5, "new sites timed one at a time from create to the first 200, at each size")
	densityEngine   = flag.String("density-engine", "own", "own: an engine the density suite starts in a network namespace of its own (restarted for the downtime figure); current: DOCKER_HOST's, never restarted")
)

// The targets the density suite prints beside its figures (issue 14).
const (
	targetSites      = 2000
	targetAt         = 1000 // sites at which the latency targets apply
	targetCreate200  = time.Second
	targetSiteLs     = time.Second
	targetIdleStatic = 6 << 10 // KiB
)

// densityPHP sites are created first, one of them then brought up by
// compose v2: the idle PHP site's memory, darse's beside the peer's.
const densityPHP = 3

// densityBench fills one engine with static sites in parallel batches up
// to each of -density-sizes and measures, at each size, what a host full
// of sites costs: sites created per minute, an idle static and PHP site's
// memory, Traefik's, create→200 through Traefik, `darse site ls`, the
// panel's admin list; then the downtime of an engine restart. Each beside
// compose v2's up -d of the same folders where that has a meaning.
func densityBench(ctx context.Context, o options) error {
	sizes, err := parseSizes(*densitySizes)
	if err != nil {
		return err
	}
	if *densityParallel < 1 || *densityProbes < 1 {
		return fmt.Errorf("-density-parallel and -density-probes: want at least 1")
	}
	switch *densityEngine {
	case "current":
		return densityRun(ctx, o, sizes, nil)
	case "own":
	default:
		return fmt.Errorf("-density-engine %q: want own or current", *densityEngine)
	}
	run := os.Getenv(densityEngineEnv)
	if run == "" {
		return densityInNamespace(ctx)
	}
	// Here inside the namespace: an interrupt still cleans up.
	ctx, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	eng, err := startBenchEngine(ctx, run)
	if err != nil {
		return err
	}
	defer eng.stop()
	os.Setenv("DOCKER_HOST", eng.host) // for darse, docker and compose alike
	return densityRun(ctx, o, sizes, eng)
}

// parseSizes reads -density-sizes: ascending positive site counts.
func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 10000 {
			return nil, fmt.Errorf("-density-sizes %q: %q is not a site count from 1 to 10000", s, f)
		}
		if len(sizes) > 0 && n <= sizes[len(sizes)-1] {
			return nil, fmt.Errorf("-density-sizes %q: want ascending counts", s)
		}
		sizes = append(sizes, n)
	}
	if sizes[0] < densityPHP+1 {
		return nil, fmt.Errorf("-density-sizes %q: the first size must be at least %d (%d PHP sites and a static one)", s, densityPHP+1, densityPHP)
	}
	return sizes, nil
}

// density is one run's platform and what it has created.
type density struct {
	ctx     context.Context
	o       options
	f       *benchFront
	v2      peer
	static  []string // static sites, in creation order
	php     []string
	peerMax int             // sites of a batch compose v2 brings up again
	byPeer  map[string]bool // sites whose containers compose v2 made
	admin   *http.Client
	panel   string       // the panel's address
	last    *densityStep // what the last grow measured
}

// densityRun runs the suite against the engine DOCKER_HOST names; eng is
// the engine the suite started (restarted at the end), nil if not its own.
func densityRun(ctx context.Context, o options, sizes []int, eng *benchEngine) error {
	ps, err := peers()
	if err != nil {
		return err
	}
	f, stop, err := startFront(ctx, o, "density")
	if err != nil {
		return err
	}
	defer stop()
	d := &density{ctx: ctx, o: o, f: f, v2: ps[0], peerMax: 2 * *densityParallel, byPeer: map[string]bool{}}
	if eng == nil {
		// On an engine that is not the bench's own, every site goes.
		defer d.removeSites()
	}
	stopPanel, err := d.startPanel()
	if err != nil {
		return err
	}
	defer stopPanel()
	fmt.Printf("density: static sites created %d at a time up to %v; targets: %d static sites, create->200 < %v and site ls < %v at %d sites, idle static site < %d MiB, zero downtime across an engine restart\n",
		*densityParallel, sizes, targetSites, targetCreate200, targetSiteLs, targetAt, targetIdleStatic>>10)
	var failed error
	for _, size := range sizes {
		if failed = d.grow(size); failed != nil {
			fmt.Printf("at %d sites: creating more failed: %v\n", d.sites(), failed)
			break
		}
		if err := d.measure(size); err != nil {
			return err
		}
	}
	verdict := "met"
	if d.sites() < targetSites {
		verdict = "NOT MET"
	}
	fmt.Printf("sites reached: %d (target %d: %s)\n", d.sites(), targetSites, verdict)
	if eng == nil {
		fmt.Println("engine restart: not measured (-density-engine current: the bench restarts only an engine it started)")
		return failed
	}
	if err := d.restartDowntime(eng); err != nil {
		return err
	}
	return failed
}

func (d *density) sites() int { return len(d.static) + len(d.php) }

// darse runs darse for the platform without recording the site for the
// front's clean-up (which removes one site at a time).
func (d *density) darse(args ...string) error {
	cmd := exec.CommandContext(d.ctx, d.o.darseBin, args...)
	cmd.Env = append(os.Environ(), "DARSE_SRV="+d.f.srv)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("darse %v: %v: %s", args, err, out)
	}
	return nil
}

func (d *density) removeSites() {
	all := append(slices.Clone(d.static), d.php...)
	each(*densityParallel, len(all), func(i int) error {
		if err := d.darse("site", "rm", all[i], "--purge", "--yes"); err != nil {
			fmt.Fprintln(os.Stderr, "bench density: clean up:", err)
		}
		return nil
	})
}

// startPanel starts `darse panel` for the platform, logged in as an admin.
func (d *density) startPanel() (stop func(), err error) {
	cmd := exec.CommandContext(d.ctx, d.o.darseBin, "user", "add", "root", "--admin")
	cmd.Env = append(os.Environ(), "DARSE_SRV="+d.f.srv)
	cmd.Stdin = strings.NewReader("bench admin password\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("darse user add: %v: %s", err, out)
	}
	base, _, stop, err := startPanel(d.ctx, d.o.darseBin, d.f.srv)
	if err != nil {
		return nil, err
	}
	d.panel = base
	if d.admin, err = panelLogin(base, "root", "bench admin password"); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

func (d *density) name(kind string, i int) string {
	return fmt.Sprintf("dn%d-%s%d", os.Getpid(), kind, i)
}

func (d *density) host(site string) string { return site + "." + d.f.domain }

func (d *density) dir(site string) string { return filepath.Join(d.f.srv, "users", site) }

// grow creates sites up to size: the PHP ones first (first size only),
// then static ones in parallel batches, then -density-probes ones one at a
// time, each timed until its first 200 through Traefik, beside compose
// v2; and compose v2 brings up a share of the batch again, timed the same.
func (d *density) grow(size int) error {
	step := &densityStep{size: size}
	for len(d.php) < densityPHP {
		n := d.name("p", len(d.php))
		if err := d.darse("site", "create", n, "--template", "php"); err != nil {
			return err
		}
		d.php = append(d.php, n)
	}
	probes := min(*densityProbes, size-d.sites())
	batch := size - d.sites() - probes
	first := len(d.static)
	names := make([]string, batch)
	for i := range names {
		names[i] = d.name("s", first+i)
	}
	var mu sync.Mutex
	t0 := time.Now()
	err := each(*densityParallel, batch, func(i int) error {
		if err := d.darse("site", "create", names[i], "--template", "static"); err != nil {
			return err
		}
		mu.Lock()
		d.static = append(d.static, names[i])
		mu.Unlock()
		return nil
	})
	step.batch, step.batchTook = batch, time.Since(t0)
	if err != nil {
		return err
	}
	for range probes {
		n := d.name("s", len(d.static))
		start := time.Now()
		if err := d.darse("site", "create", n, "--template", "static"); err != nil {
			return err
		}
		d.static = append(d.static, n)
		took, err := d.f.until(d.host(n), "/", 200, start, time.Minute)
		if err != nil {
			return err
		}
		step.create200 = append(step.create200, took)
		step.probes = append(step.probes, n)
	}
	if err := d.peerStep(step, names); err != nil {
		return err
	}
	d.last = step
	return nil
}

// peerStep gives compose v2 the same work: up -d of a share of the batch's
// folders as many at a time (after a down), and each probe's folder from
// down until its first 200 through Traefik.
func (d *density) peerStep(step *densityStep, batch []string) error {
	// At most half the batch, so that darse's own sites stay to measure.
	share := batch[len(batch)-min(d.peerMax, len(batch)/2):]
	if err := each(*densityParallel, len(share), func(i int) error { return d.v2.run(d.ctx, d.dir(share[i]), "down") }); err != nil {
		return err
	}
	t0 := time.Now()
	if err := each(*densityParallel, len(share), func(i int) error { return d.v2.run(d.ctx, d.dir(share[i]), "up", "-d") }); err != nil {
		return err
	}
	step.peerBatch, step.peerBatchTook = len(share), time.Since(t0)
	for _, n := range share {
		d.byPeer[n] = true
	}
	for _, n := range step.probes {
		if err := d.v2.run(d.ctx, d.dir(n), "down"); err != nil {
			return err
		}
		if _, err := d.f.until(d.host(n), "/", 404, time.Now(), time.Minute); err != nil {
			return err
		}
		start := time.Now()
		if err := d.v2.run(d.ctx, d.dir(n), "up", "-d"); err != nil {
			return err
		}
		took, err := d.f.until(d.host(n), "/", 200, start, time.Minute)
		if err != nil {
			return err
		}
		step.peer200 = append(step.peer200, took)
		d.byPeer[n] = true
	}
	// One PHP site is compose v2's, once.
	if p := d.php[densityPHP-1]; !d.byPeer[p] {
		if err := d.v2.run(d.ctx, d.dir(p), "down"); err != nil {
			return err
		}
		if err := d.v2.run(d.ctx, d.dir(p), "up", "-d"); err != nil {
			return err
		}
		d.byPeer[p] = true
	}
	return nil
}

// densityStep is what growing to one size measured.
type densityStep struct {
	size                     int
	batch, peerBatch         int
	batchTook, peerBatchTook time.Duration
	probes                   []string
	create200, peer200       []time.Duration
}

func perMinute(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Minutes()
}
