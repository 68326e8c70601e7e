// Command bench measures darse beside the peer each issue names, in one
// run, and prints the figures side by side with their ratio.
//
//	go run ./cmd/bench [-n 7] [-darse bin/darse] [SUITE...]
//
// With no suite named, every suite runs. Needs root, the Docker engine,
// docker compose v2 (-compose-v2), docker-compose 1.29 and the local
// images.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
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
	{"density", densityBench},
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
		if os.Getenv(densityEngineEnv) == "" { // not the density suite run again in its namespace
			fmt.Printf("== %s\n", s.name)
		}
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
