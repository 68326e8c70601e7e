package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// usage is what one container's cgroup says: counters that only grow
// while the cgroup lives, and two gauges.
type usage struct {
	cpuNS, oomKills, ioRead, ioWrite uint64 // counters
	memory, pids                     uint64 // gauges
}

// cgroups reads containers' cgroups under one root (/sys/fs/cgroup): the
// unified hierarchy (v2) when the root is one, else the v1 controllers
// mounted under it (memory, cpuacct, pids, blkio).
type cgroups struct {
	root string
	v2   bool
	// parents are where container cgroups were found, relative to the
	// hierarchy ("docker", "system.slice"): the engine's cgroup parent,
	// learned from the first container found by walking, tried first.
	parents []string
}

// errNoCgroup says a cgroup root holds neither layout.
var errNoCgroup = errors.New("neither a cgroup v2 hierarchy (cgroup.controllers) nor a v1 memory controller (memory/)")

func openCgroups(root string) (*cgroups, error) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return &cgroups{root: root, v2: true, parents: []string{"system.slice", "docker"}}, nil
	}
	if fi, err := os.Stat(filepath.Join(root, "memory")); err == nil && fi.IsDir() {
		return &cgroups{root: root, parents: []string{"docker", "system.slice"}}, nil
	}
	return nil, fmt.Errorf("cgroup root %s: %w", root, errNoCgroup)
}

// Version is 1 or 2.
func (g *cgroups) Version() int {
	if g.v2 {
		return 2
	}
	return 1
}

// hierarchy is the directory container cgroups are looked up in: the root
// on v2, the memory controller on v1 (the others mirror its paths).
func (g *cgroups) hierarchy() string {
	if g.v2 {
		return g.root
	}
	return filepath.Join(g.root, "memory")
}

// names are the directory names the engine gives a container's cgroup:
// its ID with the cgroupfs driver, docker-ID.scope with systemd's.
func names(id string) [2]string { return [2]string{id, "docker-" + id + ".scope"} }

// find returns the container's cgroup relative to the hierarchy, looking
// under the known parents only (a few stats, no walk).
func (g *cgroups) find(id string) (string, bool) {
	base := g.hierarchy()
	for _, p := range g.parents {
		for _, n := range names(id) {
			rel := filepath.Join(p, n)
			if fi, err := os.Stat(filepath.Join(base, rel)); err == nil && fi.IsDir() {
				return rel, true
			}
		}
	}
	return "", false
}

// maxDepth bounds the walk: the engine's cgroups sit a few levels down
// (docker/ID, system.slice/docker-ID.scope, a custom parent/ID).
const maxDepth = 4

// search walks the hierarchy once for the cgroups of the given
// containers, for those under a cgroup parent not known yet, and learns
// the parents it finds them under.
func (g *cgroups) search(ids []string) map[string]string {
	want := make(map[string]string, 2*len(ids))
	for _, id := range ids {
		for _, n := range names(id) {
			want[n] = id
		}
	}
	found := map[string]string{}
	base := g.hierarchy()
	filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // a cgroup removed under the walk: skip it
		}
		rel, _ := filepath.Rel(base, path)
		if id, ok := want[d.Name()]; ok {
			found[id] = rel
			g.learn(filepath.Dir(rel))
			return filepath.SkipDir
		}
		if rel != "." && strings.Count(rel, string(filepath.Separator)) >= maxDepth-1 {
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

func (g *cgroups) learn(parent string) {
	for _, p := range g.parents {
		if p == parent {
			return
		}
	}
	g.parents = append([]string{parent}, g.parents...)
}

// read reads a container's cgroup. fs.ErrNotExist means the cgroup is
// gone (the container stopped); the CPU and memory files are required,
// the others read as zero when their controller is not there.
func (g *cgroups) read(rel string) (usage, error) {
	if g.v2 {
		return g.readV2(filepath.Join(g.root, rel))
	}
	return g.readV1(rel)
}

func (g *cgroups) readV2(dir string) (usage, error) {
	var u usage
	cpu, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return u, err
	}
	usec, err := field(cpu, "usage_usec")
	if err != nil {
		return u, fmt.Errorf("%s/cpu.stat: %w", dir, err)
	}
	u.cpuNS = usec * 1000
	if u.memory, err = workingSet(dir, "memory.current", "inactive_file"); err != nil {
		return u, err
	}
	if ev, err := os.ReadFile(filepath.Join(dir, "memory.events")); err == nil {
		u.oomKills, _ = field(ev, "oom_kill")
	}
	u.pids = optionalNumber(filepath.Join(dir, "pids.current"))
	if io, err := os.ReadFile(filepath.Join(dir, "io.stat")); err == nil {
		u.ioRead, u.ioWrite = ioStat(io)
	}
	return u, nil
}

