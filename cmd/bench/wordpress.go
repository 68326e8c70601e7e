package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

var wpRuns = flag.Int("wp-runs", 3, "runs per contender in the wordpress suite")

// The install form (step 1, what the language chooser leads to): step 0
// asks api.wordpress.org for languages first, which a bench must not.
const wpInstallPage = "/wp-admin/install.php?step=1"

// wordpressBench times `darse site create --template wordpress` until
// WordPress's install form answers 200 through Traefik, beside
// compose v2's and compose 1.29's up -d of the same folder from the same state (containers
// gone, an empty database folder); and reports the resident memory of an
// idle WordPress site, all its containers and their shims.
func wordpressBench(ctx context.Context, o options) error {
	f, stop, err := startFront(ctx, o, "wp")
	if err != nil {
		return err
	}
	defer stop()
	ps, err := peers()
	if err != nil {
		return err
	}
	var viaDarse []time.Duration
	byHand := make([][]time.Duration, len(ps))
	var idleDarse int
	idleHand := make([]int, len(ps))
	for i := 0; i < *wpRuns; i++ {
		name := fmt.Sprintf("wp%d-%d", os.Getpid(), i)
		host := name + "." + f.domain
		start := time.Now()
		if err := f.darse("site", "create", name, "--template", "wordpress"); err != nil {
			return err
		}
		d, err := f.until(host, wpInstallPage, 200, start, 120*time.Second)
		if err != nil {
			return err
		}
		viaDarse = append(viaDarse, d)
		if i == 0 {
			if idleDarse, err = idleKiB(ctx, name); err != nil {
				return err
			}
		}
		// By hand: the same folder, from the same state, with each peer.
		for k, p := range ps {
			if err := f.compose(ps[0], name, "down"); err != nil {
				return err
			}
			if err := emptyDir(filepath.Join(f.srv, "users", name, "db")); err != nil {
				return err
			}
			start = time.Now()
			if err := f.compose(p, name, "up", "-d"); err != nil {
				return err
			}
			if d, err = f.until(host, wpInstallPage, 200, start, 120*time.Second); err != nil {
				return err
			}
			byHand[k] = append(byHand[k], d)
			if i == 0 {
				if idleHand[k], err = idleKiB(ctx, name); err != nil {
					return err
				}
			}
		}
	}
	// The same sites again, all three idle: PSS splits the pages they
	// share (the images' binaries and libraries) among them, which is what
	// each costs on a host that runs many.
	var wpSites []string
	for i := 0; i < *wpRuns; i++ {
		wpSites = append(wpSites, fmt.Sprintf("wp%d-%d", os.Getpid(), i))
	}
	idleShared, err := idleKiB(ctx, wpSites...)
	if err != nil {
		return err
	}
	static, err := idleTemplate(ctx, f, "static", "st", "/")
	if err != nil {
		return err
	}
	php, err := idleTemplate(ctx, f, "php", "php", "/")
	if err != nil {
		return err
	}
	md := median(viaDarse)
	fmt.Printf("wordpress: create until the install form answers 200 through Traefik (%d runs each, median)\n", *wpRuns)
	fmt.Printf("  darse site create: %6.0f ms", ms(md))
	for k, p := range ps {
		mh := median(byHand[k])
		fmt.Printf("   %s up -d: %6.0f ms (ratio %s)", p.name, ms(mh), ratio(ms(md), ms(mh)))
	}
	fmt.Printf("   (target: darse < 5000 ms)\n")
	fmt.Printf("wordpress: idle site's resident memory (proportional set size of every process of its containers and their shims; median of %d samples from %s after the last request)\n", wpSamples, wpIdle)
	fmt.Printf("  darse: %6.1f MiB", float64(idleDarse)/1024)
	for k, p := range ps {
		fmt.Printf("   %s: %6.1f MiB (ratio %s)", p.name, float64(idleHand[k])/1024, ratio(float64(idleDarse), float64(idleHand[k])))
	}
	fmt.Printf("   (target: darse < 80 MiB)\n")
	fmt.Printf("  each of %d idle WordPress sites (the pages they share split among them): %6.1f MiB\n", len(wpSites), float64(idleShared)/1024)
	fmt.Printf("idle static site, all included: alone %.1f MiB, each of %d %.1f MiB   (target: < 6 MiB)\n", float64(static.alone)/1024, idleSites, float64(static.each)/1024)
	fmt.Printf("idle PHP site, all included:    alone %.1f MiB, each of %d %.1f MiB\n", float64(php.alone)/1024, idleSites, float64(php.each)/1024)
	return nil
}

