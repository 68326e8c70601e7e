package main

// The metrics endpoint of a real `darse panel` over a real site: an OOM
// kill inside the site's container is counted, a stopped container makes
// the site down, and the endpoint is not on the panel's own listener.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/darse/darse/internal/alert/alerttest"
	"github.com/darse/darse/internal/compose"
)

// metricsPanel runs `darse panel` with its metrics endpoint on a free
// loopback port and returns both addresses.
func (e *env) metricsPanel() (panelURL, metricsURL string, log *lockedBuffer) {
	e.t.Helper()
	cmd := exec.Command(darseBin, "panel", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "DARSE_SRV="+e.srv, "DARSE_LOG=info")
	log = &lockedBuffer{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	e.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	urls := make(chan [2]string, 1)
	go func() {
		var p, m string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if u, ok := strings.CutPrefix(line, "darse panel: listening on "); ok {
				p = u
			}
			if u, ok := strings.CutPrefix(line, "darse panel: metrics on "); ok {
				m = u
			}
			if p != "" && m != "" {
				urls <- [2]string{p, m}
				p = ""
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-urls:
		return u[0], u[1], log
	case <-done:
		e.t.Fatalf("darse panel exited:\n%s", log)
	case <-time.After(60 * time.Second):
		e.t.Fatalf("darse panel did not print its addresses:\n%s", log)
	}
	return "", "", nil
}

func scrapeMetrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", url, resp.StatusCode, b)
	}
	return string(b)
}

// waitMetric scrapes until the answer has line (passes are at most 5 s
// apart) and returns the answer.
func waitMetric(t *testing.T, url, line string, log *lockedBuffer) string {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		out := scrapeMetrics(t, url)
		if strings.Contains(out, line+"\n") {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the metrics:\n%s\npanel log:\n%s", line, out, log)
		}
		time.Sleep(time.Second)
	}
}

func TestMetricsOOMKillAndDown(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm")
	e := newEnv(t)
	name := siteName("oom")
	e.cleanup(name)
	web := name + "_web_1"
	e.ok("site", "create", name, "--template", "static") // memory: 64m
	panelURL, metricsURL, log := e.metricsPanel()
	// The endpoint answers on the address given (loopback here, and by
	// default), not on the host's other addresses: the front network's
	// gateway is one, there since the site joined it.
	u, _ := url.Parse(metricsURL)
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(compose.FrontGateway, u.Port()), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("the metrics endpoint answers at %s too", compose.FrontGateway)
	}
	if help := e.ok("panel", "--help"); !strings.Contains(help, `"127.0.0.1:9464"`) {
		t.Errorf("--metrics does not default to loopback:\n%s", help)
	}

	out := waitMetric(t, metricsURL, fmt.Sprintf(`darse_site_up{site=%q} 1`, name), log)
	for _, want := range []string{
		fmt.Sprintf(`darse_site_oom_kills_total{site=%q} 0`, name),
		fmt.Sprintf(`darse_site_containers{site=%q} 1`, name),
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if m := regexp.MustCompile(fmt.Sprintf(`darse_site_memory_bytes\{site=%q\} ([0-9.e+]+)\n`, name)).FindStringSubmatch(out); m == nil || m[1] == "0" {
		t.Errorf("no memory figure for %s: %v\n%s", name, m, out)
	}
	if m := regexp.MustCompile(fmt.Sprintf(`darse_site_cpu_seconds_total\{site=%q\} ([0-9.e+-]+)\n`, name)).FindStringSubmatch(out); m == nil || m[1] == "0" {
		t.Errorf("no CPU time for %s: %v\n%s", name, m, out)
	}

	// The site's folder, walked at the panel's start: what du counts
	// (allocated blocks, each inode once), give or take what the running
	// site wrote since.
	if m := regexp.MustCompile(fmt.Sprintf(`darse_site_disk_bytes\{site=%q\} ([0-9.e+]+)\n`, name)).FindStringSubmatch(out); m == nil {
		t.Errorf("no disk figure for %s:\n%s", name, out)
	} else if got, du := mustFloat(t, m[1]), float64(duBytes(t, filepath.Join(e.srv, "users", name))); got < 0.9*du || got > 1.1*du || got == 0 {
		t.Errorf("disk figure of %s: %.0f, du says %.0f", name, got, du)
	}
	// An operation run by the CLI while the panel runs is timed too: the
	// store is where both record them.
	e.ok("site", "up", name)
	waitMetric(t, metricsURL, `darse_operation_duration_seconds_count{kind="up"} 1`, log)

	// Not on the panel's listener, where members are.
	resp, err := http.Get(panelURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the panel's listener answers /metrics: %d", resp.StatusCode)
	}

	// A process in the site outgrows its 64 MiB: tail keeps a line with
	// no end in memory. The kernel kills it; nginx, tiny, stays.
	hog := exec.Command("docker", "exec", web, "tail", "/dev/zero")
	b, err := hog.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
		t.Fatalf("tail /dev/zero in %s: %v (want killed, exit 137)\n%s", web, err, b)
	}
	waitMetric(t, metricsURL, fmt.Sprintf(`darse_site_oom_kills_total{site=%q} 1`, name), log)

	// A stopped container: the site is down, and its kill still counted.
	if b, err := exec.Command("docker", "stop", "-t", "1", web).CombinedOutput(); err != nil {
		t.Fatalf("docker stop %s: %v\n%s", web, err, b)
	}
	out = waitMetric(t, metricsURL, fmt.Sprintf(`darse_site_up{site=%q} 0`, name), log)
	if want := fmt.Sprintf(`darse_site_oom_kills_total{site=%q} 1`, name); !strings.Contains(out, want+"\n") {
		t.Errorf("after the stop, no %q in:\n%s", want, out)
	}
}

