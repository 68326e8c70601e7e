package main

// The metrics endpoint of a real `darse panel` over a real site: an OOM
// kill inside the site's container is counted, a stopped container makes
// the site down, and the endpoint is not on the panel's own listener.

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
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
