package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	rolloutSites    = flag.Int("rollout-sites", 100, "sites the rollout suite rolls out")
	rolloutParallel = flag.Int("rollout-parallel", 8, "sites rolled out at a time (darse --parallel, compose workers)")
)

// rolloutBench rolls -rollout-sites static sites onto a rebuilt image with
// `darse images rollout --all` while every site is requested through
// Traefik, then does the same with `up -d` of compose v2 and of compose
// 1.29 in each folder after the same rebuild (as many at a time), failed requests counted the
// same way (anything but 200 with the site's page).
func rolloutBench(ctx context.Context, o options) error {
	ps, err := peers()
	if err != nil {
		return err
	}
	srv, err := os.MkdirTemp("", "darse-bench-rollout")
	if err != nil {
		return err
	}
	defer os.RemoveAll(srv)
	port := freePort()
	project := fmt.Sprintf("front-rb%d", os.Getpid())
	domain := "bench.example.org"
	table := fmt.Sprintf("darse-rb%d", os.Getpid())
	defer exec.Command("nft", "delete", "table", "inet", table).Run()
	os.MkdirAll(filepath.Join(srv, "conf"), 0o700)
	conf := fmt.Sprintf("domain: %s\nfront:\n  project: %s\n  http: \":%d\"\n  https: \":%d\"\n  api: \"127.0.0.1:%d\"\nfirewall:\n  table: %s\n  label: darse.bench=%d\npanel:\n  project: %s-panel\n",
		domain, project, port, freePort(), freePort(), table, os.Getpid(), project)
	if err := os.WriteFile(filepath.Join(srv, "conf", "darse.yml"), []byte(conf), 0o644); err != nil {
		return err
	}
	darse := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, o.darseBin, args...)
		cmd.Env = append(os.Environ(), "DARSE_SRV="+srv)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("darse %v: %v: %s", args, err, out)
		}
		return string(out), nil
	}
	tag := fmt.Sprintf("darse-bench/rollout-%d:bookworm", os.Getpid())
	if out, err := exec.CommandContext(ctx, "docker", "tag", "darse/nginx:bookworm", tag).CombinedOutput(); err != nil {
		return fmt.Errorf("docker tag: %v: %s", err, out)
	}
	defer exec.Command("docker", "rmi", tag).Run()
	if _, err := darse("platform", "up"); err != nil {
		return err
	}
	defer darse("platform", "down")
	// The shipped templates are installed by templates ls; the copy names
	// the bench's own image, so that rebuilding it touches nothing else.
	if _, err := darse("templates", "ls"); err != nil {
		return err
	}
	if err := benchTemplate(srv, tag); err != nil {
		return err
	}
	pages := map[string]string{}
	var names []string
	defer func() {
		for _, n := range names {
			darse("site", "rm", n, "--purge", "--yes")
		}
	}()
	if err := each(*rolloutParallel, *rolloutSites, func(i int) error {
		name := fmt.Sprintf("rb%d-%d", os.Getpid(), i)
		if _, err := darse("site", "create", name, "--template", "rollbench"); err != nil {
			return err
		}
		page := "<p>" + name + "</p>\n"
		return os.WriteFile(filepath.Join(srv, "users", name, "data", "index.html"), []byte(page), 0o644)
	}); err != nil {
		return err
	}
	for i := 0; i < *rolloutSites; i++ {
		name := fmt.Sprintf("rb%d-%d", os.Getpid(), i)
		names = append(names, name)
		pages[name+"."+domain] = "<p>" + name + "</p>\n"
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	time.Sleep(2 * time.Second) // every site routed
	var why failures
	measure := func(do func() error) (time.Duration, int64, int64, error) {
		why.reset()
		if err := benchRebuild(ctx, tag); err != nil {
			return 0, 0, 0, err
		}
		stop := make(chan struct{})
		var ok, failed atomic.Int64
		var wg sync.WaitGroup
		benchLoad(addr, pages, 4, stop, &ok, &failed, &wg, &why)
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		err := do()
		took := time.Since(start)
		time.Sleep(500 * time.Millisecond)
		close(stop)
		wg.Wait()
		return took, ok.Load(), failed.Load(), err
	}
	dt, dok, dfail, err := measure(func() error {
		_, err := darse("images", "rollout", "--all", "--parallel", fmt.Sprint(*rolloutParallel))
		return err
	})
	if err != nil {
		return err
	}
	type row struct {
		name         string
		took         time.Duration
		okN, failedN int64
	}
	rows := []row{{"darse images rollout", dt, dok, dfail}}
	darseWhy := why.String()
	for _, p := range ps {
		ct, cok, cfail, err := measure(func() error {
			return each(*rolloutParallel, len(names), func(i int) error {
				return p.run(ctx, filepath.Join(srv, "users", names[i]), "up", "-d")
			})
		})
		if err != nil {
			return err
		}
		rows = append(rows, row{p.name + " up -d", ct, cok, cfail})
	}
	fmt.Printf("rollout of %d sites onto a rebuilt image, %d at a time, requested through Traefik meanwhile\n", len(names), *rolloutParallel)
	for _, r := range rows {
		fmt.Printf("  %-22s %6.1f s, %d of %d requests failed\n", r.name+":", r.took.Seconds(), r.failedN, r.okN+r.failedN)
	}
	if darseWhy != "" {
		fmt.Printf("  darse's failed requests, the first of them:\n%s", darseWhy)
	}
	for _, r := range rows[1:] {
		fmt.Printf("  ratio darse/%s: time %.2fx, failed requests %s\n", r.name, dt.Seconds()/r.took.Seconds(), failRatio(dfail, dok+dfail, r.failedN, r.okN+r.failedN))
	}
	return nil
}

