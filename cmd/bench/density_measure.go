package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// measure prints the figures at the size just reached.
func (d *density) measure(size int) error {
	s := d.last
	n := d.sites()
	at := n >= targetAt
	fmt.Printf("at %d sites:\n", n)
	dr, pr := perMinute(s.batch, s.batchTook), perMinute(s.peerBatch, s.peerBatchTook)
	fmt.Printf("  %-28s darse %8.1f       compose v2 up -d %8.1f       ratio %s   (%d and %d sites, %d at a time)\n",
		"sites created per minute", dr, pr, ratio(dr, pr), s.batch, s.peerBatch, *densityParallel)
	if len(s.create200) > 0 {
		md, mp := median(s.create200), median(s.peer200)
		fmt.Printf("  %-28s darse %8.0f ms    compose v2 up -d %8.0f ms    ratio %s   (median of %d new sites; target < %v at %d sites%s)\n",
			"create -> first 200", ms(md), ms(mp), ratio(ms(md), ms(mp)), len(s.create200), targetCreate200, targetAt, verdictAt(at, md < targetCreate200))
	}
	if err := d.printIdle(); err != nil {
		return err
	}
	traefik, err := containersKiB(d.ctx, "traefik", false, "label=com.docker.compose.project="+d.f.project, "label=com.docker.compose.service=traefik")
	if err != nil {
		return err
	}
	fmt.Printf("  %-28s %8.1f MiB (PSS of its processes and its shim)\n", "traefik", float64(traefik)/1024)
	ls, err := timeRuns(3, func() error { return d.darse("site", "ls") })
	if err != nil {
		return err
	}
	pls, err := timeRuns(3, func() error { return d.v2.run(d.ctx, d.f.srv, "ls", "-a") })
	if err != nil {
		return err
	}
	fmt.Printf("  %-28s darse %8.0f ms    compose v2 ls -a %8.0f ms    ratio %s   (median of 3; target < %v at %d sites%s)\n",
		"site ls", ms(ls), ms(pls), ratio(ms(ls), ms(pls)), targetSiteLs, targetAt, verdictAt(at, ls < targetSiteLs))
	p50, p99, err := d.adminList(50)
	if err != nil {
		return err
	}
	fmt.Printf("  %-28s p50 %6.1f ms   p99 %6.1f ms   (GET /admin, 50 requests on loopback)\n", "panel admin site list", ms(p50), ms(p99))
	return nil
}

// verdictAt says whether a target that applies from targetAt sites is met.
func verdictAt(applies, ok bool) string {
	switch {
	case !applies:
		return ""
	case ok:
		return ": ok"
	default:
		return ": NOT MET"
	}
}

// printIdle prints the memory of idle static and PHP sites, darse's and
// compose v2's: the median over a few sites of each one's median sample.
func (d *density) printIdle() error {
	var darseStatic, peerStatic []string
	for _, n := range d.static {
		switch {
		case !d.byPeer[n] && len(darseStatic) < 3:
			darseStatic = append(darseStatic, n)
		case d.byPeer[n] && len(peerStatic) < 3:
			peerStatic = append(peerStatic, n)
		}
	}
	groups := [][]string{darseStatic, peerStatic, d.php[:densityPHP-1], d.php[densityPHP-1:]}
	kib, err := idleGroups(d, groups)
	if err != nil {
		return err
	}
	if len(darseStatic) == 0 {
		return fmt.Errorf("density: no static site of darse's own left to measure")
	}
	fmt.Printf("  %-28s darse %s   compose v2       %s   ratio %s   (median of %d and %d sites; target < %d MiB: %s)\n", "idle static site",
		kibText(kib[0]), kibText(kib[1]), ratio(float64(kib[0]), float64(kib[1])), len(darseStatic), len(peerStatic), targetIdleStatic>>10, verdictOf(kib[0] < targetIdleStatic))
	fmt.Printf("  %-28s darse %s   compose v2       %s   ratio %s\n", "idle php site",
		kibText(kib[2]), kibText(kib[3]), ratio(float64(kib[2]), float64(kib[3])))
	return nil
}

// kibText prints KiB as MiB, "-" for none measured.
func kibText(kib int) string {
	if kib == 0 {
		return fmt.Sprintf("%8s    ", "-")
	}
	return fmt.Sprintf("%8.1f MiB", float64(kib)/1024)
}

func verdictOf(ok bool) string {
	if ok {
		return "ok"
	}
	return "NOT MET"
}

// idleGroups samples every site of every group wpSamples times while they
// are left alone (as the wordpress suite does, all at once) and returns,
// per group, the median of the sites' medians; an empty group is 0.
func idleGroups(d *density, groups [][]string) ([]int, error) {
	samples := map[string][]int{}
	wait := wpIdle
	for i := range wpSamples {
		select {
		case <-time.After(wait):
		case <-d.ctx.Done():
			return nil, d.ctx.Err()
		}
		wait = wpEvery
		for _, g := range groups {
			for k, site := range g {
				kib, err := siteKiB(d.ctx, site, k == 0 && i == wpSamples/2)
				if err != nil {
					return nil, err
				}
				samples[site] = append(samples[site], kib)
			}
		}
	}
	out := make([]int, len(groups))
	for gi, g := range groups {
		var meds []int
		for _, site := range g {
			s := slices.Sorted(slices.Values(samples[site]))
			meds = append(meds, s[len(s)/2])
		}
		if len(meds) > 0 {
			slices.Sort(meds)
			out[gi] = meds[len(meds)/2]
		}
	}
	return out, nil
}

