package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

var frontSites = flag.Int("front-sites", 200, "other sites present in the front suite's second round")

// frontDoor times `darse site create` until the site's first HTTP 200
// through Traefik, beside the same path by hand (compose v2's and compose
// 1.29's up -d in the rendered folder, then polling Traefik), with no other site and with
// -front-sites others; and reports Traefik's memory.
func frontDoor(ctx context.Context, o options) error {
	f, stop, err := startFront(ctx, o, "front")
	if err != nil {
		return err
	}
	defer stop()
	ps, err := peers()
	if err != nil {
		return err
	}
	darse := f.darse
	var created []string
	round := func(label, tag string) error {
		var viaDarse []time.Duration
		byHand := make([][]time.Duration, len(ps))
		for i := 0; i < o.n; i++ {
			name := fmt.Sprintf("fb%d-%s-%d", os.Getpid(), tag, i)
			host := name + "." + f.domain
			start := time.Now()
			if err := darse("site", "create", name, "--template", "static"); err != nil {
				return err
			}
			created = append(created, name)
			d, err := f.until(host, "/", 200, start, time.Minute)
			if err != nil {
				return err
			}
			viaDarse = append(viaDarse, d)
			// By hand, on the same rendered folder, with each peer.
			for k, p := range ps {
				if err := f.compose(ps[0], name, "down"); err != nil {
					return err
				}
				if _, err := f.until(host, "/", 404, time.Now(), time.Minute); err != nil {
					return err
				}
				start = time.Now()
				if err := f.compose(p, name, "up", "-d"); err != nil {
					return err
				}
				if d, err = f.until(host, "/", 200, start, time.Minute); err != nil {
					return err
				}
				byHand[k] = append(byHand[k], d)
			}
		}
		md := median(viaDarse)
		fmt.Printf("  %-10s darse site create -> 200: %6.0f ms", label, ms(md))
		for k, p := range ps {
			mh := median(byHand[k])
			fmt.Printf("   %s up -d -> 200: %6.0f ms (ratio %s)", p.name, ms(mh), ratio(ms(md), ms(mh)))
		}
		fmt.Println()
		return nil
	}
	fmt.Printf("site creation until HTTP 200 through Traefik (%d runs each, median; target < 1500 ms with %d sites, ratio <= 0.5x)\n", o.n, *frontSites)
	if err := round("0 sites", "a"); err != nil {
		return err
	}
	// Populate, four at a time.
	names := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range names {
				err := darse("site", "create", n, "--template", "static")
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					created = append(created, n)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < *frontSites; i++ {
		names <- fmt.Sprintf("fp%d-%d", os.Getpid(), i)
	}
	close(names)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := round(fmt.Sprintf("%d sites", *frontSites), "b"); err != nil {
		return err
	}
	mem, err := exec.CommandContext(ctx, "docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", fmt.Sprintf("front-bench%d_traefik_1", os.Getpid())).Output()
	if err != nil {
		return err
	}
	fmt.Printf("  traefik memory with %d sites: %s\n", len(created), strings.TrimSpace(string(mem)))
	return nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