// TestAlertsByMail: a real panel with alerts: in darse.yml, a real SMTP
// server (Mailpit) on loopback. An OOM kill in a site raises one alert;
// its container killed raises one "down" alert, and its start again one
// "resolved"; nothing is repeated while each lasts.
func TestAlertsByMail(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm")
	mp := alerttest.StartMailpit(t)
	e := newEnvWith(t, fmt.Sprintf(`domain: test.example.org
alerts:
  interval: 1s
  down_after: 3s
  oom_quiet: 10m
  disk_free_percent: -1
  smtp:
    host: %s
    port: %d
    from: darse@test.example.org
    to: [ops@test.example.org]
`, mp.SMTPHost, mp.SMTPPort))
	name := siteName("alert")
	e.cleanup(name)
	web := name + "_web_1"
	e.ok("site", "create", name, "--template", "static") // memory: 64m
	_, metricsURL, log := e.metricsPanel()
	waitMetric(t, metricsURL, fmt.Sprintf(`darse_site_up{site=%q} 1`, name), log)
	time.Sleep(3 * time.Second) // a few checks of a site that runs
	if ms, err := mp.Messages(); err != nil || len(ms) != 0 {
		t.Fatalf("mail while all is well: %+v %v\n%s", ms, err, log)
	}

	hog := exec.Command("docker", "exec", web, "tail", "/dev/zero")
	if b, err := hog.CombinedOutput(); err == nil {
		t.Fatalf("tail /dev/zero in %s was not killed\n%s", web, b)
	}
	oom := mp.WaitMessages(t, 1, 45*time.Second)
	if !strings.Contains(oom[0].Subject, "ALERT: site "+name+": a process was killed for exceeding the site's memory limit") {
		t.Fatalf("the OOM mail: %q\n%s", oom[0].Subject, log)
	}

	if b, err := exec.Command("docker", "kill", web).CombinedOutput(); err != nil {
		t.Fatalf("docker kill %s: %v\n%s", web, err, b)
	}
	down := mp.WaitMessages(t, 2, 45*time.Second)
	if !strings.Contains(down[1].Subject, "ALERT: site "+name+" is down: 1 of its 1 containers not running") {
		t.Fatalf("the down mail: %q\n%s", down[1].Subject, log)
	}
	time.Sleep(3 * time.Second) // still down: no second mail
	if ms, _ := mp.Messages(); len(ms) != 2 {
		t.Fatalf("%d mails while the site stays down, want 2\n%s", len(ms), log)
	}
	if b, err := exec.Command("docker", "start", web).CombinedOutput(); err != nil {
		t.Fatalf("docker start %s: %v\n%s", web, err, b)
	}
	back := mp.WaitMessages(t, 3, 45*time.Second)
	if !strings.Contains(back[2].Subject, "RESOLVED: site "+name+" is down") {
		t.Fatalf("the resolved mail: %q\n%s", back[2].Subject, log)
	}
	time.Sleep(3 * time.Second)
	if ms, _ := mp.Messages(); len(ms) != 3 {
		t.Fatalf("%d mails in all, want 3 (OOM, down, resolved)\n%s", len(ms), log)
	}
}

