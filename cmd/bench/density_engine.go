package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The density suite restarts the engine it runs on, which a bench may do
// only to an engine it started itself: it starts one in a network
// namespace of its own (as scripts/test-engine.sh starts the test suite's),
// with live-restore, and runs itself again inside that namespace.
const (
	// densityEngineEnv is set for the re-executed suite: the run folder of
	// the engine it starts.
	densityEngineEnv = "DARSE_BENCH_DENSITY_RUN"
	// densityImagesEnv names the engine the platform's images are copied from.
	densityImagesEnv = "DARSE_BENCH_DENSITY_IMAGES_FROM"
	// densityRoot is the engine's data-root, kept between runs so that the
	// images are copied once; a lock in it keeps two runs apart.
	densityRoot = "/var/lib/darse-bench"
)

// densityImages are the images the static and php templates and the front
// door run (the darse image is built by platform up from bin/).
var densityImages = []string{"darse/nginx:bookworm", "darse/php-fpm:8.2-bookworm", "traefik:v3.6"}

// densityInNamespace makes a network namespace, runs this bench's density
// suite again inside it (where it starts its engine), and removes the
// namespace after.
func densityInNamespace(ctx context.Context) error {
	ns := fmt.Sprintf("darse-bench%d", os.Getpid())
	run := filepath.Join("/run", ns)
	for _, args := range [][]string{{"ip", "netns", "add", ns}, {"ip", "-n", ns, "link", "set", "lo", "up"},
		{"nsenter", "--net=/run/netns/" + ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"}} {
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			exec.Command("ip", "netns", "delete", ns).Run()
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	defer exec.Command("ip", "netns", "delete", ns).Run()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	from := os.Getenv("DOCKER_HOST")
	if from == "" {
		from = "unix:///var/run/docker.sock"
	}
	// The same flags, and only this suite.
	args := append([]string{"--net=/run/netns/" + ns, "--", self}, os.Args[1:len(os.Args)-flag.NArg()]...)
	args = append(args, "density")
	cmd := exec.Command("nsenter", args...)
	cmd.Env = append(os.Environ(), densityEngineEnv+"="+run, densityImagesEnv+"="+from)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// An interrupt reaches the child too; this process waits for it to
	// clean up, then removes the namespace.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("density suite in namespace %s: %w", ns, err)
	}
	return nil
}

// benchEngine is the dockerd the density suite started, in the network
// namespace it runs in.
type benchEngine struct {
	run    string // socket, pidfile, exec-root, daemon.json, log
	host   string // DOCKER_HOST for it
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	lock   *os.File
	log    *os.File
}

// startBenchEngine starts the suite's engine (live-restore on) and gives it
// the images it needs from the engine named by densityImagesEnv.
func startBenchEngine(ctx context.Context, run string) (*benchEngine, error) {
	if err := os.MkdirAll(run, 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(densityRoot, 0o700); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(densityRoot, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%s is locked: another density bench runs its engine", densityRoot)
	}
	e := &benchEngine{run: run, host: "unix://" + filepath.Join(run, "docker.sock"), lock: lock}
	conf := `{"default-address-pools": [{"base": "172.16.0.0/13", "size": 24}], "live-restore": true}` + "\n"
	if err := os.WriteFile(filepath.Join(run, "daemon.json"), []byte(conf), 0o600); err != nil {
		e.close()
		return nil, err
	}
	if e.log, err = os.OpenFile(filepath.Join(run, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		e.close()
		return nil, err
	}
	if err := e.start(ctx); err != nil {
		e.close()
		return nil, err
	}
	// Containers a crashed earlier run left on this engine (nothing else
	// uses it: the lock) would be counted as sites.
	if err := e.wipe(ctx); err != nil {
		e.stop()
		return nil, err
	}
	if err := e.copyImages(ctx, os.Getenv(densityImagesEnv)); err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

// start runs dockerd and waits (up to 10 minutes: with thousands of
// containers it restores each) until it answers.
func (e *benchEngine) start(ctx context.Context) error {
	e.cmd = exec.Command("/usr/sbin/dockerd", "--data-root", densityRoot, "--exec-root", filepath.Join(e.run, "exec"),
		"--pidfile", filepath.Join(e.run, "dockerd.pid"), "-H", e.host, "--config-file", filepath.Join(e.run, "daemon.json"))
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	// Its own process group: an interrupt for the bench does not stop the
	// engine under the clean-up.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	exited := make(chan struct{})
	e.exited = exited
	go func() { e.cmd.Wait(); close(exited) }()
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); {
		if e.docker(ctx, "version", "--format", "{{.Server.Version}}") == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("dockerd exited; see %s", e.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("dockerd did not answer within 10 minutes; see %s", e.log.Name())
}

// terminate stops dockerd (SIGTERM; with live-restore the containers keep
// running) and waits up to 10 minutes for it to exit.
func (e *benchEngine) terminate() error {
	if e.cmd == nil || e.cmd.Process == nil {
		return nil
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop dockerd: %w", err)
	}
	select {
	case <-e.exited:
		return nil
	case <-time.After(10 * time.Minute):
		return fmt.Errorf("dockerd (pid %d) did not stop within 10 minutes", e.cmd.Process.Pid)
	}
}

// restart stops and starts the engine, returning how long each took.
func (e *benchEngine) restart(ctx context.Context) (stop, start time.Duration, err error) {
	t0 := time.Now()
	if err := e.terminate(); err != nil {
		return 0, 0, err
	}
	stop = time.Since(t0)
	t1 := time.Now()
	err = e.start(ctx)
	return stop, time.Since(t1), err
}

// wipe removes every container, network and volume of the engine: it is
// the bench's own (a second run is locked out).
func (e *benchEngine) wipe(ctx context.Context) error {
	out, err := e.output(ctx, "ps", "-aq")
	if err != nil {
		return err
	}
	ids := strings.Fields(out)
	for len(ids) > 0 {
		n := min(len(ids), 100)
		if err := e.docker(ctx, append([]string{"rm", "-f", "-v"}, ids[:n]...)...); err != nil {
			return err
		}
		ids = ids[n:]
	}
	if err := e.docker(ctx, "network", "prune", "-f"); err != nil {
		return err
	}
	return e.docker(ctx, "volume", "prune", "-f")
}

// stop wipes the engine and stops it; its images stay for the next run.
func (e *benchEngine) stop() {
	ctx := context.Background()
	if err := e.wipe(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench density: clean up the engine:", err)
	}
	if err := e.terminate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench density:", err)
	}
	e.close()
	// dockerd leaves its namespace's bind mount (exec/netns/default).
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], e.run+"/") {
				syscall.Unmount(f[4], syscall.MNT_DETACH)
			}
		}
	}
	if err := os.RemoveAll(e.run); err != nil {
		fmt.Fprintln(os.Stderr, "bench density:", err)
	}
}

