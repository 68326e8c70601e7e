// Package metrics measures what each hosted site uses: CPU time, memory,
// OOM kills, processes, disk I/O and network bytes, summed over the
// site's containers. It reads the kernel's files (the containers' cgroups
// and /proc/PID/net/dev of each container's process), never the engine's
// stats API, which costs a second or more per container: a pass over a
// thousand sites is one container listing and a few thousand small reads.
//
// Counters stay monotonic per site: when a container stops, restarts or
// is replaced, what it had counted is kept in the site's total.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/darse/darse/internal/engine"
)

// Engine is what the collector asks the engine (*engine.Engine): the
// containers, once a pass, and a container's process, once per start.
type Engine interface {
	Containers(ctx context.Context) ([]engine.ContainerInfo, error)
	ContainerPID(ctx context.Context, id string) (int, error)
}

// Config tunes a Collector; zero fields take the defaults.
type Config struct {
	CgroupRoot string // default /sys/fs/cgroup
	ProcRoot   string // default /proc; the host's, for the host PIDs the engine gives
	// MinInterval is how old a pass may be and still answer a request
	// (default 5s): scrapes closer together share one pass.
	MinInterval time.Duration
	// Sites, when set, lists the sites to report (the store's): each is
	// reported even with no container (down), and containers labelled
	// for another site are left out. Without it the sites are those the
	// containers name.
	Sites func(ctx context.Context) ([]string, error)
	Now   func() time.Time
}

// Site is one site's figures. Counters are totals since the collector
// started watching the site's containers.
type Site struct {
	Name                        string
	CPUSeconds                  float64
	MemoryBytes                 uint64
	OOMKills                    uint64
	ReceiveBytes, TransmitBytes uint64
	IOReadBytes, IOWriteBytes   uint64
	Pids                        uint64
	Containers, Running         int
	Unhealthy                   int // running containers whose health check fails
}

// Up says every container of the site runs.
func (s Site) Up() bool { return s.Containers > 0 && s.Running == s.Containers }

// Pass is the result of reading every site's containers once.
type Pass struct {
	At         time.Time
	Took       time.Duration
	Sites      []Site // by name
	Containers int    // running site containers read
	Failed     int    // running containers whose files could not be read
}

// counters are the monotonic part of a container's figures.
type counters struct {
	cpuNS, oomKills, ioRead, ioWrite, rx, tx uint64
}

func (c *counters) add(o counters) {
	c.cpuNS += o.cpuNS
	c.oomKills += o.oomKills
	c.ioRead += o.ioRead
	c.ioWrite += o.ioWrite
	c.rx += o.rx
	c.tx += o.tx
}

// advance moves c to now; a counter that went down started again (a new
// cgroup or network namespace under the same ID, a restart), and what it
// had counted goes to retired.
func (c *counters) advance(now counters, retired *counters) {
	step := func(last *uint64, v uint64, r *uint64) {
		if v < *last {
			*r += *last
		}
		*last = v
	}
	step(&c.cpuNS, now.cpuNS, &retired.cpuNS)
	step(&c.oomKills, now.oomKills, &retired.oomKills)
	step(&c.ioRead, now.ioRead, &retired.ioRead)
	step(&c.ioWrite, now.ioWrite, &retired.ioWrite)
	step(&c.rx, now.rx, &retired.rx)
	step(&c.tx, now.tx, &retired.tx)
}

// tracked is a running container the collector follows.
type tracked struct {
	site   string
	cgroup string // relative to the hierarchy; "" until found
	pid    int    // its process on the host, from the engine; 0 until asked
	last   counters
	mem    uint64
	pids   uint64
}

// Collector reads sites' figures. Safe for concurrent use; one pass runs
// at a time.
type Collector struct {
	eng Engine
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	cg      *cgroups
	known   map[string]*tracked  // container ID → what was last read
	retired map[string]*counters // site → what its gone containers counted
	last    *Pass
}

