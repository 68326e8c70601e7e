package metrics

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darse/darse/internal/engine"
)

// fakeEngine lists containers and gives their processes, counting the
// inspections.
type fakeEngine struct {
	mu         sync.Mutex
	containers []engine.ContainerInfo
	pids       map[string]int
	inspects   int
	lists      int
}

func (f *fakeEngine) Containers(ctx context.Context) ([]engine.ContainerInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	return append([]engine.ContainerInfo(nil), f.containers...), nil
}

func (f *fakeEngine) ContainerPID(ctx context.Context, id string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inspects++
	return f.pids[id], nil
}

func (f *fakeEngine) set(id, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.containers {
		if f.containers[i].ID == id {
			f.containers[i].State = state
		}
	}
}

// twoSites: blog has aaa1 (cgroupfs or systemd naming) and aaa2 (under a
// custom cgroup parent, found by walking); shop's only container is
// stopped; ccc1 belongs to no site.
func twoSites() *fakeEngine {
	return &fakeEngine{
		containers: []engine.ContainerInfo{
			{ID: "aaa1", Site: "blog", State: "running"},
			{ID: "aaa2", Site: "blog", State: "running"},
			{ID: "bbb1", Site: "shop", State: "exited"},
			{ID: "ccc1", State: "running"},
		},
		pids: map[string]int{"aaa1": 101, "aaa2": 102},
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// copyTree copies testdata/name into a temp dir, for tests that change files.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", name)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// show prints a pass's sites, one line each, to compare.
func show(p *Pass) string {
	var b strings.Builder
	for _, s := range p.Sites {
		fmt.Fprintf(&b, "%s cpu=%.3f mem=%d oom=%d rx=%d tx=%d io=%d/%d pids=%d containers=%d/%d up=%v\n",
			s.Name, s.CPUSeconds, s.MemoryBytes, s.OOMKills, s.ReceiveBytes, s.TransmitBytes,
			s.IOReadBytes, s.IOWriteBytes, s.Pids, s.Running, s.Containers, s.Up())
	}
	return b.String()
}

func collect(t *testing.T, c *Collector) *Pass {
	t.Helper()
	p, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Both layouts hold the same figures: the sums must come out the same,
// loopback left out, the working set without the inactive page cache,
// and the v1 memory.oom_control of an old kernel (no oom_kill) as zero.
func TestPassOverBothLayouts(t *testing.T) {
	const want = "blog cpu=2.000 mem=12582912 oom=2 rx=1011 tx=2022 io=4196/8192 pids=3 containers=2/2 up=true\n" +
		"shop cpu=0.000 mem=0 oom=0 rx=0 tx=0 io=0/0 pids=0 containers=0/1 up=false\n"
	for _, layout := range []struct {
		dir     string
		version int
	}{{"v1", 1}, {"v2", 2}} {
		t.Run(layout.dir, func(t *testing.T) {
			eng := twoSites()
			c := New(eng, Config{CgroupRoot: filepath.Join("testdata", layout.dir), ProcRoot: filepath.Join("testdata", "proc"), MinInterval: -1}, quiet)
			p := collect(t, c)
			if got := show(p); got != want {
				t.Errorf("pass:\n%s\nwant:\n%s", got, want)
			}
			if p.Containers != 2 || p.Failed != 0 {
				t.Errorf("read %d containers, %d failed; want 2 and 0", p.Containers, p.Failed)
			}
			if v := c.CgroupVersion(); v != layout.version {
				t.Errorf("cgroup version %d, want %d", v, layout.version)
			}
			// The walk learned the custom parent: it is tried first now.
			if c.cg.parents[0] != filepath.Join("custom", "parent") {
				t.Errorf("parents %v: the custom parent was not learned", c.cg.parents)
			}
			// The processes are asked once, not once a pass.
			if got := show(collect(t, c)); got != want {
				t.Errorf("second pass:\n%s", got)
			}
			if eng.inspects != 2 || eng.lists != 2 {
				t.Errorf("%d inspections and %d listings for two passes; want 2 and 2", eng.inspects, eng.lists)
			}
		})
	}
}

// A site's counters never go down: a restart under the same ID (counters
// start again, a new process), a container stopping, one replaced by
// another, all keep what was counted.
func TestCountersSurviveRestarts(t *testing.T) {
	for _, layout := range []string{"v1", "v2"} {
		t.Run(layout, func(t *testing.T) {
			root, proc := copyTree(t, layout), copyTree(t, "proc")
			eng := twoSites()
			c := New(eng, Config{CgroupRoot: root, ProcRoot: proc, MinInterval: -1}, quiet)
			step := func(what, want string) {
				t.Helper()
				if got := show(collect(t, c)); got != want {
					t.Fatalf("%s:\n%s\nwant:\n%s", what, got, want)
				}
			}
			step("start", "blog cpu=2.000 mem=12582912 oom=2 rx=1011 tx=2022 io=4196/8192 pids=3 containers=2/2 up=true\n"+
				"shop cpu=0.000 mem=0 oom=0 rx=0 tx=0 io=0/0 pids=0 containers=0/1 up=false\n")

			// aaa1 restarts: a fresh cgroup at the same path, a new process.
			if layout == "v1" {
				write(t, filepath.Join(root, "cpuacct/docker/aaa1/cpuacct.usage"), "100000000\n")
				write(t, filepath.Join(root, "memory/docker/aaa1/memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
			} else {
				write(t, filepath.Join(root, "system.slice/docker-aaa1.scope/cpu.stat"), "usage_usec 100000\n")
				write(t, filepath.Join(root, "system.slice/docker-aaa1.scope/memory.events"), "oom 1\noom_kill 1\n")
			}
			if err := os.Rename(filepath.Join(proc, "101"), filepath.Join(proc, "201")); err != nil {
				t.Fatal(err)
			}
			eng.pids["aaa1"] = 201
			before := eng.inspects
			step("aaa1 restarted", "blog cpu=2.100 mem=12582912 oom=3 rx=2011 tx=4022 io=4196/8192 pids=3 containers=2/2 up=true\n"+
				"shop cpu=0.000 mem=0 oom=0 rx=0 tx=0 io=0/0 pids=0 containers=0/1 up=false\n")
			if eng.inspects != before+1 {
				t.Errorf("%d inspections after the restart, want 1: the vanished process is asked for again", eng.inspects-before)
			}

			// aaa2 stops: its cgroup goes; the site is down, its totals stay.
			eng.set("aaa2", "exited")
			for _, ctl := range []string{"", "memory", "cpuacct"} {
				os.RemoveAll(filepath.Join(root, ctl, "custom/parent/aaa2"))
			}
			step("aaa2 stopped", "blog cpu=2.100 mem=8388608 oom=3 rx=2011 tx=4022 io=4196/8192 pids=3 containers=1/2 up=false\n"+
				"shop cpu=0.000 mem=0 oom=0 rx=0 tx=0 io=0/0 pids=0 containers=0/1 up=false\n")

			// aaa1's cgroup goes between the listing and the read: it is
			// taken as stopped, not as a failure.
			for _, ctl := range []string{"system.slice/docker-aaa1.scope", "memory/docker/aaa1", "cpuacct/docker/aaa1"} {
				os.RemoveAll(filepath.Join(root, ctl))
			}
			p := collect(t, c)
			if p.Failed != 0 || p.Containers != 0 {
				t.Errorf("a vanished cgroup: %d failed, %d read", p.Failed, p.Containers)
			}
			if got, want := show(p), "blog cpu=2.100 mem=0 oom=3 rx=2011 tx=4022 io=4196/8192 pids=0 containers=0/2 up=false\n"; !strings.HasPrefix(got, want) {
				t.Errorf("aaa1 vanished:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// With the store's list of sites: a site without containers is reported
// down, containers of unknown sites are left out, and a deleted site's
// totals go with it.
func TestSitesFromTheStore(t *testing.T) {
	eng := twoSites()
	sites := []string{"blog", "empty"}
	c := New(eng, Config{CgroupRoot: filepath.Join("testdata", "v2"), ProcRoot: filepath.Join("testdata", "proc"), MinInterval: -1,
		Sites: func(ctx context.Context) ([]string, error) { return sites, nil }}, quiet)
	want := "blog cpu=2.000 mem=12582912 oom=2 rx=1011 tx=2022 io=4196/8192 pids=3 containers=2/2 up=true\n" +
		"empty cpu=0.000 mem=0 oom=0 rx=0 tx=0 io=0/0 pids=0 containers=0/0 up=false\n"
	if got := show(collect(t, c)); got != want {
		t.Fatalf("pass:\n%s\nwant:\n%s", got, want)
	}
	// blog is deleted: its containers go, and so does it.
	eng.containers = eng.containers[2:]
	sites = []string{"empty"}
	if got, want := show(collect(t, c)), "empty cpu=0.000 mem=0 oom=0 rx=0 tx=0 io=0/0 pids=0 containers=0/0 up=false\n"; got != want {
		t.Fatalf("after deleting blog:\n%s\nwant:\n%s", got, want)
	}
	if _, kept := c.retired["blog"]; kept {
		t.Errorf("retired totals %v: blog's should be gone", c.retired)
	}
}

// Scrapes closer together than MinInterval share one pass.
func TestRecentPassIsShared(t *testing.T) {
	eng := twoSites()
	now := time.Unix(1000, 0)
	c := New(eng, Config{CgroupRoot: filepath.Join("testdata", "v1"), ProcRoot: filepath.Join("testdata", "proc"),
		MinInterval: 5 * time.Second, Now: func() time.Time { return now }}, quiet)
	p1 := collect(t, c)
	now = now.Add(4 * time.Second)
	if p2 := collect(t, c); p2 != p1 || eng.lists != 1 {
		t.Errorf("a pass 4s old was not reused (%d listings)", eng.lists)
	}
	now = now.Add(2 * time.Second)
	if p3 := collect(t, c); p3 == p1 || eng.lists != 2 {
		t.Errorf("a pass 6s old was reused (%d listings)", eng.lists)
	}
}

func TestNoCgroupRoot(t *testing.T) {
	c := New(twoSites(), Config{CgroupRoot: t.TempDir()}, quiet)
	if _, err := c.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), "cgroup root") {
		t.Fatalf("an empty cgroup root: %v", err)
	}
}

// A file that says something else than expected fails the container's
// read with the file named, and the pass goes on.
func TestUnreadableFileIsNamed(t *testing.T) {
	root := copyTree(t, "v2")
	write(t, filepath.Join(root, "system.slice/docker-aaa1.scope/memory.current"), "lots\n")
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	c := New(twoSites(), Config{CgroupRoot: root, ProcRoot: filepath.Join("testdata", "proc"), MinInterval: -1}, log)
	p := collect(t, c)
	if p.Failed != 1 || p.Containers != 1 {
		t.Errorf("%d failed, %d read; want 1 and 1", p.Failed, p.Containers)
	}
	if !strings.Contains(logged.String(), "memory.current") || !strings.Contains(logged.String(), "aaa1") {
		t.Errorf("log does not name the file and container:\n%s", logged.String())
	}
}

func TestNetDev(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "proc", "102", "net", "dev"))
	if err != nil {
		t.Fatal(err)
	}
	if rx, tx, err := netDev(b); err != nil || rx != 11 || tx != 22 {
		t.Errorf("netDev = %d, %d, %v; want 11, 22 (eth0 and eth1, not lo)", rx, tx, err)
	}
	for _, bad := range []string{"", "eth0: 1 2 3\n", string(b[:strings.Index(string(b), "eth0")]) + "eth0: 1 2 3\n"} {
		if _, _, err := netDev([]byte(bad)); err == nil {
			t.Errorf("netDev(%q): no error", bad)
		}
	}
}