// timeRuns returns the median time of n runs of do.
func timeRuns(n int, do func() error) (time.Duration, error) {
	var ts []time.Duration
	for range n {
		t0 := time.Now()
		if err := do(); err != nil {
			return 0, err
		}
		ts = append(ts, time.Since(t0))
	}
	return median(ts), nil
}

// adminList times n requests of the panel's admin site list.
func (d *density) adminList(n int) (p50, p99 time.Duration, err error) {
	ts := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		resp, err := d.admin.Get(d.panel + "/admin")
		if err != nil {
			return 0, 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("GET /admin: %d", resp.StatusCode)
		}
		ts = append(ts, time.Since(t0))
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts[len(ts)/2], ts[len(ts)*99/100], nil
}

// restartDowntime requests a sample of the sites through Traefik without
// pause while the engine restarts, and prints, for darse's sites and for
// compose v2's, how many failed to answer and for how long.
func (d *density) restartDowntime(eng *benchEngine) error {
	hosts, peerHosts := d.restartSample(100)
	all := append(slices.Clone(hosts), peerHosts...)
	tr := newOutages(all)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests atomic.Int64
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; requests.Add(1) < 2_000_000; i += 8 {
				select {
				case <-stop:
					return
				default:
				}
				h := all[i%len(all)]
				tr.record(h, d.get(c, h), time.Now())
			}
		}()
	}
	finish := func() { close(stop); wg.Wait() }
	time.Sleep(3 * time.Second)
	before := tr.failing()
	stopTook, startTook, err := eng.restart(d.ctx)
	if err != nil {
		finish()
		return fmt.Errorf("restart the engine: %w", err)
	}
	back := time.Now()
	for deadline := back.Add(10 * time.Minute); !tr.answeredSince(back) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	finish()
	now := time.Now()
	fmt.Printf("engine restart with %d sites (live-restore): dockerd stopped in %.1f s, answered again %.1f s later; %d sites requested through Traefik meanwhile\n",
		d.sites(), stopTook.Seconds(), startTook.Seconds(), len(all))
	if len(before) > 0 {
		fmt.Printf("  (before the restart, %d of them were failing already: %v)\n", len(before), before)
	}
	for _, g := range []struct {
		name  string
		hosts []string
	}{{"darse", hosts}, {"compose v2", peerHosts}} {
		s := tr.summary(g.hosts, now)
		fmt.Printf("  %-10s %d of %d sites failed to answer, longest for %.1f s; %d of %d requests failed   (target zero downtime: %s)%s\n",
			g.name, s.down, len(g.hosts), s.longest.Seconds(), s.failed, s.failed+s.ok, verdictOf(s.down == 0), someOf(s.sites))
	}
	return nil
}

// restartSample picks up to n of darse's sites evenly (static and PHP) and
// every site compose v2 brought up, as host names.
func (d *density) restartSample(n int) (darse, peer []string) {
	var mine []string
	for _, s := range append(slices.Clone(d.static), d.php...) {
		if d.byPeer[s] {
			peer = append(peer, d.host(s))
		} else {
			mine = append(mine, d.host(s))
		}
	}
	step := max(1, len(mine)/n)
	for i := 0; i < len(mine) && len(darse) < n; i += step {
		darse = append(darse, mine[i])
	}
	return darse, peer
}

// get requests a site through Traefik: true if it answered 200.
func (d *density) get(c *http.Client, host string) bool {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", d.f.port), nil)
	if err != nil {
		return false
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// outages follows, per site, the requests that failed: a site is down
// from its first failed request to the next one it answers.
type outages struct {
	mu    sync.Mutex
	sites map[string]*outage
}

type outage struct {
	downSince  time.Time // zero while up
	longest    time.Duration
	failed, ok int
	lastOK     time.Time
	everDown   bool
}

func newOutages(hosts []string) *outages {
	o := &outages{sites: map[string]*outage{}}
	for _, h := range hosts {
		o.sites[h] = &outage{}
	}
	return o
}

func (o *outages) record(host string, ok bool, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.sites[host]
	if s == nil {
		return
	}
	if !ok {
		s.failed++
		s.everDown = true
		if s.downSince.IsZero() {
			s.downSince = at
		}
		return
	}
	s.ok++
	s.lastOK = at
	if !s.downSince.IsZero() {
		s.longest = max(s.longest, at.Sub(s.downSince))
		s.downSince = time.Time{}
	}
}

// answeredSince says whether every site answered at or after t.
func (o *outages) answeredSince(t time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.sites {
		if s.lastOK.Before(t) {
			return false
		}
	}
	return true
}

// failing lists the sites down now.
func (o *outages) failing() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for h, s := range o.sites {
		if !s.downSince.IsZero() {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

type outageSummary struct {
	down       int      // sites that failed at least one request
	sites      []string // which
	longest    time.Duration
	failed, ok int
}

// summary adds up hosts' outages; one still down at now counts until now.
func (o *outages) summary(hosts []string, now time.Time) outageSummary {
	o.mu.Lock()
	defer o.mu.Unlock()
	var sum outageSummary
	for _, h := range hosts {
		s := o.sites[h]
		if s == nil {
			continue
		}
		if s.everDown {
			sum.down++
			sum.sites = append(sum.sites, h)
		}
		longest := s.longest
		if !s.downSince.IsZero() {
			longest = max(longest, now.Sub(s.downSince))
		}
		sum.longest = max(sum.longest, longest)
		sum.failed += s.failed
		sum.ok += s.ok
	}
	return sum
}

// someOf names the first few sites of a list.
func someOf(sites []string) string {
	switch {
	case len(sites) == 0:
		return ""
	case len(sites) > 5:
		return fmt.Sprintf(": %s, …", strings.Join(sites[:5], ", "))
	default:
		return ": " + strings.Join(sites, ", ")
	}
}
