package main

// The rollout of a rebuilt image through the real front door: sites are
// requested continuously through Traefik while their web containers are
// replaced, and not one request may fail.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/store"
)

// rolloutTemplate installs a copy of the static template whose web image
// is tag, so that the test rebuilds an image of its own, never the
// platform's darse/nginx:bookworm that other tests use.
func rolloutTemplate(t *testing.T, srv, name, tag string) {
	t.Helper()
	rolloutTemplateWith(t, srv, name, tag, "")
}

// rolloutTemplateWith is rolloutTemplate with extra lines for the web
// service (indented as its keys are).
func rolloutTemplateWith(t *testing.T, srv, name, tag, extra string) {
	t.Helper()
	src := filepath.Join("..", "..", "templates", "static")
	dst := filepath.Join(srv, "templates", name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
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
			b = []byte(strings.Replace(string(b), "image: darse/nginx:bookworm", "image: "+tag+"\n"+extra, 1))
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rebuildImage gives tag a new image with the same content and
// configuration plus one file: what a rebuild with newer packages does.
func rebuildImage(t *testing.T, tag string) string {
	t.Helper()
	return rebuildImageWith(t, tag, "/etc/darse-rebuilt")
}

// rebuildImageWith is rebuildImage writing the file at path.
func rebuildImageWith(t *testing.T, tag, path string) string {
	t.Helper()
	tmp := fmt.Sprintf("darse-rebuild-%d", os.Getpid())
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("docker", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("create", "--name", tmp, tag)
	defer exec.Command("docker", "rm", "-f", tmp).Run()
	f := filepath.Join(t.TempDir(), "rebuilt")
	os.WriteFile(f, []byte(time.Now().String()), 0o644)
	run("cp", f, tmp+":"+path)
	run("commit", tmp, tag)
	return run("image", "inspect", "-f", "{{.Id}}", tag)
}

// load requests every page through the front door from a few workers
// until stop is closed, at most max requests; a request fails unless it
// gets 200 and the page. A page's key is its host, or host/path.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
}

func runLoad(addr string, pages map[string]string, workers int, max int64, stop <-chan struct{}) (*load, *sync.WaitGroup) {
	l := &load{}
	var wg sync.WaitGroup
	hosts := make([]string, 0, len(pages))
	for h := range pages {
		hosts = append(hosts, h)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if l.ok.Load()+l.failed.Load() >= max {
					return
				}
				key := hosts[i%len(hosts)]
				host, path, _ := strings.Cut(key, "/")
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/"+path, nil)
				req.Host = host
				resp, err := c.Do(req)
				why := ""
				if err != nil {
					why = err.Error()
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(b) != pages[key] {
						why = fmt.Sprintf("%d %.80q", resp.StatusCode, b)
					}
				}
				if why == "" {
					l.ok.Add(1)
					continue
				}
				l.failed.Add(1)
				l.mu.Lock()
				if len(l.failures) < 20 {
					l.failures = append(l.failures, time.Now().Format("15:04:05.000")+" "+host+": "+why)
				}
				l.mu.Unlock()
			}
		}(w)
	}
	return l, &wg
}

// brokenHealth is a Docker health check that fails once the image has
// /etc/darse-broken: a rebuild that breaks the site.
const brokenHealth = `    healthcheck:
      test: ["CMD", "sh", "-c", "! test -e /etc/darse-broken"]
      interval: 1s
      timeout: 1s
      retries: 1
`

