// Command bench measures darse beside the peer each issue names, in one
// run, and prints the figures side by side with their ratio.
//
//	go run ./cmd/bench [-n 7] [-darse bin/darse] [SUITE...]
//
// With no suite named, every suite runs. Needs root, the Docker engine,
// docker-compose and the local images.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/netns"
)

// options are what every suite may use.
type options struct {
	n        int    // runs per contender
	darseBin string // absolute path of the darse binary
}

// suite is one benchmark: it prints its figures and ratios itself.
type suite struct {
	name string
	run  func(ctx context.Context, o options) error
}

// suites run in this order; each lives in its own file.
var suites = []suite{
	{"site", siteUp},
	{"front", frontDoor},
	{"fw", fwBench},
	{"panel", panelBench},
	{"metrics", metricsBench},
	{"wordpress", wordpressBench},
	{"backup", backupBench},
	{"rollout", rolloutBench},
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 7, "runs per contender")
	darseBin := flag.String("darse", "bin/darse", "darse binary")
	flag.Parse()
	bin, err := filepath.Abs(*darseBin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	o.darseBin = bin
	want := map[string]bool{}
	for _, a := range flag.Args() {
		want[a] = true
	}
	ctx := context.Background()
	all := len(want) == 0
	for _, s := range suites {
		if !all && !want[s.name] {
			continue
		}
		delete(want, s.name)
		fmt.Printf("== %s\n", s.name)
		if err := s.run(ctx, o); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", s.name, err)
			os.Exit(1)
		}
	}
	for name := range want {
		fmt.Fprintf(os.Stderr, "bench: no suite %q\n", name)
		os.Exit(2)
	}
}

// siteUp times darse site up of a freshly rendered static site until it
// answers HTTP 200, beside docker-compose up -d on the same folder.
func siteUp(ctx context.Context, o options) error {
	bin, n := o.darseBin, o.n
	eng, err := engine.New(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	srv, err := os.MkdirTemp("", "darse-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(srv)
	name := fmt.Sprintf("bench-%d", os.Getpid())
	dir := filepath.Join(srv, "users", name)
	darse := func(args ...string) error {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "DARSE_SRV="+srv)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("darse %v: %v: %s", args, err, out)
		}
		return nil
	}
	composeCmd := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "docker-compose", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("docker-compose %v: %v: %s", args, err, out)
		}
		return nil
	}
	// A freshly rendered static site, then taken down: each run starts from
	// the rendered folder with nothing on the engine.
	if err := darse("site", "create", name, "--template", "static"); err != nil {
		return err
	}
	defer darse("site", "rm", name, "--purge", "--yes")
	container := name + "_web_1"
	untilOK := func(start time.Time) (time.Duration, error) {
		deadline := start.Add(30 * time.Second)
		for time.Now().Before(deadline) {
			pid, err := eng.ContainerPID(ctx, container)
			if err != nil {
				return 0, err
			}
			if pid != 0 {
				if code, _, err := netns.Get(pid, "http://127.0.0.1:8080/", ""); err == nil && code == 200 {
					return time.Since(start), nil
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		return 0, fmt.Errorf("%s did not answer 200 within 30s", container)
	}
	contenders := []struct {
		name string
		up   func() error
	}{
		{"darse site up", func() error { return darse("site", "up", name) }},
		{"docker-compose up -d", func() error { return composeCmd("up", "-d") }},
	}
	times := make([][]time.Duration, len(contenders))
	for i := 0; i < n; i++ {
		for j := range contenders {
			c := contenders[(i+j)%len(contenders)] // alternate who goes first
			k := (i + j) % len(contenders)
			if err := composeCmd("down"); err != nil {
				return err
			}
			start := time.Now()
			if err := c.up(); err != nil {
				return err
			}
			d, err := untilOK(start)
			if err != nil {
				return err
			}
			times[k] = append(times[k], d)
		}
	}
	fmt.Printf("site up until HTTP 200 (static template, %d runs each, median)\n", n)
	med := make([]time.Duration, len(contenders))
	for k, c := range contenders {
		med[k] = median(times[k])
		fmt.Printf("  %-22s %8.0f ms   (min %.0f, max %.0f)\n", c.name, ms(med[k]), ms(minOf(times[k])), ms(maxOf(times[k])))
	}
	fmt.Printf("  ratio darse/docker-compose: %.2fx   (target: <= 0.5x and darse < 1000 ms)\n", float64(med[0])/float64(med[1]))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func minOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
