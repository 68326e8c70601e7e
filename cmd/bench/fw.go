package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/firewall"
	"github.com/darse/darse/internal/firewall/firewalltest"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/nft"
)

// fwBench measures the firewall watcher: the latency from a container's
// start event to its rules being in the kernel, over 100 starts on the
// real engine; and the time to compute and apply a full resync of 10, 100
// and 1000 exposures in a scratch network namespace, beside nft -f
// loading the same ruleset text.
func fwBench(ctx context.Context, o options) error {
	if err := fwLatency(ctx, 100); err != nil {
		return err
	}
	return fwResync(ctx, max(o.n, 5), []int{10, 100, 1000})
}

func fwLatency(ctx context.Context, starts int) error {
	eng, err := engine.New(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	image, err := firewalltest.EchoImage()
	if err != nil {
		return err
	}
	id := strconv.Itoa(os.Getpid())
	label := "darse.fwbench=" + id
	table := "darse_bench" + id
	network, err := firewalltest.NewNetwork("dfwbench-"+id, firewalltest.Subnet6(), label)
	if err != nil {
		return err
	}
	defer func() {
		// One by one, then the network, retried: removing a hundred
		// containers at once has left Docker 20.10 counting endpoints that
		// no longer exist, and the network impossible to remove.
		ids, _ := firewalltest.Docker("ps", "-aq", "--filter", "label="+label)
		for _, id := range strings.Fields(ids) {
			firewalltest.Docker("rm", "-f", id)
		}
		exec.Command("nft", "delete", "table", "inet", table).Run()
		var err error
		for range 10 {
			if _, err = firewalltest.Docker("network", "rm", network.Name); err == nil {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		fmt.Fprintf(os.Stderr, "bench fw: network %s left behind: %v\n", network.Name, err)
	}()

	// The watcher's log is shown only if the suite fails.
	logs := &lockedLog{}
	// When each container's rules were first in the kernel.
	var (
		mu      sync.Mutex
		ruledAt = map[string]time.Time{}
		applies []time.Duration
	)
	src := eng.Firewall(label)
	w := firewall.NewWatcher(src, nft.New(), firewall.Config{
		Options: firewall.Options{Table: table},
		OnApply: func(a firewall.Applied) {
			mu.Lock()
			defer mu.Unlock()
			applies = append(applies, a.Took)
			for cid := range a.Ruleset.ContainerIDs() {
				if _, ok := ruledAt[cid]; !ok {
					ruledAt[cid] = a.At
				}
			}
		},
	}, slog.New(slog.NewTextHandler(logs, nil)))
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go w.Run(wctx)

	// The engine's own timestamps of the start events.
	evc, errc, err := src.Events(wctx)
	if err != nil {
		return err
	}
	started := map[string]time.Time{}
	var lat []time.Duration
	for i := range starts {
		l, err := labels.Expose([]labels.Exposure{{Name: "web", Port: 8080, HostPort: 40000 + i}})
		if err != nil {
			return err
		}
		args := []string{"run", "-d", "--name", fmt.Sprintf("dfwbench-%s-%d", id, i), "--network", network.Name, "--label", label}
		for k, v := range l {
			args = append(args, "--label", k+"="+v)
		}
		cid, err := firewalltest.Docker(append(args, image, "tcp:8080")...)
		if err != nil {
			return err
		}
		deadline := time.After(10 * time.Second)
		for started[cid].IsZero() {
			select {
			case ev := <-evc:
				if ev.Action == "start" {
					started[ev.Container] = ev.Time
				}
			case err := <-errc:
				return fmt.Errorf("events: %w", err)
			case <-deadline:
				return fmt.Errorf("no start event for %s", cid)
			}
		}
		var at time.Time
		for wait := time.Now().Add(10 * time.Second); time.Now().Before(wait); time.Sleep(time.Millisecond) {
			mu.Lock()
			at = ruledAt[cid]
			mu.Unlock()
			if !at.IsZero() {
				break
			}
		}
		if at.IsZero() {
			return fmt.Errorf("container %d: no rules within 10s; watcher log:\n%s", i, logs)
		}
		lat = append(lat, at.Sub(started[cid]))
	}
	s := w.Stats()
	mu.Lock()
	applyMed := median(applies)
	mu.Unlock()
	fmt.Printf("event-to-rule latency: %d container starts with one exposure each (engine start event -> rules in the kernel)\n", starts)
	fmt.Printf("  darse-fw  median %6.1f ms   p99 %6.1f ms   max %6.1f ms   (target p99 < 100 ms)\n",
		ms(median(lat)), ms(percentile(lat, 0.99)), ms(maxOf(lat)))
	fmt.Printf("  %d applies (median apply %.1f ms), %d failures, %d events\n", s.Applies, ms(applyMed), s.Failures, s.Events)
	return nil
}

// syntheticState is n running containers with one exposure each, on
// dual-stack networks of up to 250 containers.
func syntheticState(n, shift int) firewall.State {
	var st firewall.State
	for net := 0; net*250 < n; net++ {
		st.Networks = append(st.Networks, firewall.Network{
			Name:   fmt.Sprintf("bench%d", net),
			Bridge: fmt.Sprintf("br-bench%04d", net),
			Subnets: []netip.Prefix{
				netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, byte(net), 0}), 24),
				netip.MustParsePrefix(fmt.Sprintf("fd42:be0c:%x::/64", net)),
			},
		})
	}
	for i := range n {
		net, host := i/250, i%250+2
		l, _ := labels.Expose([]labels.Exposure{{Name: "web", Port: 8080, HostPort: 40000 + (i+shift)%10000}})
		st.Containers = append(st.Containers, firewall.Container{
			ID: fmt.Sprintf("%064d", i), Name: fmt.Sprintf("site%d_web_1", i), Created: time.Unix(int64(i), 0), Labels: l,
			Endpoints: []firewall.Endpoint{{
				Network: fmt.Sprintf("bench%d", net),
				IPv4:    netip.AddrFrom4([4]byte{10, 200, byte(net), byte(host)}),
				IPv6:    netip.MustParseAddr(fmt.Sprintf("fd42:be0c:%x::%x", net, host)),
			}},
		})
	}
	return st
}