// duBytes is what du counts under dir (each inode once, links not
// followed), in bytes.
func duBytes(t *testing.T, dir string) int64 {
	t.Helper()
	b, err := exec.Command("du", "-s", "-x", "-B1", dir).Output()
	if err != nil {
		t.Fatalf("du %s: %v", dir, err)
	}
	n, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
	if err != nil {
		t.Fatalf("du %s: %q: %v", dir, b, err)
	}
	return n
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return f
}

// TestDockerProxyMetrics: `darse docker-proxy --metrics` on loopback
// counts Traefik's inspections served from the cache and fetched, over a
// fake engine on a unix socket (no Docker needed).
func TestDockerProxyMetrics(t *testing.T) {
	dir := t.TempDir()
	id := strings.Repeat("a", 64)
	var inspects atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("/v1.41/containers/"+id+"/json", func(w http.ResponseWriter, r *http.Request) {
		inspects.Add(1)
		fmt.Fprintf(w, `{"Id":%q}`, id)
	})
	engineSock := filepath.Join(dir, "engine.sock")
	ln, err := net.Listen("unix", engineSock)
	if err != nil {
		t.Fatal(err)
	}
	eng := &http.Server{Handler: mux}
	go eng.Serve(ln)
	t.Cleanup(func() { eng.Close() })

	proxySock := filepath.Join(dir, "proxy", "docker.sock")
	cmd := newDockerProxyCmd(&app{log: slog.New(slog.DiscardHandler)})
	cmd.SetArgs([]string{"--socket", proxySock, "--engine", "unix://" + engineSock, "--metrics", "127.0.0.1:0"})
	out, w := io.Pipe()
	cmd.SetOut(w)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx); w.Close() }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("docker-proxy: %v", err)
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("docker-proxy printed no metrics address: %v", err)
	}
	go io.Copy(io.Discard, out)
	metricsURL, ok := strings.CutPrefix(strings.TrimSpace(line), "darse docker-proxy: metrics on ")
	if !ok || !strings.HasPrefix(metricsURL, "http://127.0.0.1:") {
		t.Fatalf("printed %q", line)
	}

	traefik := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", proxySock)
	}}}
	for range 3 {
		resp, err := traefik.Get("http://docker/v1.41/containers/" + id + "/json")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("inspect through the proxy: %d", resp.StatusCode)
		}
	}
	if n := inspects.Load(); n != 1 {
		t.Fatalf("the engine was asked %d times, want once", n)
	}
	got := scrapeMetrics(t, metricsURL)
	for _, want := range []string{"darse_dockerproxy_cache_hits_total 2\n", "darse_dockerproxy_cache_misses_total 1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in:\n%s", want, got)
		}
	}
}
