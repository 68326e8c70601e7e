package main

// SIGKILL in the middle of every kind of operation, in the CLI and in the
// panel, driven from the operations registry: a kind without a case here
// fails the test, so a new kind is covered as soon as it is registered.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/backup/backuptest"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/store"
)

// killCase is how to set a site up for one kind of operation, the
// operation itself, and what holds once it was carried out.
type killCase struct {
	create bool // the operation makes the site: no setup
	// platform: the operation acts on no site (recorded under ""); setup
	// is given a site to make something to act on.
	platform bool
	setup    func(e *env, name string) ops.Kind
	// done checks the site after the operation ended done.
	done func(e *env, name string)
	// env makes the subtest's environment (nil: newEnv).
	env func(t *testing.T) *env
}

func (c killCase) newEnv(t *testing.T) *env {
	if c.env != nil {
		return c.env(t)
	}
	return newEnv(t)
}

func running(e *env, name string) {
	e.t.Helper()
	if s := e.status(name); s.State != hosting.StateRunning {
		e.t.Fatalf("site %s is %s, want running: %+v", name, s.State, s.Services)
	}
}

func killCases() map[string]killCase {
	created := func(e *env, name string) {
		e.t.Helper()
		e.ok("site", "create", name, "--template", "static")
	}
	backedUp := func(e *env, name string) {
		e.t.Helper()
		e.useRepository(backuptest.Local(e.t))
		created(e, name)
		if err := os.WriteFile(filepath.Join(e.srv, "users", name, "data", "index.html"), []byte("backed up\n"), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return map[string]killCase{
		"backup": {setup: func(e *env, name string) ops.Kind { backedUp(e, name); return new(ops.Backup) }, done: func(e *env, name string) {
			e.t.Helper()
			running(e, name)
			list := e.backups(name)
			if len(list) != 1 || !list[0].Complete() {
				e.t.Fatalf("backups after an interrupted backup: %+v, want one complete", list)
			}
		}},
		"restore": {setup: func(e *env, name string) ops.Kind {
			backedUp(e, name)
			e.ok("backup", "run", name)
			if err := os.WriteFile(filepath.Join(e.srv, "users", name, "data", "index.html"), []byte("changed since\n"), 0o644); err != nil {
				e.t.Fatal(err)
			}
			return new(ops.Restore)
		}, done: func(e *env, name string) {
			e.t.Helper()
			running(e, name)
			if b, err := os.ReadFile(filepath.Join(e.srv, "users", name, "data", "index.html")); err != nil || string(b) != "backed up\n" {
				e.t.Fatalf("data/index.html after the restore: %q, %v", b, err)
			}
		}},
		"backup-check": {platform: true, setup: func(e *env, name string) ops.Kind {
			backedUp(e, name)
			e.ok("backup", "run", name)
			return &ops.BackupCheck{Prune: true} // killed in its prune too: its lock must not hold the next run
		}, done: func(e *env, name string) {}},
		"drill": {setup: func(e *env, name string) ops.Kind {
			backedUp(e, name)
			e.ok("backup", "run", name)
			return new(ops.Drill)
		}, done: func(e *env, name string) {
			e.t.Helper()
			running(e, name)
			noDrillLeft(e)
		}},
		"rollout": rolloutKillCase(),
		"create":  {create: true, setup: func(e *env, name string) ops.Kind { return &ops.Create{Template: "static"} }, done: running},
		"up": {setup: func(e *env, name string) ops.Kind {
			created(e, name)
			e.ok("site", "stop", name)
			return new(ops.Up)
		}, done: running},
		"stop": {setup: func(e *env, name string) ops.Kind { created(e, name); return new(ops.Stop) }, done: func(e *env, name string) {
			e.t.Helper()
			if s := e.status(name); s.State != hosting.StateStopped {
				e.t.Fatalf("stopped site is %s", s.State)
			}
		}},
		"restart": {setup: func(e *env, name string) ops.Kind { created(e, name); return new(ops.Restart) }, done: running},
		"remove": {setup: func(e *env, name string) ops.Kind { created(e, name); return &ops.Remove{Purge: true} }, done: func(e *env, name string) {
			e.t.Helper()
			if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+name).Output(); len(bytes.TrimSpace(out)) != 0 {
				e.t.Fatalf("removed site left containers: %s", out)
			}
		}},
		"content": {setup: func(e *env, name string) ops.Kind {
			created(e, name)
			return &ops.Content{Archive: e.upload(name, "index.html", "uploaded\n"), Filename: "site.tar.gz", Mode: "replace"}
		}, done: func(e *env, name string) {
			e.t.Helper()
			running(e, name)
			if b, err := os.ReadFile(filepath.Join(e.srv, "users", name, "data", "index.html")); err != nil || string(b) != "uploaded\n" {
				e.t.Fatalf("data/index.html after the upload: %q, %v", b, err)
			}
		}},
		"forward": {setup: func(e *env, name string) ops.Kind {
			created(e, name)
			return &ops.Forward{Port: 8080, Proto: "tcp"}
		}, done: func(e *env, name string) {
			e.t.Helper()
			running(e, name)
			if hp := e.forwardOf(name, 8080); hp == 0 {
				e.t.Fatal("forward not stored")
			} else if b, _ := os.ReadFile(filepath.Join(e.srv, "users", name, "docker-compose.override.yml")); !strings.Contains(string(b), "darse.expose.fwd"+strconv.Itoa(hp)+".hostport") {
				e.t.Fatalf("forward %d not rendered:\n%s", hp, b)
			}
		}},
		"unforward": {setup: func(e *env, name string) ops.Kind {
			created(e, name)
			e.ok("forward", "add", name, "8080")
			return &ops.Unforward{HostPort: e.forwardOf(name, 8080)}
		}, done: func(e *env, name string) {
			e.t.Helper()
			running(e, name)
			if hp := e.forwardOf(name, 8080); hp != 0 {
				e.t.Fatalf("forward %d still stored", hp)
			}
		}},
	}
}

// upload writes a .tar.gz holding one file where the panel keeps uploads.
func (e *env) upload(name, file, body string) string {
	e.t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		e.t.Fatal(err)
	}
	io.WriteString(tw, body)
	tw.Close()
	zw.Close()
	dir := filepath.Join(e.srv, "conf", "uploads")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".upload")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// forwardOf is the host port forwarding the site's container port, or 0.
