// Package backup backs sites and the platform up to one restic
// repository and restores them: every snapshot is tagged with its site,
// a site's database goes in as a logical dump streamed into restic (no
// temporary file), and retention is applied to one site at a time, so
// that it can never remove another site's snapshots.
//
// restic has no library API (its maintainers name the repository format
// and the command line as its contracts): darse runs the pinned binary.
package backup

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Restic runs the restic binary against one repository.
type Restic struct {
	Binary       string // path of restic (FindRestic)
	Repository   string // any restic repository string
	PasswordFile string
	CacheDir     string // restic's local cache; empty: restic's default
	// RetryLock is how long to wait for another restic's lock (restic's
	// --retry-lock); empty: retryLock.
	RetryLock string
	Log       *slog.Logger
}

// FindRestic returns the restic darse runs: $DARSE_RESTIC, else the one
// installed beside darse (bin/restic), else restic on PATH (the darse
// image's /usr/local/bin).
func FindRestic() (string, error) {
	if p := os.Getenv("DARSE_RESTIC"); p != "" {
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "restic")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("restic")
	if err != nil {
		return "", errors.New("restic not found beside darse nor on PATH: run `darse backup install-restic`")
	}
	return p, nil
}

// Exit codes restic 0.18 documents.
const (
	exitRepoMissing = 10
	exitLocked      = 11
	exitPassword    = 12
)

// Error is a restic command that failed: its exit code and the end of
// what it printed on stderr.
type Error struct {
	Args   []string
	Code   int
	Stderr string
}

func (e *Error) Error() string {
	what := ""
	switch e.Code {
	case exitRepoMissing:
		what = "the repository does not exist: "
	case exitLocked:
		what = "the repository is locked by another restic: "
	case exitPassword:
		what = "wrong repository password: "
	}
	if strings.Contains(e.Stderr, "no space left on device") {
		what += "the repository's disk is full: "
	}
	return fmt.Sprintf("restic %s: %sexit status %d: %s", e.Args[0], what, e.Code, lastLines(e.Stderr, 4))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// retryLock waits this long for another restic's lock (a prune, another
// site's backup holding the repository exclusively) before failing.
const retryLock = "2m"

func (r *Restic) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{args[0], "--retry-lock", cmp.Or(r.RetryLock, retryLock)}, args[1:]...)
	if args[0] == "version" || args[0] == "init" {
		full = args
	}
	cmd := exec.CommandContext(ctx, r.Binary, full...)
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+r.Repository, "RESTIC_PASSWORD_FILE="+r.PasswordFile,
		"RESTIC_PROGRESS_FPS=0.2")
	if r.CacheDir != "" {
		cmd.Env = append(cmd.Env, "RESTIC_CACHE_DIR="+r.CacheDir)
	}
	// restic dies with darse: a killed darse must not leave a restic
	// finishing a snapshot nobody records.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Cancelled, restic is interrupted rather than killed: it removes
	// its lock and keeps no snapshot.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs restic with args, stdin and stdout as given; stderr is kept
// for the error.
func (r *Restic) run(ctx context.Context, stdin io.Reader, stdout io.Writer, args ...string) error {
	cmd := r.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if r.Log != nil {
		r.Log.Debug("restic", "args", strings.Join(args, " "), "took", time.Since(start), "err", err)
	}
	return r.wrap(args, err, stderr.String())
}

func (r *Restic) wrap(args []string, err error, stderr string) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &Error{Args: args, Code: ee.ExitCode(), Stderr: stderr}
	}
	if err != nil {
		return fmt.Errorf("restic %s: %w", args[0], err)
	}
	return nil
}

// runJSON runs restic with --json and decodes its output into v.
func (r *Restic) runJSON(ctx context.Context, v any, args ...string) error {
	var out bytes.Buffer
	if err := r.run(ctx, nil, &out, append(args, "--json")...); err != nil {
		return err
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		return fmt.Errorf("restic %s: output: %w", args[0], err)
	}
	return nil
}

// Init creates the repository unless it exists already.
func (r *Restic) Init(ctx context.Context) error {
	err := r.run(ctx, nil, io.Discard, "cat", "config")
	var re *Error
	if errors.As(err, &re) && re.Code == exitRepoMissing {
		return r.run(ctx, nil, io.Discard, "init")
	}
	return err
}

// Snapshot is one restic snapshot, as `restic snapshots --json` lists it.
type Snapshot struct {
	ID      string    `json:"id"`
	ShortID string    `json:"short_id"`
	Time    time.Time `json:"time"`
	Paths   []string  `json:"paths"`
	Tags    []string  `json:"tags"`
	Summary *struct {
		DataAdded           int64 `json:"data_added"`
		TotalBytesProcessed int64 `json:"total_bytes_processed"`
	} `json:"summary"`
}

// Tag returns the value of the snapshot's tag KEY:VALUE, or "".
func (s Snapshot) Tag(key string) string {
	for _, t := range s.Tags {
		if v, ok := strings.CutPrefix(t, key+":"); ok {
			return v
		}
	}
	return ""
}

// Snapshots lists the snapshots carrying every one of tags.
func (r *Restic) Snapshots(ctx context.Context, tags ...string) ([]Snapshot, error) {
	args := []string{"snapshots"}
	if len(tags) > 0 {
		args = append(args, "--tag", strings.Join(tags, ","))
	}
	var out []Snapshot
	if err := r.runJSON(ctx, &out, args...); err != nil {
		return nil, err
	}
	return out, nil
}