func TestRolloutLosesNoRequest(t *testing.T) {
	f := newFront(t, "")
	tag := fmt.Sprintf("darse-test/rollout-%d:bookworm", os.Getpid())
	if out, err := exec.Command("docker", "tag", "darse/nginx:bookworm", tag).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", tag).Run() })
	rolloutTemplate(t, f.srv, "rolltest", tag)
	rolloutTemplateWith(t, f.srv, "rollbroken", tag, brokenHealth)

	const n = 20
	pages := map[string]string{}
	var sites []string
	create := func(name, template string) {
		f.cleanup(name)
		f.ok("site", "create", name, "--template", template)
		page := "<p>rollout " + name + "</p>\n"
		if err := os.WriteFile(filepath.Join(f.srv, "users", name, "data", "index.html"), []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		pages[name+"."+f.domain] = page
	}
	for i := 0; i < n; i++ {
		name := siteName(fmt.Sprintf("ro%d", i))
		create(name, "rolltest")
		sites = append(sites, name)
	}
	// A site stopped by its owner is left stopped by a rollout.
	parked := siteName("roparked")
	f.cleanup(parked)
	f.ok("site", "create", parked, "--template", "rolltest")
	f.ok("site", "stop", parked)
	addr := fmt.Sprintf("127.0.0.1:%d", f.http)
	for host, page := range pages {
		eventually(t, addr, host, 200, page)
	}
	inspect := func(container, format string) string {
		out, err := exec.Command("docker", "inspect", "-f", format, container).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}

	// site up after a rebuild recreates exactly what runs the image.
	first := sites[0]
	newID := rebuildImage(t, tag)
	out := f.ok("site", "up", first)
	want := fmt.Sprintf("%[1]s: [1] RemoveContainer %[1]s_web_1 service:web (image changed)\n%[1]s: [2] CreateContainer %[1]s_web_1 service:web (image changed)\n", first)
	if out != want {
		t.Fatalf("site up after the rebuild printed:\n%s\nwant:\n%s", out, want)
	}
	if got := inspect(first+"_web_1", "{{.Image}}"); got != newID {
		t.Errorf("after site up, %s_web_1 runs %s, want %s", first, got, newID)
	}
	if out := f.ok("site", "up", first); !strings.HasSuffix(out, ": up to date\n") {
		t.Errorf("second site up: %s", out)
	}

	// Rebuilt again: every site rolled out under load, a few at a time,
	// one operation each, none failing.
	newID = rebuildImage(t, tag)
	old := map[string]string{}
	for _, s := range sites {
		old[s] = inspect(s+"_web_1", "{{.Id}}")
	}
	stop := make(chan struct{})
	l, wg := runLoad(addr, pages, 4, 400000, stop)
	time.Sleep(500 * time.Millisecond) // load running before the rollout
	start := time.Now()
	out, errs, code := f.runFor(5*time.Minute, "images", "rollout", "--all", "--parallel", "3")
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond) // and after it
	close(stop)
	wg.Wait()
	t.Logf("rollout of %d sites in %s under load: %d requests answered, %d failed", n, took.Round(time.Millisecond), l.ok.Load(), l.failed.Load())
	fmt.Printf("rollout: %d sites, %d requests, %d failed\n", n, l.ok.Load()+l.failed.Load(), l.failed.Load())
	if os.Getenv("DARSE_LOG") != "" {
		t.Logf("rollout:\n%s\n%s", out, errs)
	}
	if code != 0 {
		t.Fatalf("images rollout: exit %d\n%s\n%s", code, out, errs)
	}
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the rollout:\n%s", l.failed.Load(), l.ok.Load()+l.failed.Load(), strings.Join(l.failures, "\n"))
		f.failedRequests(t)
		t.Logf("rollout:\n%s\n%s", out, errs)
	}
	if l.ok.Load() < 100 {
		t.Errorf("only %d requests answered: the load did not run", l.ok.Load())
	}
	for _, s := range sites {
		if !strings.Contains(out, s+": [1] StartBeside "+s+"_web_2 service:web (image changed)") {
			t.Errorf("rollout plan for %s:\n%s", s, out)
		}
		if got := inspect(s+"_web_2", "{{.Image}}"); got != newID {
			t.Errorf("%s_web_2 runs %q, want %s", s, got, newID)
		}
		if inspect(old[s], "{{.Id}}") != "" {
			t.Errorf("%s's old web container %s is still there", s, old[s])
		}
	}
	if !strings.Contains(out, parked+": up to date") || inspect(parked+"_web_1", "{{.State.Status}}") != "exited" {
		t.Errorf("the stopped site was not left stopped: %s", inspect(parked+"_web_1", "{{.State.Status}}"))
	}
	var rolled int
	for _, op := range f.opsOf("rollout") {
		if op.State == store.OpDone {
			rolled++
		}
	}
	if rolled != n+1 {
		t.Errorf("%d rollout operations done, want one per site (%d)", rolled, n+1)
	}
	if out := f.ok("site", "up", first); !strings.HasSuffix(out, ": up to date\n") {
		t.Errorf("site up after the rollout: %s", out)
	}

	// A rebuild that breaks a site: its new container fails its health
	// check, it stays on its old one (still answering), the rollout
	// reports it, exits 1, and begins no further site.
	broken := siteName("robroken")
	create(broken, "rollbroken")
	eventually(t, addr, broken+"."+f.domain, 200, pages[broken+"."+f.domain])
	brokenOld := inspect(broken+"_web_1", "{{.Id}}")
	rebuildImageWith(t, tag, "/etc/darse-broken")
	out, errs, code = f.runFor(2*time.Minute, "images", "rollout", "--parallel", "1", broken, sites[1], sites[2])
	if code != 1 || !strings.Contains(errs, "site "+broken) || !strings.Contains(out, broken+": failed:") || !strings.Contains(out, "left on its old container") {
		t.Fatalf("rollout of a broken site: exit %d\n%s\n%s", code, out, errs)
	}
	if strings.Contains(out, sites[1]+":") || inspect(sites[1]+"_web_2", "{{.Image}}") != newID {
		t.Errorf("the rollout went on after the broken site:\n%s", out)
	}
	if got := inspect(brokenOld, "{{.State.Status}}"); got != "running" {
		t.Errorf("the broken site's old container is %q, want running", got)
	}
	eventually(t, addr, broken+"."+f.domain, 200, pages[broken+"."+f.domain])
}