func (e *benchEngine) close() {
	if e.log != nil {
		e.log.Close()
	}
	e.lock.Close()
}

// copyImages copies each of densityImages the engine lacks (or has under
// another id) from the engine at from.
func (e *benchEngine) copyImages(ctx context.Context, from string) error {
	if from == "" {
		return fmt.Errorf("%s: not set (the engine to copy images from)", densityImagesEnv)
	}
	for _, img := range densityImages {
		src, err := dockerAt(ctx, from, "image", "inspect", "--format", "{{.Id}}", img)
		if err != nil {
			return fmt.Errorf("image %s on %s: %w", img, from, err)
		}
		if have, _ := e.output(ctx, "image", "inspect", "--format", "{{.Id}}", img); have == src {
			continue
		}
		fmt.Printf("  copying %s to the bench's engine\n", img)
		save := exec.CommandContext(ctx, "docker", "save", img)
		save.Env = append(os.Environ(), "DOCKER_HOST="+from)
		load := exec.CommandContext(ctx, "docker", "load", "-q")
		load.Env = append(os.Environ(), "DOCKER_HOST="+e.host)
		r, w := io.Pipe()
		save.Stdout, load.Stdin = w, r
		if err := load.Start(); err != nil {
			return err
		}
		serr := save.Run()
		w.CloseWithError(serr)
		if lerr := load.Wait(); serr != nil || lerr != nil {
			return fmt.Errorf("copy image %s: %w", img, errors.Join(serr, lerr))
		}
	}
	return nil
}

func (e *benchEngine) docker(ctx context.Context, args ...string) error {
	_, err := e.output(ctx, args...)
	return err
}

func (e *benchEngine) output(ctx context.Context, args ...string) (string, error) {
	return dockerAt(ctx, e.host, args...)
}

// dockerAt runs the docker CLI against the engine at host.
func dockerAt(ctx context.Context, host string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+host)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("docker %s: %v: %s", args[0], err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("docker %s: %w", args[0], err)
	}
	return strings.TrimSpace(string(out)), nil
}
