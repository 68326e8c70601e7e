package main

// The rollout of a rebuilt image through the real front door: sites are
// requested continuously through Traefik while their web containers are
// replaced, and not one request may fail.

import (
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
	"testing"
	"time"
)

// rolloutTemplate installs a copy of the static template whose web image
// is tag, so that the test rebuilds an image of its own, never the
// platform's darse/nginx:bookworm that other tests use.
func rolloutTemplate(t *testing.T, srv, name, tag string) {
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
			b = []byte(strings.ReplaceAll(string(b), "image: darse/nginx:bookworm", "image: "+tag))
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
	run("cp", f, tmp+":/etc/darse-rebuilt")
	run("commit", tmp, tag)
	return run("image", "inspect", "-f", "{{.Id}}", tag)
}

// load requests every site through the front door from a few workers
// until stop is closed, at most max requests; a request fails unless it
// gets 200 and the site's own page.
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
				host := hosts[i%len(hosts)]
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
				req.Host = host
				resp, err := c.Do(req)
				why := ""
				if err != nil {
					why = err.Error()
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(b) != pages[host] {
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

func TestRolloutLosesNoRequest(t *testing.T) {
	f := newFront(t, "")
	tag := fmt.Sprintf("darse-test/rollout-%d:bookworm", os.Getpid())
	if out, err := exec.Command("docker", "tag", "darse/nginx:bookworm", tag).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", tag).Run() })
	rolloutTemplate(t, f.srv, "rolltest", tag)

	const n = 6
	pages := map[string]string{}
	var sites []string
	for i := 0; i < n; i++ {
		name := siteName(fmt.Sprintf("ro%d", i))
		f.cleanup(name)
		f.ok("site", "create", name, "--template", "rolltest")
		page := "<p>rollout " + name + "</p>\n"
		if err := os.WriteFile(filepath.Join(f.srv, "users", name, "data", "index.html"), []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		pages[name+"."+f.domain] = page
		sites = append(sites, name)
	}
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

	// Rebuilt again: every site rolled out under load, none failing.
	newID = rebuildImage(t, tag)
	old := map[string]string{}
	for _, s := range sites {
		old[s] = inspect(s+"_web_1", "{{.Id}}")
	}
	stop := make(chan struct{})
	l, wg := runLoad(addr, pages, 4, 200000, stop)
	time.Sleep(500 * time.Millisecond) // load running before the rollout
	start := time.Now()
	out, errs, code := f.run(append([]string{"images", "rollout"}, sites...)...)
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond) // and after it
	close(stop)
	wg.Wait()
	t.Logf("rollout of %d sites in %s under load: %d requests answered, %d failed", n, took.Round(time.Millisecond), l.ok.Load(), l.failed.Load())
	fmt.Printf("rollout: %d sites, %d requests, %d failed\n", n, l.ok.Load()+l.failed.Load(), l.failed.Load())
	if code != 0 {
		t.Fatalf("images rollout: exit %d\n%s\n%s", code, out, errs)
	}
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the rollout:\n%s", l.failed.Load(), l.ok.Load()+l.failed.Load(), strings.Join(l.failures, "\n"))
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
	if out := f.ok("site", "up", first); !strings.HasSuffix(out, ": up to date\n") {
		t.Errorf("site up after the rollout: %s", out)
	}
}