// rolloutKillCase is the rollout's case of TestKilledDuringEveryKind: a
// site of its own image, rebuilt, rolled out through a front door of the
// test's own. Once settled, exactly one web container is left, running
// (not paused) the new image, the only server Traefik routes the site to,
// and answering the site's page.
func rolloutKillCase() killCase {
	var f *front
	tag := fmt.Sprintf("darse-test/killroll-%d:bookworm", os.Getpid())
	ids := map[string]string{} // site → the rebuilt image
	return killCase{
		env: func(t *testing.T) *env {
			f = newFront(t, "")
			if out, err := exec.Command("docker", "tag", "darse/nginx:bookworm", tag).CombinedOutput(); err != nil {
				t.Fatalf("docker tag: %v %s", err, out)
			}
			t.Cleanup(func() { exec.Command("docker", "rmi", tag).Run() })
			rolloutTemplate(t, f.srv, "rolltest", tag)
			return f.env
		},
		setup: func(e *env, name string) ops.Kind {
			e.t.Helper()
			e.ok("site", "create", name, "--template", "rolltest")
			if err := os.WriteFile(filepath.Join(e.srv, "users", name, "data", "index.html"), []byte("<p>"+name+"</p>\n"), 0o644); err != nil {
				e.t.Fatal(err)
			}
			eventually(e.t, fmt.Sprintf("127.0.0.1:%d", f.http), name+"."+f.domain, 200, "<p>"+name+"</p>\n")
			ids[name] = rebuildImage(e.t, tag)
			return &ops.Rollout{Drain: 500 * time.Millisecond}
		},
		done: func(e *env, name string) {
			e.t.Helper()
			out, err := exec.Command("docker", "ps", "-a", "--format", "{{.ID}} {{.State}}",
				"--filter", "label=com.docker.compose.project="+name, "--filter", "label=com.docker.compose.service=web").Output()
			if err != nil {
				e.t.Fatal(err)
			}
			lines := strings.Fields(strings.TrimSpace(string(out)))
			if len(lines) != 2 || lines[1] != "running" {
				e.t.Fatalf("web containers of %s after the settled rollout: %q, want one running", name, out)
			}
			if img, _ := exec.Command("docker", "inspect", "-f", "{{.Image}}", lines[0]).Output(); strings.TrimSpace(string(img)) != ids[name] {
				e.t.Errorf("%s's web container runs %s, want the rebuilt %s", name, img, ids[name])
			}
			waitServers(e.t, f.api, name, 1)
			eventually(e.t, fmt.Sprintf("127.0.0.1:%d", f.http), name+"."+f.domain, 200, "<p>"+name+"</p>\n")
		},
	}
}

// waitServers waits until Traefik's service of the site has n servers.
func waitServers(t *testing.T, api int, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	got := -1
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/http/services/site-%s@docker", api, name))
		if err == nil {
			var s struct {
				LoadBalancer struct{ Servers []struct{ URL string } } `json:"loadBalancer"`
			}
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if got = len(s.LoadBalancer.Servers); err == nil && got == n {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("traefik routes %s to %d servers, want %d", name, got, n)
}

// opsOf lists the recorded operations of one kind, newest first.
func (e *env) opsOf(kind string) []opJSON {
	e.t.Helper()
	var printed []opJSON
	if err := json.Unmarshal([]byte(e.ok("op", "ls", "-n", "1000", "--json")), &printed); err != nil {
		e.t.Fatal(err)
	}
	var out []opJSON
	for _, op := range printed {
		if op.Kind == kind {
			out = append(out, op)
		}
	}
	return out
}

// failedRequests logs the front door's access log lines of failed
// requests: the server each went to says which container failed it.
func (f *front) failedRequests(t *testing.T) {
	t.Helper()
	out, _ := exec.Command("docker", "logs", fmt.Sprintf("front-t%d_traefik_1", os.Getpid())).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "\" 50") {
			t.Log(line)
		}
	}
}