func (e *env) forwardOf(name string, port int) int {
	e.t.Helper()
	for _, line := range strings.Split(e.ok("forward", "ls", name), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == name && f[3] == strconv.Itoa(port) {
			hp, _ := strconv.Atoi(f[1])
			return hp
		}
	}
	return 0
}

// record submits the operation as the panel or the CLI would (its kind's
// check first), and leaves it queued.
func (e *env) record(name string, k ops.Kind) int64 {
	e.t.Helper()
	a := &app{srv: e.srv, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer a.close()
	ctx := context.Background()
	o, err := a.operations(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	id, err := o.runner.Submit(ctx, ops.Request{Site: name, Owner: "admin", User: "test", Quota: -1}, k)
	if err != nil {
		e.t.Fatalf("record %s %s: %v", k.Name(), name, err)
	}
	return id
}

// opByID reads one operation.
func (e *env) opByID(name string, id int64) store.Operation {
	e.t.Helper()
	for _, op := range e.opsOn(name) {
		if op.ID == id {
			return op
		}
	}
	e.t.Fatalf("operation %d on %s not found", id, name)
	return store.Operation{}
}

// waitBegun waits until the operation left the queue.
func (e *env) waitBegun(name string, id int64) store.Operation {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if op := e.opByID(name, id); op.State != store.OpQueued {
			return op
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("operation %d never began", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settled checks what must hold after an interrupted operation was
// settled by the next process: it ended (done, or for a creation failed
// as undone), the store and the folder agree, and a done one left the
// site as its kind says.
func (e *env) settled(kind, name string, id int64, c killCase, delay time.Duration) {
	e.t.Helper()
	// A panel running on the same store (the rollout case's front door
	// has one) may have taken the operation over first: `op recover` then
	// leaves it to that process, which finishes it.
	op := e.opByID(name, id)
	for deadline := time.Now().Add(2 * time.Minute); op.State == store.OpRunning && time.Now().Before(deadline); op = e.opByID(name, id) {
		time.Sleep(200 * time.Millisecond)
	}
	if c.platform {
		if op.State != store.OpDone {
			e.t.Fatalf("interrupted %s is %s %q after it was settled", kind, op.State, op.Error)
		}
		return
	}
	stored, folder := e.rowAndFolderAgree(name)
	e.t.Logf("%s killed %v after it began: %s %q; row %v, folder %v", kind, delay, op.State, op.Error, stored, folder)
	switch {
	case op.State == store.OpDone:
	case op.State == store.OpFailed && c.create && !stored:
		if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+name).Output(); len(bytes.TrimSpace(out)) != 0 {
			e.t.Fatalf("undone creation left containers: %s", out)
		}
		return
	default:
		e.t.Fatalf("interrupted %s is %s %q after it was settled", kind, op.State, op.Error)
	}
	if wantStored := kind != "remove"; stored != wantStored {
		e.t.Fatalf("%s done but site stored = %v", kind, stored)
	}
	c.done(e, name)
}

// delays are the points after its start at which an operation is cut.
func delays(kind string) []time.Duration {
	if kind == "create" {
		return []time.Duration{0, 150 * time.Millisecond, 400 * time.Millisecond, 900 * time.Millisecond}
	}
	if kind == "rollout" { // beside, routed, paused, drained, removed
		return []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond, 3500 * time.Millisecond}
	}
	return []time.Duration{0, 250 * time.Millisecond}
}

func TestKilledDuringEveryKind(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/sftp:bookworm")
	cases := killCases()
	for _, kind := range ops.Names() {
		if _, ok := cases[kind]; !ok {
			t.Errorf("operation kind %q has no SIGKILL case in kill_test.go", kind)
		}
	}
	for _, kind := range ops.Names() {
		c, ok := cases[kind]
		if !ok {
			continue
		}
		t.Run("cli/"+kind, func(t *testing.T) {
			e := c.newEnv(t)
			e.ok("op", "ls") // the store exists before two processes open it at once
			for i, delay := range delays(kind) {
				name := siteName(fmt.Sprintf("kc%d%s", i, kind[:2]))
				e.cleanup(name)
				k := c.setup(e, name)
				if c.platform {
					name = ""
				}
				id := e.record(name, k)
				cli := exec.Command(darseBin, "op", "run", strconv.FormatInt(id, 10))
				cli.Env = append(os.Environ(), "DARSE_SRV="+e.srv)
				if err := cli.Start(); err != nil {
					t.Fatal(err)
				}
				e.waitBegun(name, id)
				time.Sleep(delay)
				cli.Process.Kill() // SIGKILL
				cli.Wait()
				e.ok("op", "recover") // settles it once its heartbeat is stale
				e.settled(kind, name, id, c, delay)
			}
		})
		t.Run("panel/"+kind, func(t *testing.T) {
			e := c.newEnv(t)
			e.ok("op", "ls")
			delay := delays(kind)[1]
			name := siteName("kp" + kind[:2])
			e.cleanup(name)
			k := c.setup(e, name)
			if c.platform {
				name = ""
			}
			id := e.record(name, k)
			p := e.startPanel() // its workers take the queued operation
			e.waitBegun(name, id)
			time.Sleep(delay)
			p.kill()
			p = e.startPanel() // settles it before anything else
			deadline := time.Now().Add(60 * time.Second)
			for op := e.opByID(name, id); op.State == store.OpQueued || op.State == store.OpRunning; op = e.opByID(name, id) {
				if time.Now().After(deadline) {
					t.Fatalf("operation %d still %s after the panel restarted\n%s", id, op.State, p.log)
				}
				time.Sleep(100 * time.Millisecond)
			}
			p.stop()
			e.settled(kind, name, id, c, delay)
		})
	}
}