// New returns a collector reading eng's containers.
func New(eng Engine, cfg Config, log *slog.Logger) *Collector {
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/sys/fs/cgroup"
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Collector{eng: eng, cfg: cfg, log: log, known: map[string]*tracked{}, retired: map[string]*counters{}}
}

// Collect returns the latest pass, running a new one when the last is
// older than MinInterval.
func (c *Collector) Collect(ctx context.Context) (*Pass, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil && c.cfg.Now().Sub(c.last.At) < c.cfg.MinInterval {
		return c.last, nil
	}
	p, err := c.pass(ctx)
	if err != nil {
		return nil, err
	}
	c.last = p
	return p, nil
}

// CgroupVersion is the layout the collector reads (1 or 2), 0 before the
// first pass.
func (c *Collector) CgroupVersion() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cg == nil {
		return 0
	}
	return c.cg.Version()
}

func (c *Collector) pass(ctx context.Context) (*Pass, error) {
	start := time.Now()
	if c.cg == nil {
		cg, err := openCgroups(c.cfg.CgroupRoot)
		if err != nil {
			return nil, err
		}
		c.cg = cg
	}
	cs, err := c.eng.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	sites := map[string]*Site{}
	var wanted map[string]bool
	if c.cfg.Sites != nil {
		names, err := c.cfg.Sites(ctx)
		if err != nil {
			return nil, fmt.Errorf("metrics: list sites: %w", err)
		}
		wanted = make(map[string]bool, len(names))
		for _, n := range names {
			wanted[n] = true
			sites[n] = &Site{Name: n}
		}
	}
	running := map[string]bool{}
	for _, ci := range cs {
		if ci.Site == "" || (wanted != nil && !wanted[ci.Site]) {
			continue
		}
		s := sites[ci.Site]
		if s == nil {
			s = &Site{Name: ci.Site}
			sites[ci.Site] = s
		}
		s.Containers++
		if ci.State != "running" {
			continue
		}
		if ci.Health == "unhealthy" {
			s.Unhealthy++
		}
		running[ci.ID] = true
		if t := c.known[ci.ID]; t == nil || t.site != ci.Site {
			c.retire(ci.ID)
			c.known[ci.ID] = &tracked{site: ci.Site}
		}
	}
	// Containers that stopped or went: what they counted stays the site's.
	for id := range c.known {
		if !running[id] {
			c.retire(id)
		}
	}
	c.locate()
	c.resolvePIDs(ctx)

	p := &Pass{At: c.cfg.Now()}
	for id, t := range c.known {
		if err := c.read(ctx, id, t); err != nil {
			if errors.Is(err, fs.ErrNotExist) { // stopped since the listing
				c.retire(id)
				continue
			}
			p.Failed++
			c.log.Warn("read container figures", "container", id, "site", t.site, "err", err)
			continue
		}
		p.Containers++
		s := sites[t.site]
		s.Running++
		s.MemoryBytes += t.mem
		s.Pids += t.pids
	}
	totals := make(map[string]*counters, len(sites))
	for name, r := range c.retired {
		v := *r
		totals[name] = &v
	}
	for _, t := range c.known {
		if totals[t.site] == nil {
			totals[t.site] = &counters{}
		}
		totals[t.site].add(t.last)
	}
	for name, s := range sites {
		var total counters
		if t := totals[name]; t != nil {
			total = *t
		}
		s.CPUSeconds = float64(total.cpuNS) / 1e9
		s.OOMKills, s.IOReadBytes, s.IOWriteBytes = total.oomKills, total.ioRead, total.ioWrite
		s.ReceiveBytes, s.TransmitBytes = total.rx, total.tx
		p.Sites = append(p.Sites, *s)
	}
	// A site gone from the list (deleted) takes its totals with it.
	for name := range c.retired {
		if sites[name] == nil {
			delete(c.retired, name)
		}
	}
	sort.Slice(p.Sites, func(i, j int) bool { return p.Sites[i].Name < p.Sites[j].Name })
	p.Took = time.Since(start)
	return p, nil
}