func (g *cgroups) readV1(rel string) (usage, error) {
	var u usage
	ctl := func(c string) string { return filepath.Join(g.root, c, rel) }
	b, err := os.ReadFile(filepath.Join(ctl("cpuacct"), "cpuacct.usage"))
	if err != nil {
		return u, err
	}
	if u.cpuNS, err = number(b); err != nil {
		return u, fmt.Errorf("%s/cpuacct.usage: %w", ctl("cpuacct"), err)
	}
	if u.memory, err = workingSet(ctl("memory"), "memory.usage_in_bytes", "total_inactive_file"); err != nil {
		return u, err
	}
	if oc, err := os.ReadFile(filepath.Join(ctl("memory"), "memory.oom_control")); err == nil {
		u.oomKills, _ = field(oc, "oom_kill") // since Linux 4.13
	}
	u.pids = optionalNumber(filepath.Join(ctl("pids"), "pids.current"))
	if io, err := os.ReadFile(filepath.Join(ctl("blkio"), "blkio.throttle.io_service_bytes")); err == nil {
		u.ioRead, u.ioWrite = blkio(io)
	}
	return u, nil
}

// workingSet is the memory usage less the inactive page cache, as docker
// stats and the panel's site page show it: the cache the kernel can drop
// at once is not the site's.
func workingSet(dir, usageFile, inactiveKey string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, usageFile))
	if err != nil {
		return 0, err
	}
	n, err := number(b)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: %w", dir, usageFile, err)
	}
	if st, err := os.ReadFile(filepath.Join(dir, "memory.stat")); err == nil {
		if inactive, err := field(st, inactiveKey); err == nil && inactive < n {
			n -= inactive
		}
	}
	return n, nil
}

func number(b []byte) (uint64, error) {
	s := string(bytes.TrimSpace(b))
	if s == "max" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

func optionalNumber(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := number(b)
	return n
}

// field reads "key value" from a flat-keyed file (cpu.stat, memory.stat,
// memory.events, memory.oom_control).
func field(b []byte, key string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s", key)
}

// ioStat sums rbytes and wbytes over the devices of a v2 io.stat
// ("8:0 rbytes=1 wbytes=2 rios=…").
func ioStat(b []byte) (read, write uint64) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		for _, kv := range f[1:] { // f[0] is the device
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				read += n
			case "wbytes":
				write += n
			}
		}
	}
	return read, write
}

// blkio sums the Read and Write lines of a v1
// blkio.throttle.io_service_bytes ("8:0 Read 4096"); its last line,
// "Total N", has no device and is skipped.
func blkio(b []byte) (read, write uint64) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			continue
		}
		switch f[1] {
		case "Read":
			read += n
		case "Write":
			write += n
		}
	}
	return read, write
}

// netDev sums the receive and transmit bytes of every interface but
// loopback in a /proc/PID/net/dev: the container's own namespace, so its
// eth0 and any other network it joined.
func netDev(b []byte) (rx, tx uint64, err error) {
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "Receive") {
		return 0, 0, fmt.Errorf("not a net/dev file")
	}
	for _, line := range lines[2:] {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return 0, 0, fmt.Errorf("interface %s: %d fields, want 16", strings.TrimSpace(name), len(f))
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, fmt.Errorf("interface %s: %w", strings.TrimSpace(name), err)
		}
		rx += r
		tx += t
	}
	return rx, tx, nil
}
