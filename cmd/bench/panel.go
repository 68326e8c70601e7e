package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// panelBench measures the panel as members and admins use it, with 1,000
// sites in the store: p50 and p99 of 1,000 requests on loopback for the
// member dashboard (a member with 3 running sites) and the admin site
// list, then the panel's resident memory. Targets: p99 under 50 ms,
// resident memory under 60 MiB.
func panelBench(ctx context.Context, o options) error {
	const sites, requests = 1000, 1000
	srv, err := os.MkdirTemp("", "darse-bench-panel")
	if err != nil {
		return err
	}
	defer os.RemoveAll(srv)
	darse := func(stdin string, args ...string) error {
		cmd := exec.CommandContext(ctx, o.darseBin, args...)
		cmd.Env = append(os.Environ(), "DARSE_SRV="+srv)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("darse %v: %v: %s", args, err, out)
		}
		return nil
	}
	if err := darse("bench admin password\n", "user", "add", "root", "--admin"); err != nil {
		return err
	}
	if err := darse("bench member password\n", "user", "add", "alice"); err != nil {
		return err
	}
	// The member's three sites run for real.
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("pb%d-%d", i, os.Getpid())
		if err := darse("", "site", "create", name, "--template", "static", "--owner", "alice"); err != nil {
			return err
		}
		defer func() {
			if err := darse("", "site", "rm", name, "--purge", "--yes"); err != nil {
				fmt.Fprintln(os.Stderr, "bench panel: clean up:", err)
			}
		}()
	}
	// The others are rows: what the store and the pages must cope with.
	st, err := store.Open(ctx, filepath.Join(srv, "conf", "darse.db"))
	if err != nil {
		return err
	}
	for i := 0; i < sites-3; i++ {
		name := fmt.Sprintf("site%04d", i)
		spec := site.Spec{Name: name, Template: "static", Owner: fmt.Sprintf("member%03d", i%300), Domain: name + ".example.org",
			Params: map[string]string{}, Plan: site.Plan{CPUs: "0.5", Memory: "64m", Pids: 64}}
		if err := st.CreateSite(ctx, spec); err != nil {
			st.Close()
			return err
		}
	}
	st.Close()

	base, pid, stopPanel, err := startPanel(ctx, o.darseBin, srv)
	if err != nil {
		return err
	}
	defer stopPanel()
	member, err := panelLogin(base, "alice", "bench member password")
	if err != nil {
		return err
	}
	admin, err := panelLogin(base, "root", "bench admin password")
	if err != nil {
		return err
	}
	fmt.Printf("%d sites in the store, %d requests per page, on loopback\n", sites, requests)
	for _, page := range []struct {
		name, path string
		c          *http.Client
	}{
		{"member dashboard", "/sites", member},
		{"admin site list", "/admin", admin},
	} {
		times := make([]time.Duration, 0, requests)
		for i := 0; i < requests; i++ {
			start := time.Now()
			resp, err := page.c.Get(base + page.path)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %d", page.path, resp.StatusCode)
			}
			times = append(times, time.Since(start))
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		p50, p99 := times[len(times)/2], times[len(times)*99/100]
		verdict := "ok"
		if p99 >= 50*time.Millisecond {
			verdict = "OVER the 50 ms target"
		}
		fmt.Printf("%-18s p50 %7.2f ms   p99 %7.2f ms   (%s)\n", page.name, ms(p50), ms(p99), verdict)
	}
	rss, err := residentKiB(pid)
	if err != nil {
		return err
	}
	verdict := "ok"
	if rss >= 60<<10 {
		verdict = "OVER the 60 MiB target"
	}
	fmt.Printf("%-18s %.1f MiB resident (%s)\n", "panel memory", float64(rss)/1024, verdict)
	return nil
}

// startPanel runs `darse panel` on a free loopback port for the platform
// in srv and returns its address; stop ends it.
func startPanel(ctx context.Context, bin, srv string) (base string, pid int, stop func(), err error) {
	cmd := exec.CommandContext(ctx, bin, "panel", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "DARSE_SRV="+srv)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop = func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "darse panel: listening on "); ok {
			base = u
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if base == "" {
		stop()
		return "", 0, nil, fmt.Errorf("darse panel did not start")
	}
	return base, cmd.Process.Pid, stop, nil
}

// panelLogin logs in through the form and returns a client holding the
// session.
func panelLogin(base, name, pw string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(base + "/login")
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(b)
	if m == nil {
		return nil, fmt.Errorf("no login form")
	}
	resp, err = c.PostForm(base+"/login", url.Values{"name": {name}, "password": {pw}, "csrf": {string(m[1])}})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.Request.URL.Path == "/login" {
		return nil, fmt.Errorf("login as %s refused", name)
	}
	return c, nil
}

// residentKiB reads VmRSS of a process.
func residentKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kib)
			return kib, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