// idleSites is how many sites of a template idleTemplate measures together.
const idleSites = 3

// idleFigure is an idle site's memory (KiB), alone and when idleSites of
// the same template share their images' pages.
type idleFigure struct{ alone, each int }

// idleTemplate creates a site of tmpl, measures it idle alone, creates
// idleSites-1 more and measures the mean per site. Other containers of the
// same images on the engine (other tests') lower "alone" too: PSS divides
// shared pages among every process that maps them.
func idleTemplate(ctx context.Context, f *benchFront, tmpl, prefix, path string) (idleFigure, error) {
	var fig idleFigure
	var names []string
	// Gone when measured, so the next template's "alone" shares nothing
	// with these (the php template's web service runs darse/nginx too).
	defer func() {
		for _, n := range names {
			f.darse("site", "rm", n, "--purge", "--yes")
		}
	}()
	for i := range idleSites {
		name := fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), i)
		start := time.Now()
		if err := f.darse("site", "create", name, "--template", tmpl); err != nil {
			return fig, err
		}
		if _, err := f.until(name+"."+f.domain, path, 200, start, 60*time.Second); err != nil {
			return fig, err
		}
		names = append(names, name)
		if i == 0 {
			kib, err := idleKiB(ctx, name)
			if err != nil {
				return fig, err
			}
			fig.alone = kib
		}
	}
	kib, err := idleKiB(ctx, names...)
	if err != nil {
		return fig, err
	}
	fig.each = kib
	return fig, nil
}

// An idle site's memory is sampled wpSamples times, wpEvery apart, after
// wpIdle without a request; the median is reported. php-fpm's workers
// leave 10 s after their last request, and each health check of the php
// service (every 30 s) starts one: the samples span that cycle.
const (
	wpIdle    = 15 * time.Second
	wpSamples = 5
	wpEvery   = 6 * time.Second
)

// idleKiB samples the sites' memory (siteKiB, the mean per site) while
// they are left alone.
func idleKiB(ctx context.Context, sites ...string) (int, error) {
	var samples []int
	wait := wpIdle
	for range wpSamples {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		wait = wpEvery
		sum := 0
		for _, site := range sites {
			kib, err := siteKiB(ctx, site, len(samples) == wpSamples/2 && len(sites) == 1)
			if err != nil {
				return 0, err
			}
			sum += kib
		}
		samples = append(samples, sum/len(sites))
	}
	slices.Sort(samples)
	return samples[len(samples)/2], nil
}

// siteKiB sums the proportional set size of every process in the site's
// running containers and of each container's shim; show prints it by
// program.
func siteKiB(ctx context.Context, site string, show bool) (int, error) {
	return containersKiB(ctx, site, show, "label=com.docker.compose.project="+site)
}

// containersKiB is siteKiB for the running containers docker ps lists
// with filters; what names them in the breakdown.
func containersKiB(ctx context.Context, what string, show bool, filters ...string) (int, error) {
	args := []string{"ps", "-q", "--no-trunc"}
	for _, f := range filters {
		args = append(args, "--filter", f)
	}
	out, err := exec.CommandContext(ctx, "docker", args...).Output()
	if err != nil {
		return 0, fmt.Errorf("docker ps: %w", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return 0, fmt.Errorf("%s runs no container", what)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	total := 0
	seen := map[int]bool{}
	by := map[string]int{} // per program, for the breakdown printed
	add := func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		kib := pssKiB(pid)
		total += kib
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		by[strings.TrimSpace(string(comm))] += kib
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			continue
		}
		for _, id := range ids {
			if strings.Contains(string(cg), id) {
				add(pid)
			}
		}
		// The shim: containerd-shim-runc-v2 … -id <container id>.
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmd), "containerd-shim") {
			for _, id := range ids {
				if strings.Contains(string(cmd), id) {
					add(pid)
				}
			}
		}
	}
	if show {
		var parts []string
		for _, name := range slices.Sorted(maps.Keys(by)) {
			parts = append(parts, fmt.Sprintf("%s %.1f", name, float64(by[name])/1024))
		}
		fmt.Printf("  %s, by program: %s MiB\n", what, strings.Join(parts, ", "))
	}
	return total, nil
}

// pssKiB reads a process's proportional set size (shared pages divided
// among their users), 0 if it is gone.
func pssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kib, _ := strconv.Atoi(strings.Fields(v)[0])
			return kib
		}
	}
	return 0
}

// emptyDir removes what dir holds, keeping dir (its owner and mode).
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
