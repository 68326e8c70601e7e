package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

var frontSites = flag.Int("front-sites", 200, "other sites present in the front suite's second round")

// frontDoor times `darse site create` until the site's first HTTP 200
// through Traefik, beside the same path by hand (docker-compose up -d in
// the rendered folder, then polling Traefik), with no other site and with
// -front-sites others; and reports Traefik's memory.
func frontDoor(ctx context.Context, o options) error {
	srv, err := os.MkdirTemp("", "darse-bench-front")
	if err != nil {
		return err
	}
	defer os.RemoveAll(srv)
	port, api := freePort(), freePort()
	project := fmt.Sprintf("front-bench%d", os.Getpid())
	domain := "bench.example.org"
	os.MkdirAll(filepath.Join(srv, "conf"), 0o700)
	// The bench's firewall watcher keeps a table of its own and manages
	// no site (a label none carries): it leaves the host's rules as they were.
	table := fmt.Sprintf("darse-bench%d", os.Getpid())
	defer exec.Command("nft", "delete", "table", "inet", table).Run()
	conf := fmt.Sprintf("domain: %s\nfront:\n  project: %s\n  http: \":%d\"\n  https: \":%d\"\n  api: \"127.0.0.1:%d\"\nfirewall:\n  table: %s\n  label: darse.bench=%d\npanel:\n  project: %s-panel\n",
		domain, project, port, freePort(), api, table, os.Getpid(), project)
	if err := os.WriteFile(filepath.Join(srv, "conf", "darse.yml"), []byte(conf), 0o644); err != nil {
		return err
	}
	darse := func(args ...string) error {
		cmd := exec.CommandContext(ctx, o.darseBin, args...)
		cmd.Env = append(os.Environ(), "DARSE_SRV="+srv)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("darse %v: %v: %s", args, err, out)
		}
		return nil
	}
	if err := darse("platform", "up"); err != nil {
		return err
	}
	defer darse("platform", "down")
	var created []string
	defer func() {
		for _, n := range created {
			darse("site", "rm", n, "--purge", "--yes")
		}
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	until := func(host string, want int, start time.Time) (time.Duration, error) {
		c := &http.Client{Timeout: 2 * time.Second}
		for time.Since(start) < 60*time.Second {
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
			req.Host = host
			if resp, err := c.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == want {
					return time.Since(start), nil
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		return 0, fmt.Errorf("%s did not answer %d through traefik within 60s", host, want)
	}
	round := func(label, tag string) error {
		var viaDarse, byHand []time.Duration
		for i := 0; i < o.n; i++ {
			name := fmt.Sprintf("fb%d-%s-%d", os.Getpid(), tag, i)
			host := name + "." + domain
			start := time.Now()
			if err := darse("site", "create", name, "--template", "static"); err != nil {
				return err
			}
			created = append(created, name)
			d, err := until(host, 200, start)
			if err != nil {
				return err
			}
			viaDarse = append(viaDarse, d)
			// By hand, on the same rendered folder.
			dir := filepath.Join(srv, "users", name)
			compose := func(args ...string) error {
				cmd := exec.CommandContext(ctx, "docker-compose", args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					return fmt.Errorf("docker-compose %v: %v: %s", args, err, out)
				}
				return nil
			}
			if err := compose("down"); err != nil {
				return err
			}
			if _, err := until(host, 404, time.Now()); err != nil {
				return err
			}
			start = time.Now()
			if err := compose("up", "-d"); err != nil {
				return err
			}
			if d, err = until(host, 200, start); err != nil {
				return err
			}
			byHand = append(byHand, d)
		}
		md, mh := median(viaDarse), median(byHand)
		fmt.Printf("  %-10s darse site create -> 200: %6.0f ms   docker-compose up -d -> 200: %6.0f ms   ratio %.2fx\n", label, ms(md), ms(mh), float64(md)/float64(mh))
		return nil
	}
	fmt.Printf("site creation until HTTP 200 through Traefik (%d runs each, median; target < 1500 ms with %d sites, ratio <= 0.5x)\n", o.n, *frontSites)
	if err := round("0 sites", "a"); err != nil {
		return err
	}
	// Populate, four at a time.
	names := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range names {
				err := darse("site", "create", n, "--template", "static")
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					created = append(created, n)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < *frontSites; i++ {
		names <- fmt.Sprintf("fp%d-%d", os.Getpid(), i)
	}
	close(names)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := round(fmt.Sprintf("%d sites", *frontSites), "b"); err != nil {
		return err
	}
	mem, err := exec.CommandContext(ctx, "docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", project+"_traefik_1").Output()
	if err != nil {
		return err
	}
	fmt.Printf("  traefik memory with %d sites: %s\n", len(created), strings.TrimSpace(string(mem)))
	return nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
