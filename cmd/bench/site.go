package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/netns"
)

// siteUp times `darse site up` of a freshly rendered static site until it
// answers HTTP 200, beside `up -d` of compose v2 and of compose 1.29 on the
// same folder, and the floor the engine sets: `docker run -d` of the same
// container (image, mounts, user, limits) with no compose at all.
func siteUp(ctx context.Context, o options) error {
	ps, err := peers()
	if err != nil {
		return err
	}
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
		cmd := exec.CommandContext(ctx, o.darseBin, args...)
		cmd.Env = append(os.Environ(), "DARSE_SRV="+srv)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("darse %v: %v: %s", args, err, out)
		}
		return nil
	}
	// A freshly rendered static site, then taken down: each run starts from
	// the rendered folder with nothing on the engine.
	if err := darse("site", "create", name, "--template", "static"); err != nil {
		return err
	}
	defer darse("site", "rm", name, "--purge", "--yes")
	web, err := webContainer(ctx, name)
	if err != nil {
		return err
	}
	floor := name + "-floor"
	run, err := floorArgs(ctx, web, floor)
	if err != nil {
		return err
	}
	defer exec.Command("docker", "rm", "-f", floor).Run()
	untilOK := func(start time.Time, find func() (string, error)) (time.Duration, error) {
		deadline := start.Add(30 * time.Second)
		id := ""
		for time.Now().Before(deadline) {
			if id == "" {
				if id, err = find(); err != nil {
					return 0, err
				}
			}
			if id != "" {
				pid, err := eng.ContainerPID(ctx, id)
				if err != nil {
					return 0, err
				}
				if pid != 0 {
					if code, _, err := netns.Get(pid, "http://127.0.0.1:8080/", ""); err == nil && code == 200 {
						return time.Since(start), nil
					}
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		return 0, fmt.Errorf("%s's web container did not answer 200 within 30s", name)
	}
	byLabel := func() (string, error) { return webContainer(ctx, name) }
	type contender struct {
		name string
		up   func() error
		find func() (string, error)
	}
	contenders := []contender{{"darse site up", func() error { return darse("site", "up", name) }, byLabel}}
	for _, p := range ps {
		contenders = append(contenders, contender{p.name + " up -d", func() error { return p.run(ctx, dir, "up", "-d") }, byLabel})
	}
	contenders = append(contenders, contender{"docker run -d (floor)", func() error {
		if out, err := exec.CommandContext(ctx, "docker", run...).CombinedOutput(); err != nil {
			return fmt.Errorf("docker run: %v: %s", err, out)
		}
		return nil
	}, func() (string, error) { return floor, nil }})
	// Between runs: nothing of the site on the engine.
	reset := func() error {
		if err := ps[0].run(ctx, dir, "down"); err != nil {
			return err
		}
		if out, err := exec.CommandContext(ctx, "docker", "rm", "-f", floor).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such container") {
			return fmt.Errorf("docker rm %s: %v: %s", floor, err, out)
		}
		return nil
	}
	times := make([][]time.Duration, len(contenders))
	for i := 0; i < o.n; i++ {
		for j := range contenders {
			k := (i + j) % len(contenders) // alternate who goes first
			if err := reset(); err != nil {
				return err
			}
			start := time.Now()
			if err := contenders[k].up(); err != nil {
				return err
			}
			d, err := untilOK(start, contenders[k].find)
			if err != nil {
				return err
			}
			times[k] = append(times[k], d)
		}
	}
	if err := reset(); err != nil {
		return err
	}
	fmt.Printf("site up until HTTP 200 from the container (static template, %d runs each, median)\n", o.n)
	med := make([]time.Duration, len(contenders))
	for k, c := range contenders {
		med[k] = median(times[k])
		fmt.Printf("  %-24s %8.0f ms   (min %.0f, max %.0f)   darse/this %s\n", c.name, ms(med[k]), ms(minOf(times[k])), ms(maxOf(times[k])), ratio(ms(med[0]), ms(med[k])))
	}
	fmt.Printf("  target: darse < 1000 ms and at most 0.5x compose v2 (%s); the floor is what the engine alone costs\n", ratio(ms(med[0]), ms(med[1])))
	return nil
}

// webContainer returns the id of the site's running or stopped web
// container ("" if none): compose v2 and 1.29 name it differently
// (site-web-1, site_web_1), the labels are the same.
func webContainer(ctx context.Context, site string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+site, "--filter", "label=com.docker.compose.service=web").Output()
	if err != nil {
		return "", fmt.Errorf("docker ps: %w", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0], nil
}

// floorArgs turns the container darse made into `docker run -d` arguments
// for the same container without compose: image, command, user, root file
// system, tmpfs, capabilities, security options, mounts and limits.
func floorArgs(ctx context.Context, id, name string) ([]string, error) {
	if id == "" {
		return nil, fmt.Errorf("floor: the site has no web container")
	}
	out, err := exec.CommandContext(ctx, "docker", "inspect", "--format", "{{json .}}", id).Output()
	if err != nil {
		return nil, fmt.Errorf("docker inspect %s: %w", id, err)
	}
	var c struct {
		Config struct {
			Image      string
			User       string
			Cmd        []string
			Entrypoint []string
		}
		HostConfig struct {
			ReadonlyRootfs bool
			Tmpfs          map[string]string
			CapDrop        []string
			SecurityOpt    []string
			Memory         int64
			NanoCpus       int64
			PidsLimit      *int64
		}
		Mounts []struct {
			Type, Source, Destination string
			RW                        bool
		}
	}
	if err := json.Unmarshal(out, &c); err != nil {
		return nil, fmt.Errorf("docker inspect %s: %w", id, err)
	}
	args := []string{"run", "-d", "--name", name}
	if c.Config.User != "" {
		args = append(args, "--user", c.Config.User)
	}
	if c.HostConfig.ReadonlyRootfs {
		args = append(args, "--read-only")
	}
	for dst, opts := range c.HostConfig.Tmpfs {
		args = append(args, "--tmpfs", strings.TrimSuffix(dst+":"+opts, ":"))
	}
	for _, cap := range c.HostConfig.CapDrop {
		args = append(args, "--cap-drop", cap)
	}
	for _, so := range c.HostConfig.SecurityOpt {
		args = append(args, "--security-opt", so)
	}
	if c.HostConfig.Memory > 0 {
		args = append(args, "--memory", strconv.FormatInt(c.HostConfig.Memory, 10))
	}
	if c.HostConfig.NanoCpus > 0 {
		args = append(args, "--cpus", strconv.FormatFloat(float64(c.HostConfig.NanoCpus)/1e9, 'f', -1, 64))
	}
	if p := c.HostConfig.PidsLimit; p != nil && *p > 0 {
		args = append(args, "--pids-limit", strconv.FormatInt(*p, 10))
	}
	for _, m := range c.Mounts {
		if m.Type != "bind" {
			continue // anonymous volumes come with the image
		}
		v := m.Source + ":" + m.Destination
		if !m.RW {
			v += ":ro"
		}
		args = append(args, "-v", v)
	}
	if len(c.Config.Entrypoint) > 0 {
		args = append(args, "--entrypoint", c.Config.Entrypoint[0])
	}
	args = append(args, c.Config.Image)
	if len(c.Config.Entrypoint) > 1 {
		args = append(args, c.Config.Entrypoint[1:]...)
	}
	return append(args, c.Config.Cmd...), nil
}