// runFor is run, darse killed (the test failing) if it takes longer than
// d: a hung rollout must not hang the test.
func (e *env) runFor(d time.Duration, args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, darseBin, args...)
	cmd.Env = append(os.Environ(), "DARSE_SRV="+e.srv)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		e.t.Fatalf("darse %v: still running after %s, killed\n%s\n%s", args, d, out.String(), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("darse %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestPlatformUpgradeLosesNoRequest: platform up with a new darse binary
// (another build: another darse image) replaces docker-proxy, darse-fw and
// the panel while a site and the panel are requested through the front
// door: no request fails, Traefik is the same container throughout, the
// firewall's table never goes away nor changes, and every darse container
// runs the new image.
func TestPlatformUpgradeLosesNoRequest(t *testing.T) {
	var newTag string
	t.Cleanup(func() {
		if newTag != "" {
			exec.Command("docker", "rmi", newTag).Run()
		}
	})
	f := newFront(t, "")
	project := fmt.Sprintf("front-t%d", os.Getpid())
	table := fmt.Sprintf("darse-t%d", os.Getpid())
	name := siteName("upg")
	f.cleanup(name)
	f.ok("site", "create", name, "--template", "static")
	page := "<p>upgrade " + name + "</p>\n"
	if err := os.WriteFile(filepath.Join(f.srv, "users", name, "data", "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", f.http)
	pages := map[string]string{name + "." + f.domain: page, "panel." + f.domain + "/healthz": "ok\n"}
	eventually(t, addr, name+"."+f.domain, 200, page)
	deadline := time.Now().Add(30 * time.Second)
	for code, _, _, _ := request(addr, "panel."+f.domain); code != 200 && code != 302 && code != 303; code, _, _, _ = request(addr, "panel."+f.domain) {
		if time.Now().After(deadline) {
			t.Fatalf("the panel does not answer through the front door: %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	inspect := func(container, format string) string {
		out, _ := exec.Command("docker", "inspect", "-f", format, container).Output()
		return strings.TrimSpace(string(out))
	}
	traefikID := inspect(project+"_traefik_1", "{{.Id}}")
	oldImage := inspect(project+"_firewall_1", "{{.Config.Image}}")
	ruleset := func() string {
		out, err := exec.Command("nft", "list", "table", "inet", table).Output()
		if err != nil {
			return "missing: " + err.Error()
		}
		return string(out)
	}
	rules := ruleset()
	if strings.HasPrefix(rules, "missing") {
		t.Fatalf("firewall table %s: %s", table, rules)
	}

	// The new binary: the same code, another build.
	dir := t.TempDir()
	for pkg, out := range map[string]string{".": filepath.Join(dir, "darse"), "../darse-fw": filepath.Join(dir, "darse-fw")} {
		cmd := exec.Command("go", "build", "-o", out, "-ldflags", "-X "+versionPkg+".Commit=upgrade-"+strconv.Itoa(os.Getpid()), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, b)
		}
	}

	stop := make(chan struct{})
	l, wg := runLoad(addr, pages, 4, 400000, stop)
	var fwChanged atomic.Value
	var fwWG sync.WaitGroup
	fwWG.Add(1)
	go func() { // the firewall's table, all along
		defer fwWG.Done()
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if r := ruleset(); r != rules && fwChanged.Load() == nil {
				fwChanged.Store(r)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	cmd := exec.Command(filepath.Join(dir, "darse"), "platform", "up")
	cmd.Env = append(os.Environ(), "DARSE_SRV="+f.srv)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	time.Sleep(time.Second) // and the load after it
	close(stop)
	wg.Wait()
	fwWG.Wait()
	newTag = inspect(project+"_firewall_1", "{{.Config.Image}}")
	t.Logf("platform up of a new binary in %s under load: %d requests answered, %d failed\n%s", took.Round(time.Millisecond), l.ok.Load(), l.failed.Load(), out)
	fmt.Printf("platform upgrade: %d requests, %d failed\n", l.ok.Load()+l.failed.Load(), l.failed.Load())
	if err != nil {
		t.Fatalf("platform up with the new binary: %v\n%s", err, out)
	}
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the upgrade:\n%s", l.failed.Load(), l.ok.Load()+l.failed.Load(), strings.Join(l.failures, "\n"))
		f.failedRequests(t)
	}
	if l.ok.Load() < 100 {
		t.Errorf("only %d requests answered: the load did not run", l.ok.Load())
	}
	if newTag == oldImage || newTag == "" {
		t.Fatalf("the firewall still runs %s: the new build made no new image", oldImage)
	}
	for _, c := range []string{project + "_docker-proxy_1", project + "-panel_panel_2"} {
		if img := inspect(c, "{{.Config.Image}}"); img != newTag {
			t.Errorf("%s runs %s, want %s", c, img, newTag)
		}
	}
	if !strings.Contains(string(out), "StartBeside "+project+"-panel_panel_2") {
		t.Errorf("the panel was not replaced blue/green:\n%s", out)
	}
	if got := inspect(project+"_traefik_1", "{{.Id}}"); got != traefikID {
		t.Errorf("traefik was recreated (%s, was %s): its sockets closed", got, traefikID)
	}
	if r, _ := fwChanged.Load().(string); r != "" {
		t.Errorf("the firewall's table changed during the upgrade:\n%s\nwas:\n%s", r, rules)
	}
}

const versionPkg = "github.com/darse/darse/internal/version"