// backupSummary is the last line `restic backup --json` prints.
type backupSummary struct {
	MessageType string `json:"message_type"`
	SnapshotID  string `json:"snapshot_id"`
	DataAdded   int64  `json:"data_added"`
}

// backup runs `restic backup --json ARGS` and returns the new snapshot.
func (r *Restic) backup(ctx context.Context, args ...string) (backupSummary, error) {
	var out bytes.Buffer
	if err := r.run(ctx, nil, &out, append([]string{"backup", "--json", "--quiet"}, args...)...); err != nil {
		return backupSummary{}, err
	}
	return parseSummary(out.String())
}

// forget removes the snapshots ids, nothing else.
func (r *Restic) forget(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return r.run(ctx, nil, io.Discard, append([]string{"forget"}, ids...)...)
}

// interruptNotice is what restic prints on stderr once it took SIGINT.
const interruptNotice = "received, cleaning up"

// noticeWriter keeps what restic prints on stderr and closes seen when
// it said it was interrupted.
type noticeWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	seen chan struct{}
	once sync.Once
}

func (w *noticeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), interruptNotice) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *noticeWriter) interrupted() bool {
	select {
	case <-w.seen:
		return true
	default:
		return false
	}
}

func (w *noticeWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// backupFrom runs `restic backup --stdin ARGS` with dump writing its
// standard input through a pipe, nothing held in memory or on disk. A
// dump that fails (dumpErr) interrupts restic before its input ends, so
// that restic, seeing the end of a cut stream, keeps no snapshot of it.
func (r *Restic) backupFrom(ctx context.Context, dump func(context.Context, io.Writer) error, args ...string) (sum backupSummary, dumpErr, err error) {
	full := append([]string{"backup", "--json", "--quiet", "--stdin"}, args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		return sum, nil, fmt.Errorf("restic backup: %w", err)
	}
	cmd := r.command(ctx, full...)
	var out bytes.Buffer
	stderr := &noticeWriter{seen: make(chan struct{})}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, &out, stderr
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return sum, nil, fmt.Errorf("restic backup: %w", err)
	}
	pr.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	dumpErr = dump(ctx, pw)
	if dumpErr != nil {
		// restic may have failed first (a full disk, a lock), which cut
		// the dump's pipe: then restic's error is the cause.
		var werr error
		select {
		case werr = <-exited:
		case <-time.After(200 * time.Millisecond):
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-stderr.seen:
			case werr = <-exited:
			case <-time.After(10 * time.Second):
			}
		}
		pw.Close()
		if werr != nil && !stderr.interrupted() {
			return sum, nil, errors.Join(r.wrap(full, werr, stderr.String()), fmt.Errorf("the dump stopped: %w", dumpErr))
		}
		return sum, dumpErr, nil
	}
	pw.Close()
	werr := <-exited
	if err := r.wrap(full, werr, stderr.String()); err != nil {
		return sum, nil, err
	}
	sum, err = parseSummary(out.String())
	return sum, nil, err
}

// parseSummary finds the snapshot in what `restic backup --json` printed.
func parseSummary(out string) (backupSummary, error) {
	for _, line := range strings.Split(out, "\n") {
		var s backupSummary
		if json.Unmarshal([]byte(line), &s) == nil && s.MessageType == "summary" && s.SnapshotID != "" {
			return s, nil
		}
	}
	return backupSummary{}, fmt.Errorf("restic backup: no snapshot in its output: %s", lastLines(out, 3))
}

// Check runs `restic check`: the repository's structure, and with
// readData the packs' contents too (each read back and verified).
func (r *Restic) Check(ctx context.Context, readData bool) error {
	args := []string{"check"}
	if readData {
		args = append(args, "--read-data")
	}
	var out bytes.Buffer
	if err := r.run(ctx, nil, &out, args...); err != nil {
		return fmt.Errorf("repository check failed: %w; %s", err, lastLines(out.String(), 4))
	}
	return nil
}

// Prune removes the data no snapshot needs any more (what forgotten
// snapshots alone referred to): `restic prune`, which holds the
// repository's exclusive lock while it runs, so backups wait for it
// (--retry-lock). It repacks at most maxRepack per run and leaves up to
// 5% of unused space, which bounds how long it holds the lock: what is
// left goes at the next prune. It forgets no snapshot: every site's
// snapshots stay as they are.
func (r *Restic) Prune(ctx context.Context) error {
	var out bytes.Buffer
	if err := r.run(ctx, nil, &out, "prune", "--max-unused", "5%", "--max-repack-size", maxRepack); err != nil {
		return fmt.Errorf("repository prune failed: %w; %s", err, lastLines(out.String(), 4))
	}
	return nil
}

// maxRepack bounds the data one prune rewrites.
const maxRepack = "2G"

// Unlock removes the locks of restic processes that are gone (`restic
// unlock` removes stale locks only: one of a restic running on this host,
// or younger than 30 minutes on another, stays): a restic killed with
// darse leaves its lock, which would make the next run wait for it.
func (r *Restic) Unlock(ctx context.Context) error {
	err := r.run(ctx, nil, io.Discard, "unlock")
	var re *Error
	if errors.As(err, &re) && re.Code == exitRepoMissing {
		return nil
	}
	return err
}