// retire stops following a container, keeping what it counted.
func (c *Collector) retire(id string) {
	t := c.known[id]
	if t == nil {
		return
	}
	r := c.retired[t.site]
	if r == nil {
		r = &counters{}
		c.retired[t.site] = r
	}
	r.add(t.last)
	delete(c.known, id)
}

// locate finds the cgroups of new containers: under the known cgroup
// parents first, then by one walk for those still missing.
func (c *Collector) locate() {
	var missing []string
	for id, t := range c.known {
		if t.cgroup != "" {
			continue
		}
		if rel, ok := c.cg.find(id); ok {
			t.cgroup = rel
			continue
		}
		missing = append(missing, id)
	}
	if len(missing) == 0 {
		return
	}
	for id, rel := range c.cg.search(missing) {
		c.known[id].cgroup = rel
	}
}

// pidLookups bounds the inspections run side by side: on the first pass
// every running container is inspected once.
const pidLookups = 8

// resolvePIDs asks the engine for the process of the containers that have
// none yet: each container is inspected once per start, not once a pass.
func (c *Collector) resolvePIDs(ctx context.Context) {
	type res struct {
		id  string
		pid int
		err error
	}
	var ids []string
	for id, t := range c.known {
		if t.pid == 0 {
			ids = append(ids, id)
		}
	}
	out := make(chan res, len(ids))
	sem := make(chan struct{}, pidLookups)
	for _, id := range ids {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pid, err := c.eng.ContainerPID(ctx, id)
			out <- res{id, pid, err}
		}()
	}
	for range ids {
		r := <-out
		if r.err != nil {
			c.log.Warn("find a container's process", "container", r.id, "err", r.err)
			continue
		}
		c.known[r.id].pid = r.pid
	}
}

// read reads one container's cgroup and network counters into t.
func (c *Collector) read(ctx context.Context, id string, t *tracked) error {
	if t.cgroup == "" {
		return fmt.Errorf("no cgroup found for it under %s", c.cg.hierarchy())
	}
	u, err := c.cg.read(t.cgroup)
	if err != nil {
		return err
	}
	r := c.retired[t.site]
	if r == nil {
		r = &counters{}
		c.retired[t.site] = r
	}
	now := counters{cpuNS: u.cpuNS, oomKills: u.oomKills, ioRead: u.ioRead, ioWrite: u.ioWrite, rx: t.last.rx, tx: t.last.tx}
	pid := t.pid
	rx, tx, err := c.network(ctx, id, t)
	switch {
	case err != nil:
		c.log.Debug("network counters", "container", id, "err", err)
	case pid != 0 && t.pid != pid:
		// Another process: another namespace, whose counters started
		// again even if they already passed the old ones.
		r.rx, r.tx = r.rx+t.last.rx, r.tx+t.last.tx
		t.last.rx, t.last.tx = 0, 0
		fallthrough
	default:
		now.rx, now.tx = rx, tx
	}
	t.last.advance(now, r)
	t.mem, t.pids = u.memory, u.pids
	return nil
}

// network reads the counters of the container's namespace through its
// process. A process gone (the container restarted under the same ID) is
// asked for again, once.
func (c *Collector) network(ctx context.Context, id string, t *tracked) (rx, tx uint64, err error) {
	for try := 0; try < 2; try++ {
		if t.pid == 0 {
			return 0, 0, fmt.Errorf("no process known")
		}
		b, err := os.ReadFile(filepath.Join(c.cfg.ProcRoot, strconv.Itoa(t.pid), "net", "dev"))
		if err == nil {
			return netDev(b)
		}
		if !errors.Is(err, fs.ErrNotExist) || try > 0 {
			return 0, 0, err
		}
		if t.pid, err = c.eng.ContainerPID(ctx, id); err != nil {
			return 0, 0, err
		}
	}
	return 0, 0, fmt.Errorf("no process")
}
