//go:build enginerestart

package main

// The soak test, run alone after the engine-restart tests (it restarts the
// test suite's own engine): more sites than one bridge holds (1,024 ports)
// and than the kernel's default neighbour tables hold, some of them with
// SFTP, every one of them checked through Traefik over both families, then
// the engine restarted under them and every one checked again.
//
// DARSE_SOAK_SITES and DARSE_SOAK_SFTP size it (1,100 and 300, as CI runs it).

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darse/darse/internal/firewall/firewalltest"
	"github.com/darse/darse/internal/testenv"
)

var sftpPort = regexp.MustCompile(`sftp -P (\d+) `)

func soakSize(t *testing.T, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", key, v)
	}
	return n
}

// soakSite is one site of the soak and what it must answer.
type soakSite struct {
	name, page string
	sftp       int // host port, 0 without SSH access
}

func TestSoak(t *testing.T) {
	n := soakSize(t, "DARSE_SOAK_SITES", 1100)
	withSSH := soakSize(t, "DARSE_SOAK_SFTP", 300)
	if withSSH > n {
		t.Fatalf("DARSE_SOAK_SFTP (%d) > DARSE_SOAK_SITES (%d)", withSSH, n)
	}
	needEngine(t, "darse/nginx:bookworm", "darse/sftp:bookworm", "traefik:v3.6")
	if m := firewalltest.MissingTool(); m != "" {
		t.Fatalf("needs %s", m)
	}
	f := newFront(t, "")
	key := newClientKey(t, t.TempDir(), "soak")
	client := firewalltest.NewTestClient(t)
	// A watcher of the test's own for every site's containers (label
	// darse.site, any value): the front door's watcher in tests looks only
	// at containers labelled for it, so the sites' exposures (SFTP) would
	// have no rule. The soak runs alone on its engine: every site there is
	// one of its own.
	testWatcher(t, fmt.Sprintf("darse-sk%d", os.Getpid()), "darse.site")

	sites := make([]*soakSite, n)
	for i := range sites {
		sites[i] = &soakSite{name: siteName(fmt.Sprintf("sk%d", i))}
		sites[i].page = "<p>soak " + sites[i].name + "</p>\n"
	}
	t.Cleanup(func() { soakRemove(t, f, sites) })

	start := time.Now()
	errs := soakEach(8, sites, func(i int, s *soakSite) error {
		if _, err := f.darse("site", "create", s.name, "--template", "static"); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(f.srv, "users", s.name, "data", "index.html"), []byte(s.page), 0o644); err != nil {
			return err
		}
		if i < withSSH {
			out, err := f.darse("key", "add", s.name, key.file+".pub")
			if err != nil {
				return err
			}
			// It prints the connect command, sftp -P PORT ...
			m := sftpPort.FindStringSubmatch(out)
			if m == nil {
				return fmt.Errorf("key add printed no SFTP port: %s", out)
			}
			s.sftp, _ = strconv.Atoi(m[1])
		}
		return nil
	})
	if errs != nil {
		t.Fatalf("creating %d sites: %v", n, errs)
	}
	created := time.Since(start)
	t.Logf("%d sites (%d with SFTP) created in %s (%.0f a minute)", n, withSSH, created.Round(time.Second), float64(n)/created.Minutes())
	// The port key add printed is the one status reports.
	if s := f.status(sites[0].name); withSSH > 0 && (s.SSH == nil || s.SSH.HostPort != sites[0].sftp) {
		t.Fatalf("%s: status says SFTP %+v, key add said port %d", sites[0].name, s.SSH, sites[0].sftp)
	}
	// site ls: one listing of the engine for all of them, each running.
	lsStart := time.Now()
	running := 0
	for _, line := range strings.Split(f.ok("site", "ls"), "\n") {
		if fs := strings.Fields(line); len(fs) > 3 && strings.HasSuffix(fs[0], "-"+strconv.Itoa(os.Getpid())) && fs[3] == "running" {
			running++
		}
	}
	if running != n {
		t.Fatalf("site ls shows %d of the %d sites running", running, n)
	}
	t.Logf("site ls of %d sites: %s", n, time.Since(lsStart).Round(time.Millisecond))

	soakCheck(t, f, client, sites, "after creation")

	// The engine restarts under them with live-restore, as on a host
	// darse prepared: reloaded into the running engine, then kept by the
	// next one. A probe counts what failed to answer meanwhile.
	t.Setenv("DARSE_TEST_ENGINE_LIVE_RESTORE", "1")
	liveRestore(t)
	var tried, failed atomic.Int64
	stop := make(chan struct{})
	var probes sync.WaitGroup
	probes.Add(1)
	go func() {
		defer probes.Done()
		for i := 0; ; i = (i + 1) % n {
			select {
			case <-stop:
				return
			default:
			}
			tried.Add(1)
			if code, body, _, err := request(fmt.Sprintf("127.0.0.1:%d", f.http), sites[i].name+"."+f.domain); err != nil || code != 200 || body != sites[i].page {
				failed.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	restart := time.Now()
	testenv.StopTestEngine(t)
	testenv.StartTestEngine(t, "../..")
	t.Logf("engine restarted in %s", time.Since(restart).Round(time.Millisecond))
	soakCheck(t, f, client, sites, "after the engine restart")
	close(stop)
	probes.Wait()
	t.Logf("through the restart, %d of %d requests failed", failed.Load(), tried.Load())
}

// darse runs the CLI from any goroutine (env.ok may only fail the test
// from the test's own).
func (e *env) darse(args ...string) (string, error) {
	cmd := exec.Command(darseBin, args...)
	cmd.Env = append(os.Environ(), "DARSE_SRV="+e.srv)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("darse %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// soakEach runs fn over sites, par at a time, and returns the first errors.
func soakEach(par int, sites []*soakSite, fn func(int, *soakSite) error) error {
	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(sites) {
					return
				}
				if err := fn(i, sites[i]); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("%s: %v", sites[i].name, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) == 0 {
		return nil
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Sprintf("and %d more", len(errs)-10))
	}
	return fmt.Errorf("%d failed:\n%s", len(errs), strings.Join(errs, "\n"))
}

// soakCheck fails unless every site answers its own page through Traefik
// over IPv4 and IPv6, and every SFTP port its banner from a client
// namespace over both families. A site gets 30 s to come (back).
func soakCheck(t *testing.T, f *front, client *firewalltest.Client, sites []*soakSite, when string) {
	t.Helper()
	start := time.Now()
	addrs := []string{fmt.Sprintf("127.0.0.1:%d", f.http), fmt.Sprintf("[::1]:%d", f.http)}
	errs := soakEach(8, sites, func(_ int, s *soakSite) error {
		deadline := time.Now().Add(30 * time.Second)
		for _, addr := range addrs {
			for {
				code, body, _, err := request(addr, s.name+"."+f.domain)
				if err == nil && code == 200 && body == s.page {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("GET http://%s/: %d %q %v", addr, code, body, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		if s.sftp == 0 {
			return nil
		}
		for _, host := range []netip.Addr{client.Host4, client.Host6} {
			to := netip.AddrPortFrom(host, uint16(s.sftp))
			if err := sshBanner(client, to, deadline); err != nil {
				return err
			}
		}
		return nil
	})
	if errs != nil {
		t.Fatalf("%s: %v", when, errs)
	}
	t.Logf("%s: all %d sites answered over IPv4 and IPv6 (SFTP too where set) in %s", when, len(sites), time.Since(start).Round(time.Millisecond))
}

// liveRestore turns live-restore on in the running test engine (it is
// reloadable) and checks the engine took it.
func liveRestore(t *testing.T) {
	t.Helper()
	conf := filepath.Join(filepath.Dir(os.Getenv("DARSE_TEST_ENGINE_PIDFILE")), "daemon.json")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	if !strings.Contains(s, `"live-restore"`) {
		s = strings.TrimSuffix(s, "}") + `, "live-restore": true}`
		if err := os.WriteFile(conf, []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pidb, err := os.ReadFile(os.Getenv("DARSE_TEST_ENGINE_PIDFILE"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("kill", "-HUP", strings.TrimSpace(string(pidb))).CombinedOutput(); err != nil {
		t.Fatalf("reload the engine: %v %s", err, out)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, _ := exec.Command("docker", "info", "-f", "{{.LiveRestoreEnabled}}").Output()
		if strings.TrimSpace(string(out)) == "true" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine did not take live-restore: %q", out)
		}
	}
}

// soakRemove removes the front door, then the soak's containers a few
// engine calls at a time; the sites' records and folders go with the test's srv. Removing
// 1,100 sites one CLI run at a time would take minutes of CI for nothing
// the soak tests.
func soakRemove(t *testing.T, f *front, sites []*soakSite) {
	start := time.Now()
	// The front door first: Traefik reads every container again on each
	// one removed, which slowed the removals several times over.
	f.run("platform", "down")
	out, err := exec.Command("docker", "ps", "-aq", "--filter", fmt.Sprintf("name=-%d_", os.Getpid())).Output()
	if err != nil {
		t.Logf("list the soak's containers: %v", err)
		return
	}
	ids := strings.Fields(string(out))
	var chunks [][]string
	for len(ids) > 0 {
		k := min(8, len(ids))
		chunks = append(chunks, ids[:k])
		ids = ids[k:]
	}
	// One call of 8 at a time: docker rm removes the containers it is
	// given all at once, and 200 removals at once left the engine waiting
	// on exit events that never came (every call hung).
	var wg sync.WaitGroup
	work := make(chan []string)
	for w := 0; w < 1; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if out, err := exec.Command("docker", append([]string{"rm", "-f"}, c...)...).CombinedOutput(); err != nil {
					t.Logf("docker rm: %v %s", err, out)
				}
			}
		}()
	}
	for _, c := range chunks {
		work <- c
	}
	close(work)
	wg.Wait()
	t.Logf("%d sites' containers removed in %s", len(sites), time.Since(start).Round(time.Second))
}

// sshBanner waits until deadline for sshd's banner at to, from the client
// namespace. Each try waits 5 s for it and the next comes 500 ms later:
// sshd refuses new connections once 10 are still unauthenticated
// (MaxStartups), and a busy host can take over 100 ms to greet.
func sshBanner(client *firewalltest.Client, to netip.AddrPort, deadline time.Time) error {
	for {
		banner, err := client.TCP(to, 5*time.Second)
		if err == nil && strings.HasPrefix(banner, "SSH-2.0-") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("SFTP %s: %q %v", to, banner, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
