package main

// End-to-end tests of the darse CLI against the real Docker engine, with
// the locally built images, and Debian's docker-compose acting on the same
// folders as an operator would. Traffic to containers goes over their own
// loopback (we join their network namespace), never to bridge addresses.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/netns"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/testenv"
)

var darseBin string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if !testing.Short() {
			dir, err := os.MkdirTemp("", "darse-bin")
			if err != nil {
				panic(err)
			}
			defer os.RemoveAll(dir)
			darseBin = filepath.Join(dir, "darse")
			for pkg, out := range map[string]string{".": darseBin, "../darse-fw": filepath.Join(dir, "darse-fw")} {
				cmd := exec.Command("go", "build", "-o", out, pkg)
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
				if b, err := cmd.CombinedOutput(); err != nil {
					fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, b)
					return 1
				}
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

func needEngine(t *testing.T, images ...string) {
	t.Helper()
	testenv.NeedEngine(t, images...)
}

type env struct {
	t   *testing.T
	srv string
}

func newEnv(t *testing.T) *env {
	return newEnvWith(t, "domain: test.example.org\n")
}

// newEnvWith makes a /srv root whose conf/darse.yml is config.
func newEnvWith(t *testing.T, config string) *env {
	srv := t.TempDir()
	if err := os.MkdirAll(filepath.Join(srv, "conf"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srv, "conf", "darse.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv}
}

// run runs darse and returns its stdout, stderr and exit code.
func (e *env) run(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(darseBin, args...)
	cmd.Env = append(os.Environ(), "DARSE_SRV="+e.srv)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("darse %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (e *env) ok(args ...string) string {
	e.t.Helper()
	out, errs, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("darse %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (e *env) status(name string) hosting.Status {
	e.t.Helper()
	var s hosting.Status
	if err := json.Unmarshal([]byte(e.ok("site", "status", name, "--json")), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) compose(name string, args ...string) string {
	e.t.Helper()
	cmd := exec.Command("docker-compose", args...)
	cmd.Dir = filepath.Join(e.srv, "users", name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("docker-compose %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// siteName is unique per test run: compose project names are global to the engine.
func siteName(base string) string {
	return fmt.Sprintf("%s-%d", base, os.Getpid())
}

func (e *env) cleanup(name string) {
	e.t.Cleanup(func() { e.run("site", "rm", name, "--purge", "--yes") })
}

func pid(t *testing.T, container string) int {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Pid}}", container).Output()
	if err != nil {
		t.Fatalf("inspect %s: %v", container, err)
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	if p == 0 {
		t.Fatalf("container %s is not running", container)
	}
	return p
}

// get fetches path from the container's port 8080 on its own loopback,
// retrying until it answers want or the deadline passes.
func get(t *testing.T, container, path string, want int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body, err := netns.Get(pid(t, container), "http://127.0.0.1:8080"+path, "")
		if err == nil && code == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s on %s: code %d, err %v, body %q", path, container, code, err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestStaticSiteLifecycle(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm")
	e := newEnv(t)
	name := siteName("blog")
	e.cleanup(name)
	dir := filepath.Join(e.srv, "users", name)
	web := name + "_web_1"

	out := e.ok("site", "create", name, "--template", "static")
	if !strings.Contains(out, name+".test.example.org") {
		t.Errorf("create output %q does not name the default domain", out)
	}

	// The site serves data/index.html, as edited by its owner.
	page := fmt.Sprintf("<h1>hello from %s</h1>\n", name)
	if err := os.WriteFile(filepath.Join(dir, "data", "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	if body := get(t, web, "/", 200); body != page {
		t.Fatalf("served %q, want %q", body, page)
	}

	// The name is in .env and nowhere in the publishable docker-compose.yml.
	env, _ := os.ReadFile(filepath.Join(dir, ".env"))
	compose, _ := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if !strings.Contains(string(env), name) || strings.Contains(string(compose), name) {
		t.Errorf("site name: in .env %v, in docker-compose.yml %v", strings.Contains(string(env), name), strings.Contains(string(compose), name))
	}

	s := e.status(name)
	if s.State != hosting.StateRunning || len(s.Services) != 1 || service(t, s, "web").ContainerID == "" || len(s.Drift) != 0 {
		t.Fatalf("status = %+v", s)
	}
	if a := service(t, s, "web").Addresses; len(a) == 0 || a[0].IPv4 == "" {
		t.Errorf("status has no address: %+v", a)
	}

	lsIs(t, e, name, hosting.StateRunning, "none")

	// docker-compose sees the container darse created.
	if ps := e.compose(name, "ps"); !strings.Contains(ps, web) || !strings.Contains(ps, "Up") {
		t.Fatalf("docker-compose ps does not list %s Up:\n%s", web, ps)
	}

	// Up twice is a no-op.
	if out := e.ok("site", "up", name); !strings.Contains(out, "up to date") {
		t.Errorf("second up did something: %s", out)
	}

	// docker-compose down, then darse site up, brings it back.
	e.compose(name, "down")
	if s := e.status(name); s.State != hosting.StateStopped || service(t, s, "web").State != "missing" {
		t.Fatalf("after docker-compose down: %+v", s)
	}
	lsIs(t, e, name, hosting.StateStopped, "none")
	e.ok("site", "up", name)
	get(t, web, "/", 200)

	// Killed from outside: the next up starts it again.
	exec.Command("docker", "kill", web).Run()
	if s := e.status(name); service(t, s, "web").State != "exited" {
		t.Fatalf("after docker kill: %+v", service(t, s, "web"))
	}
	if out := e.ok("site", "up", name); !strings.Contains(out, "StartContainer") {
		t.Errorf("up after kill: %s", out)
	}
	get(t, web, "/", 200)

	// Stop and restart.
	e.ok("site", "stop", name)
	if s := e.status(name); s.State != hosting.StateStopped {
		t.Fatalf("after stop: %+v", s)
	}
	// A file edited by hand shows in site ls.
	conf := filepath.Join(dir, "docker-compose.override.yml")
	b, _ := os.ReadFile(conf)
	os.WriteFile(conf, append(b, []byte("# edited\n")...), 0o644)
	lsIs(t, e, name, hosting.StateStopped, "edited by hand: docker-compose.override.yml")
	os.WriteFile(conf, b, 0o644)
	e.ok("site", "restart", name)
	get(t, web, "/", 200)

	// Brought up by an operator with docker-compose: darse reports it.
	e.compose(name, "down")
	e.compose(name, "up", "-d")
	if s := e.status(name); s.State != hosting.StateRunning {
		t.Fatalf("after docker-compose up -d: %+v", s)
	}

	// rm keeps data/, removes containers and rendered files.
	e.ok("site", "rm", name)
	if _, err := os.Stat(filepath.Join(dir, "data", "index.html")); err != nil {
		t.Errorf("rm lost data/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "docker-compose.yml")); !os.IsNotExist(err) {
		t.Errorf("rm left docker-compose.yml: %v", err)
	}
	if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+name).Output(); len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("rm left containers: %s", out)
	}
	// The kept data/ is adopted by a new site of the same name.
	e.ok("site", "create", name, "--template", "static")
	if body := get(t, web, "/", 200); body != page {
		t.Errorf("re-created site serves %q, want the kept page", body)
	}
	e.ok("site", "rm", name, "--purge", "--yes")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("rm --purge left the folder: %v", err)
	}
}

// lsIs fails unless site ls shows name in state with drift (one listing
// of the engine for every site: hosting.List).
func lsIs(t *testing.T, e *env, name, state, drift string) {
	t.Helper()
	for _, line := range strings.Split(e.ok("site", "ls"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[0] == name {
			if f[3] != state || strings.Join(f[5:], " ") != drift {
				t.Fatalf("site ls: %q, want state %s and drift %q", line, state, drift)
			}
			return
		}
	}
	t.Fatalf("site ls does not list %s", name)
}

func TestPHPSiteAndEnvChange(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/php-fpm:8.2-bookworm")
	e := newEnv(t)
	name := siteName("shop")
	e.cleanup(name)
	dir := filepath.Join(e.srv, "users", name)
	web, php := name+"_web_1", name+"_php_1"

	e.ok("site", "create", name, "--template", "php", "--set", "PHP_MEMORY_LIMIT=64M")
	if err := os.WriteFile(filepath.Join(dir, "data", "index.php"), []byte("<?php echo 6*7;"), 0o644); err != nil {
		t.Fatal(err)
	}
	if body := get(t, web, "/", 200); body != "42" {
		t.Fatalf("index.php served %q, want 42", body)
	}
	before := e.status(name)

	// Changing a value in .env recreates only the service it reaches.
	envPath := filepath.Join(dir, ".env")
	b, _ := os.ReadFile(envPath)
	if !bytes.Contains(b, []byte("PHP_MEMORY_LIMIT=64M")) {
		t.Fatalf(".env lacks the parameter:\n%s", b)
	}
	os.WriteFile(envPath, bytes.Replace(b, []byte("PHP_MEMORY_LIMIT=64M"), []byte("PHP_MEMORY_LIMIT=96M"), 1), 0o644)
	out := e.ok("site", "up", name)
	if !strings.Contains(out, "CreateContainer "+php) || strings.Contains(out, web) {
		t.Fatalf("up after .env change:\n%s", out)
	}
	after := e.status(name)
	id := func(s hosting.Status, svc string) string {
		for _, ss := range s.Services {
			if ss.Service == svc {
				return ss.ContainerID
			}
		}
		return ""
	}
	if id(before, "web") != id(after, "web") || id(before, "php") == id(after, "php") {
		t.Errorf("container ids: web %s -> %s, php %s -> %s", id(before, "web"), id(after, "web"), id(before, "php"), id(after, "php"))
	}
	if len(after.Drift) != 1 || after.Drift[0] != ".env" {
		t.Errorf("drift = %v, want [.env]", after.Drift)
	}
	if body := get(t, web, "/", 200); body != "42" {
		t.Fatalf("after recreate served %q", body)
	}
	got, _ := exec.Command("docker", "exec", php, "printenv", "PHP_MEMORY_LIMIT").Output()
	if strings.TrimSpace(string(got)) != "96M" {
		t.Errorf("php sees PHP_MEMORY_LIMIT=%q", got)
	}

	// Rendering again never silently overwrites the hand edit...
	if _, errs, code := e.run("site", "render", name); code == 0 || !strings.Contains(errs, "edited by hand (.env)") {
		t.Errorf("render over drift: exit %d, %q", code, errs)
	}
	// ...unless forced: the stored value comes back, php is recreated.
	out = e.ok("site", "render", name, "--force")
	if !strings.Contains(out, "rendered .env") || !strings.Contains(out, "CreateContainer "+php) {
		t.Errorf("forced render:\n%s", out)
	}
	if s := e.status(name); len(s.Drift) != 0 {
		t.Errorf("drift after forced render: %v", s.Drift)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	needEngine(t)
	e := newEnv(t)
	name := siteName("dup")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"site", "create", "Bad;Name", "--template", "static"}, `site name "Bad;Name": must be 1-63 lowercase`},
		{[]string{"site", "create", "www", "--template", "static"}, `site name "www": is reserved`},
		{[]string{"site", "create", name, "--template", "nope"}, `template "nope": unknown template`},
		{[]string{"site", "create", name, "--template", "static", "--domain", "*.example.org"}, `domain "*.example.org"`},
		{[]string{"site", "create", name, "--template", "php", "--set", "PHP_MEMORY_LIMIT=lots"}, `parameter PHP_MEMORY_LIMIT "lots"`},
		{[]string{"site", "create", name, "--template", "php", "--set", "NOPE=1"}, `parameter "NOPE": template php has no such parameter`},
		{[]string{"site", "create", name}, `--template "": is required`},
		{[]string{"site", "up", name}, `no such site`},
	}
	for _, c := range cases {
		out, errs, code := e.run(c.args...)
		if code == 0 || !strings.Contains(errs, c.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("darse %s: exit %d, stderr %q, want one line with %q (stdout %q)", strings.Join(c.args, " "), code, errs, c.want, out)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(e.srv, "users"))
	if len(entries) != 0 {
		t.Errorf("bad input left folders: %v", entries)
	}
	// A duplicate name is refused and the first site is untouched.
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "static")
	before, _ := os.ReadFile(filepath.Join(e.srv, "users", name, ".env"))
	if _, errs, code := e.run("site", "create", name, "--template", "php"); code == 0 || !strings.Contains(errs, "already taken") {
		t.Errorf("duplicate: exit %d, %q", code, errs)
	}
	after, _ := os.ReadFile(filepath.Join(e.srv, "users", name, ".env"))
	if !bytes.Equal(before, after) {
		t.Error("duplicate create changed the first site's .env")
	}
	// Names under the platform domain are given by site name; a custom
	// domain another site answers at is taken.
	other := siteName("other")
	if _, errs, code := e.run("site", "create", other, "--template", "static", "--domain", name+".test.example.org"); code == 0 || !strings.Contains(errs, "is under the platform domain") {
		t.Errorf("domain under the platform's: exit %d, %q", code, errs)
	}
	custom := name + ".example.net"
	e.ok("site", "domain", "add", name, custom)
	if _, errs, code := e.run("site", "create", other, "--template", "static", "--domain", custom); code == 0 || !strings.Contains(errs, "already used by site "+name) {
		t.Errorf("duplicate domain: exit %d, %q", code, errs)
	}
}

// opsOn returns the operations of one site, newest first.
func (e *env) opsOn(name string) []store.Operation {
	e.t.Helper()
	var printed []opJSON
	if err := json.Unmarshal([]byte(e.ok("op", "ls", "--site", name, "--json")), &printed); err != nil {
		e.t.Fatal(err)
	}
	list := []store.Operation{}
	for _, p := range printed {
		op := store.Operation{ID: p.ID, Kind: p.Kind, Site: p.Site, Owner: p.Owner, User: p.User, Args: p.Args,
			State: p.State, Error: p.Error, CreatedAt: p.CreatedAt}
		if p.StartedAt != nil {
			op.StartedAt = *p.StartedAt
		}
		if p.FinishedAt != nil {
			op.FinishedAt = *p.FinishedAt
		}
		list = append(list, op)
	}
	return list
}

// TestCLIOperations: the CLI's actions on sites are operations, recorded
// as the panel's are, and bad input records none.
func TestCLIOperations(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm")
	e := newEnv(t)
	name := siteName("cliops")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "static")
	if out := e.ok("site", "stop", name); !strings.Contains(out, "StopContainer "+name+"_web_1") {
		t.Errorf("stop printed no plan: %q", out)
	}
	if _, errs, code := e.run("site", "create", name, "--template", "static"); code == 0 || !strings.Contains(errs, "already taken") {
		t.Errorf("duplicate create: exit %d, %q", code, errs)
	}
	if _, errs, code := e.run("site", "restart", name+"-nope"); code == 0 || !strings.Contains(errs, "no such site") {
		t.Errorf("restart of a missing site: exit %d, %q", code, errs)
	}
	list := e.opsOn(name)
	var got []string
	for _, op := range list {
		got = append(got, op.Kind+" "+op.State)
		if !strings.HasPrefix(op.User, "cli:") || op.StartedAt.IsZero() || op.FinishedAt.IsZero() || op.Error != "" {
			t.Errorf("operation %+v", op)
		}
	}
	if strings.Join(got, ",") != "stop done,create done" {
		t.Fatalf("operations on %s: %v, want stop and create, done", name, got)
	}
	if len(e.opsOn(name+"-nope")) != 0 {
		t.Error("an operation was recorded for a missing site")
	}

	// A failure is the operation's, and the exit status says so.
	path := filepath.Join(e.srv, "users", name, "docker-compose.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	refused := bytes.Replace(b, []byte("\n  web:\n"), []byte("\n  web:\n    privileged: true\n"), 1)
	if bytes.Equal(refused, b) {
		t.Fatalf("no web service in %s", path)
	}
	if err := os.WriteFile(path, refused, 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := e.run("site", "up", name)
	if code == 0 || !strings.Contains(errs, "privileged") {
		t.Fatalf("up of a refused folder: exit %d, %q", code, errs)
	}
	if op := e.opsOn(name)[0]; op.Kind != "up" || op.State != store.OpFailed || !strings.Contains(op.Error, "privileged") {
		t.Fatalf("failed up recorded as %+v", op)
	}
}

// TestCLIAlongsidePanel: a panel starting while a CLI run carries out an
// operation leaves that operation to the CLI.
func TestCLIAlongsidePanel(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm")
	e := newEnv(t)
	name := siteName("beside")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "static")
	// A stop that takes seconds: nginx ignores SIGUSR1 (it reopens its
	// logs), so the engine waits out the grace period.
	path := filepath.Join(e.srv, "users", name, "docker-compose.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	slow := bytes.Replace(b, []byte("\n  web:\n"), []byte("\n  web:\n    stop_signal: SIGUSR1\n    stop_grace_period: 4s\n"), 1)
	if bytes.Equal(slow, b) {
		t.Fatalf("no web service in %s", path)
	}
	if err := os.WriteFile(path, slow, 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok("site", "up", name)

	cli := exec.Command(darseBin, "site", "stop", name)
	cli.Env = append(os.Environ(), "DARSE_SRV="+e.srv)
	var out testenv.Buffer
	cli.Stdout, cli.Stderr = &out, &out
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop := e.waitRunning(name, "stop")
	p := e.startPanel()
	if err := cli.Wait(); err != nil {
		t.Fatalf("darse site stop beside a starting panel: %v\n%s\npanel:\n%s", err, &out, p.log)
	}
	took := time.Since(start)
	p.stop()
	log := p.log.String()
	if strings.Contains(log, "settling it") {
		t.Fatalf("the panel settled the CLI's operation:\n%s", log)
	}
	if !strings.Contains(log, "running in another process") {
		t.Fatalf("the panel did not see the CLI's stop running (it took %v):\n%s", took, log)
	}
	if !strings.Contains(out.String(), "StopContainer "+name+"_web_1") {
		t.Errorf("the CLI did not print its plan: %q", &out)
	}
	if op := e.opsOn(name)[0]; op.ID != stop.ID || op.State != store.OpDone || op.Error != "" {
		t.Fatalf("stop = %+v", op)
	}
	if s := e.status(name); s.State != hosting.StateStopped {
		t.Fatalf("site is %s", s.State)
	}
}

// waitRunning waits until the newest operation on the site is of this
// kind and no longer queued.
func (e *env) waitRunning(name, kind string) store.Operation {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if list := e.opsOn(name); len(list) > 0 && list[0].Kind == kind && list[0].State != store.OpQueued {
			return list[0]
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s operation on %s started", kind, name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// service is the status of one service of a site.
func service(t *testing.T, s hosting.Status, name string) hosting.ServiceStatus {
	t.Helper()
	for _, svc := range s.Services {
		if svc.Service == name {
			return svc
		}
	}
	t.Fatalf("site %s has no service %s: %+v", s.Name, name, s.Services)
	return hosting.ServiceStatus{}
}

// rowAndFolderAgree fails the test unless the site has both a row in the
// store and a rendered folder, or neither; it reports which it has.
func (e *env) rowAndFolderAgree(name string) (stored, folder bool) {
	e.t.Helper()
	_, _, code := e.run("site", "status", name)
	stored = code == 0
	dir := filepath.Join(e.srv, "users", name)
	_, statErr := os.Stat(dir)
	folder = statErr == nil
	_, composeErr := os.Stat(filepath.Join(dir, "docker-compose.yml"))
	if stored != folder || (stored && composeErr != nil) {
		e.t.Fatalf("store and <srv>/users disagree after recovery: row %v, folder %v, docker-compose.yml %v", stored, folder, composeErr)
	}
	return stored, folder
}