func fwResync(ctx context.Context, runs int, sizes []int) error {
	ns, err := firewalltest.NewNetns()
	if err != nil {
		return err
	}
	defer ns.Close()
	dir, err := os.MkdirTemp("", "darse-fw-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	conn := nft.New(nft.WithNetNS(ns.FD()))
	// nft runs in the scratch namespace without ip netns exec's own cost:
	// started from a thread inside it. Checked first, so that it can never
	// load into the host's.
	err = ns.Do(func() error {
		out, err := exec.Command("ip", "-o", "link").Output()
		if err != nil || len(bytes.Split(bytes.TrimSpace(out), []byte("\n"))) != 1 {
			return fmt.Errorf("a command started inside the scratch namespace sees other links: %s", out)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("full resync in a scratch namespace: compute + apply (darse-fw, netlink) vs nft -f of the same text, %d runs each, median\n", runs)
	for _, n := range sizes {
		var darse, nftf, compute []time.Duration
		rules := 0
		for i := range runs {
			// Each run changes every exposure (host ports shift), as a
			// resync after many changes would.
			st := syntheticState(n, i*7)
			start := time.Now()
			r := firewall.Build(st, firewall.Options{Table: "darse"})
			compute = append(compute, time.Since(start))
			if err := conn.Apply(ctx, r.Table); err != nil {
				return fmt.Errorf("%d exposures: %w", n, err)
			}
			darse = append(darse, time.Since(start))
			if len(r.Exposures) != n {
				return fmt.Errorf("%d exposures built, want %d: %v", len(r.Exposures), n, r.Problems)
			}
			rules = 0
			for _, c := range r.Table.Chains {
				rules += len(c.Rules)
			}
			// The peer loads the same ruleset, also changed from the last.
			other := firewall.Build(syntheticState(n, i*7+3), firewall.Options{Table: "darse"})
			file := filepath.Join(dir, "ruleset.nft")
			if err := os.WriteFile(file, []byte(other.Text()), 0o644); err != nil {
				return err
			}
			var took time.Duration
			err := ns.Do(func() error {
				start := time.Now()
				out, err := exec.Command("nft", "-f", file).CombinedOutput()
				took = time.Since(start)
				if err != nil {
					return fmt.Errorf("nft -f: %v: %s", err, out)
				}
				return nil
			})
			if err != nil {
				return err
			}
			nftf = append(nftf, took)
		}
		d, f := median(darse), median(nftf)
		fmt.Printf("  %5d exposures (%5d rules)  darse-fw %7.1f ms (compute %5.1f)   nft -f %7.1f ms   ratio darse-fw/nft %.2fx\n",
			n, rules, ms(d), ms(median(compute)), ms(f), float64(d)/float64(f))
	}
	fmt.Println("  (target: 1000 exposures under 100 ms and no slower than nft -f)")
	return nil
}

// lockedLog is a log buffer the watcher writes while the suite may read.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// percentile is the q-quantile (nearest rank) of ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}
