package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// benchFront is a platform of the bench's own: a /srv in a temporary
// folder, a front door (Traefik) on a free port, and a firewall watcher
// that keeps a table of its own and manages no site, so the host's rules
// stay as they were.
type benchFront struct {
	srv     string
	port    int // Traefik's HTTP port, on every address
	domain  string
	project string // the front door's compose project
	darse   func(args ...string) error
	ctx     context.Context
}

// startFront brings a bench platform up; stop takes it down with its sites.
func startFront(ctx context.Context, o options, tag string) (f *benchFront, stop func(), err error) {
	srv, err := os.MkdirTemp("", "darse-bench-"+tag)
	if err != nil {
		return nil, nil, err
	}
	f = &benchFront{srv: srv, port: freePort(), domain: "bench.example.org", ctx: ctx}
	project := fmt.Sprintf("%s-bench%d", tag, os.Getpid())
	f.project = project
	table := fmt.Sprintf("darse-%s%d", tag, os.Getpid())
	os.MkdirAll(filepath.Join(srv, "conf"), 0o700)
	conf := fmt.Sprintf("domain: %s\nfront:\n  project: %s\n  http: \":%d\"\n  https: \":%d\"\n  api: \"127.0.0.1:%d\"\nfirewall:\n  table: %s\n  label: darse.bench=%d\npanel:\n  project: %s-panel\n",
		f.domain, project, f.port, freePort(), freePort(), table, os.Getpid(), project)
	if err := os.WriteFile(filepath.Join(srv, "conf", "darse.yml"), []byte(conf), 0o644); err != nil {
		os.RemoveAll(srv)
		return nil, nil, err
	}
	var (
		mu      sync.Mutex // the front suite creates sites four at a time
		created []string
	)
	f.darse = func(args ...string) error {
		cmd := exec.CommandContext(ctx, o.darseBin, args...)
		cmd.Env = append(os.Environ(), "DARSE_SRV="+srv)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("darse %v: %v: %s", args, err, out)
		}
		if len(args) > 2 && args[0] == "site" && args[1] == "create" {
			mu.Lock()
			created = append(created, args[2])
			mu.Unlock()
		}
		return nil
	}
	stop = func() {
		for _, n := range created {
			f.darse("site", "rm", n, "--purge", "--yes")
		}
		f.darse("platform", "down")
		exec.Command("nft", "delete", "table", "inet", table).Run()
		os.RemoveAll(srv)
	}
	if err := f.darse("platform", "up"); err != nil {
		stop()
		return nil, nil, err
	}
	return f, stop, nil
}

// until polls path with Host host through Traefik until it answers want,
// for at most limit, and returns the time since start.
func (f *benchFront) until(host, path string, want int, start time.Time, limit time.Duration) (time.Duration, error) {
	c := &http.Client{Timeout: 2 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for time.Since(start) < limit {
		req, _ := http.NewRequestWithContext(f.ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", f.port, path), nil)
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
	return 0, fmt.Errorf("%s%s did not answer %d through traefik within %s", host, path, want, limit)
}

// compose runs a compose peer in a site's folder.
func (f *benchFront) compose(p peer, site string, args ...string) error {
	return p.run(f.ctx, filepath.Join(f.srv, "users", site), args...)
}