// failRatio compares the failed shares of two runs.
func failRatio(df, dn, cf, cn int64) string {
	if cf == 0 || dn == 0 || cn == 0 {
		return fmt.Sprintf("%d vs %d", df, cf)
	}
	return fmt.Sprintf("%.3fx", (float64(df)/float64(dn))/(float64(cf)/float64(cn)))
}

// each runs do(0..n-1), workers at a time, and returns the first error;
// after it, no new i is started (a full bridge fails every create after).
func each(workers, n int, do func(i int) error) error {
	jobs := make(chan int)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for w := 0; w < max(workers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := do(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return first
}

// benchTemplate copies the static template as rollbench, its web image tag.
func benchTemplate(srv, tag string) error {
	src := filepath.Join(srv, "templates", "static")
	dst := filepath.Join(srv, "templates", "rollbench")
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "docker-compose.yml" {
			b = []byte(strings.Replace(string(b), "image: darse/nginx:bookworm", "image: "+tag, 1))
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

// benchRebuild gives tag a new image: its content plus one file.
func benchRebuild(ctx context.Context, tag string) error {
	tmp := fmt.Sprintf("darse-bench-rebuild-%d", os.Getpid())
	defer exec.Command("docker", "rm", "-f", tmp).Run()
	f, err := os.CreateTemp("", "rebuilt")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	fmt.Fprintln(f, time.Now())
	f.Close()
	for _, args := range [][]string{{"create", "--name", tmp, tag}, {"cp", f.Name(), tmp + ":/etc/darse-rebuilt"}, {"commit", tmp, tag}} {
		if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("docker %s: %v: %s", args[0], err, out)
		}
	}
	return nil
}

// benchLoad requests every page from a few workers until stop is closed
// (at most a million requests): a request fails unless it gets 200 and
// the site's own page.
func benchLoad(addr string, pages map[string]string, workers int, stop <-chan struct{}, ok, failed *atomic.Int64, wg *sync.WaitGroup, why *failures) {
	hosts := make([]string, 0, len(pages))
	for h := range pages {
		hosts = append(hosts, h)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; ok.Load()+failed.Load() < 1_000_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				host := hosts[i%len(hosts)]
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
				req.Host = host
				at := time.Now()
				resp, err := c.Do(req)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 && string(b) == pages[host] {
						ok.Add(1)
						continue
					}
					err = fmt.Errorf("%d %.60q", resp.StatusCode, b)
				}
				failed.Add(1)
				why.add(fmt.Sprintf("%s %s after %s: %v", at.Format("15:04:05.000"), host, time.Since(at).Round(time.Millisecond), err))
			}
		}(w)
	}
}

// failures keeps the first few failed requests' reasons, to say what
// failed, not only how many.
type failures struct {
	mu    sync.Mutex
	lines []string
}

func (f *failures) add(line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.lines) < 10 {
		f.lines = append(f.lines, line)
	}
}

func (f *failures) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = nil
}

func (f *failures) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, l := range f.lines {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}
