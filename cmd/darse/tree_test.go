package main

// Tests over the CLI's whole command tree, walked from the root command
// so that a new command is covered without being listed here: usage
// errors exit 2 with one line, read commands have --json and print the
// documented shape, input is checked before the engine is asked.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/testenv"
	"github.com/darse/darse/internal/version"
)

// runCLI runs darse in this process, as main does, with DARSE_SRV as set.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{log: slog.New(slog.DiscardHandler)}
	code = run(context.Background(), a, args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// commands lists every command of the tree, root first.
func commands() []*cobra.Command {
	var all []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		all = append(all, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(&app{}))
	return all
}

// words is the command line that reaches c: "site ls" -> [site ls].
func words(c *cobra.Command) []string { return strings.Fields(c.CommandPath())[1:] }

// isRead: commands named ls or status only read, and must offer --json.
func isRead(c *cobra.Command) bool { return c.Name() == "ls" || c.Name() == "status" }

func oneLine(s string) bool { return s != "" && strings.Count(strings.TrimSuffix(s, "\n"), "\n") == 0 }

func TestCommandTreeUsage(t *testing.T) {
	t.Setenv("DARSE_SRV", t.TempDir())
	all := commands()
	if len(all) < 40 {
		t.Fatalf("walked only %d commands", len(all))
	}
	groups := 0
	for _, c := range all {
		path := words(c)
		if c.HasSubCommands() {
			groups++
			out, errs, code := runCLI(t, "", append(path, "bogus-sub")...)
			want := `unknown command "bogus-sub" for "` + c.CommandPath() + `"`
			if code != 2 || out != "" || !oneLine(errs) || !strings.Contains(errs, want) {
				t.Errorf("darse %s bogus-sub: exit %d, stdout %q, stderr %q; want exit 2 and one line with %s", c.CommandPath(), code, out, errs, want)
			}
			// Called bare, a group shows its help and succeeds.
			if out, errs, code := runCLI(t, "", path...); code != 0 || !strings.Contains(out, "Available Commands") || errs != "" {
				t.Errorf("darse %s: exit %d, stdout %q, stderr %q; want its help", strings.Join(path, " "), code, out, errs)
			}
		}
		out, errs, code := runCLI(t, "", append(path, "--no-such-flag")...)
		if code != 2 || out != "" || !oneLine(errs) || !strings.Contains(errs, "unknown flag: --no-such-flag") {
			t.Errorf("%s --no-such-flag: exit %d, stdout %q, stderr %q; want exit 2 and one line", c.CommandPath(), code, out, errs)
		}
		if isRead(c) && c.Flags().Lookup("json") == nil {
			t.Errorf("%s is a read command without --json", c.CommandPath())
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: a backquote in its usage becomes the value's name in help: %q", c.CommandPath(), f.Name, f.Usage)
			}
		})
	}
	if groups < 10 {
		t.Errorf("only %d group commands found", groups)
	}

	// Wrong numbers of arguments are usage errors too.
	for _, args := range [][]string{{"site", "up"}, {"site", "ls", "extra"}, {"user", "quota", "alice"}, {"key", "rm", "blog"}, {"help", "nope"}, {"site", "render"}} {
		out, errs, code := runCLI(t, "", args...)
		if code != 2 || out != "" || !oneLine(errs) {
			t.Errorf("darse %s: exit %d, stdout %q, stderr %q; want exit 2 and one line", strings.Join(args, " "), code, out, errs)
		}
	}
	if _, errs, code := runCLI(t, "", "nope"); code != 2 || !strings.Contains(errs, `unknown command "nope" for "darse"`) {
		t.Errorf("darse nope: exit %d, %q", code, errs)
	}
}

func TestVersion(t *testing.T) {
	want := "darse " + version.String() + "\n"
	if !strings.HasPrefix(want, "darse "+version.Version+" (commit ") {
		t.Fatalf("version line %q", want)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if out, errs, code := runCLI(t, "", args...); code != 0 || out != want || errs != "" {
			t.Errorf("darse %s: exit %d, stdout %q, stderr %q; want %q", args[0], code, out, errs, want)
		}
	}
}

// TestValidationBeforeEngine: with the engine unreachable, bad input is
// answered by its rule, and neither the engine nor the store is opened.
func TestValidationBeforeEngine(t *testing.T) {
	srv := t.TempDir()
	t.Setenv("DARSE_SRV", srv)
	t.Setenv("DOCKER_HOST", "unix:///nonexistent.sock")
	if err := os.MkdirAll(filepath.Join(srv, "conf"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srv, "conf", "darse.yml"), []byte("domain: test.example.org\nreserved: [shop]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty.pub")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"site", "create", "Bad;Name", "--template", "static"}, `site name "Bad;Name": must be 1-63 lowercase`},
		{[]string{"site", "create", "www", "--template", "static"}, `site name "www": is reserved`},
		{[]string{"site", "create", "shop", "--template", "static"}, `site name "shop": is reserved: reserved in darse.yml`},
		{[]string{"site", "create", "ok", "--template", "nope"}, `template "nope": unknown template`},
		{[]string{"site", "create", "ok"}, `--template "": is required`},
		{[]string{"site", "create", "ok", "--template", "php", "--set", "PHP_MEMORY_LIMIT=lots"}, `parameter PHP_MEMORY_LIMIT "lots"`},
		{[]string{"site", "create", "ok", "--template", "php", "--set", "NOPE=1"}, `parameter "NOPE"`},
		{[]string{"site", "create", "ok", "--template", "static", "--set", "novalue"}, `--set "novalue": must be KEY=VALUE`},
		{[]string{"site", "create", "ok", "--template", "static", "--domain", "*.example.org"}, `domain "*.example.org"`},
		{[]string{"site", "create", "ok", "--template", "static", "--owner", "Bad Owner"}, `--owner "Bad Owner"`},
		{[]string{"site", "up", "Bad;Name"}, `site name "Bad;Name"`},
		{[]string{"site", "stop", "Bad;Name"}, `site name "Bad;Name"`},
		{[]string{"site", "restart", "Bad;Name"}, `site name "Bad;Name"`},
		{[]string{"site", "status", "Bad;Name"}, `site name "Bad;Name"`},
		{[]string{"site", "rm", "Bad;Name", "--purge", "--yes"}, `site name "Bad;Name"`},
		{[]string{"site", "render", "Bad;Name"}, `site name "Bad;Name"`},
		{[]string{"site", "domain", "add", "ok", "not_a_domain"}, `domain "not_a_domain"`},
		{[]string{"site", "domain", "rm", "Bad;Name", "x.example.org"}, `site name "Bad;Name"`},
		{[]string{"key", "add", "Bad;Name", empty}, `site name "Bad;Name"`},
		{[]string{"key", "add", "ok", empty}, `key "": is empty`},
		{[]string{"key", "ls", "Bad;Name"}, `site name "Bad;Name"`},
		{[]string{"key", "rm", "Bad;Name", "1"}, `site name "Bad;Name"`},
		{[]string{"forward", "add", "ok", "0"}, `port "0": must be a port number`},
		{[]string{"forward", "add", "Bad;Name", "80"}, `site name "Bad;Name"`},
		{[]string{"forward", "ls", "Bad;Name"}, `site name "Bad;Name"`},
		{[]string{"forward", "rm", "ok", "70000"}, `host port "70000"`},
		{[]string{"user", "add", "Bad Name"}, `member name "Bad Name"`},
		{[]string{"user", "add", "alice", "--quota", "-1"}, `--quota "-1"`},
		{[]string{"user", "passwd", "Bad Name"}, `member name "Bad Name"`},
		{[]string{"user", "disable", "Bad Name"}, `member name "Bad Name"`},
		{[]string{"user", "quota", "alice", "lots"}, `quota "lots"`},
		{[]string{"op", "ls", "--state", "bogus"}, `--state "bogus"`},
		{[]string{"op", "ls", "-n", "0"}, `-n "0"`},
		{[]string{"op", "run", "abc"}, `operation "abc"`},
		{[]string{"fw", "render", "--input", "bogus"}, `--input "bogus"`},
		{[]string{"images", "build", "nope"}, `nope`},
	} {
		out, errs, code := runCLI(t, "", c.args...)
		if code != 1 || !oneLine(errs) || !strings.Contains(errs, c.want) || strings.Contains(errs, "docker") {
			t.Errorf("darse %s: exit %d, stderr %q, want exit 1 and one line with %q (stdout %q)", strings.Join(c.args, " "), code, errs, c.want, out)
		}
	}
	for _, p := range []string{"conf/darse.db", "users"} {
		if _, err := os.Stat(filepath.Join(srv, p)); !os.IsNotExist(err) {
			t.Errorf("bad input opened or wrote %s: %v", p, err)
		}
	}
	// The engine really is out of reach: good input gets its error.
	if _, errs, code := runCLI(t, "", "site", "create", "ok", "--template", "static"); code != 1 || !strings.Contains(errs, "docker engine") {
		t.Errorf("good input with the engine down: exit %d, %q; want the engine's error", code, errs)
	}
}

// TestEmptyListsJSON: the store-only read commands print [] for nothing.
func TestEmptyListsJSON(t *testing.T) {
	t.Setenv("DARSE_SRV", t.TempDir())
	for _, args := range [][]string{{"user", "ls"}, {"key", "ls"}, {"forward", "ls"}, {"op", "ls"}} {
		out, errs, code := runCLI(t, "", append(args, "--json")...)
		if code != 0 || strings.TrimSpace(out) != "[]" {
			t.Errorf("darse %s --json on a new platform: exit %d, stdout %q, stderr %q; want []", strings.Join(args, " "), code, out, errs)
		}
	}
	out, errs, code := runCLI(t, "", "templates", "ls", "--json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) < 2 {
		t.Fatalf("templates ls --json: exit %d, %q %q", code, out, errs)
	}
	checkShape(t, "templates ls", "", list)
}

// TestCompletion: names come from the store and the templates, never
// from the engine, and a missing store offers nothing without creating one.
func TestCompletion(t *testing.T) {
	srv := t.TempDir()
	t.Setenv("DARSE_SRV", srv)
	t.Setenv("DOCKER_HOST", "unix:///nonexistent.sock")
	complete := func(args ...string) []string {
		t.Helper()
		out, errs, code := runCLI(t, "", append([]string{cobra.ShellCompRequestCmd}, args...)...)
		if code != 0 {
			t.Fatalf("complete %q: exit %d, %s", args, code, errs)
		}
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasPrefix(l, ":") { // the last line is the directive
				names = append(names, strings.SplitN(l, "\t", 2)[0])
			}
		}
		return names
	}
	if got := complete("site", "up", ""); len(got) != 0 {
		t.Errorf("site names without a store: %q", got)
	}
	if _, err := os.Stat(filepath.Join(srv, "conf", "darse.db")); !os.IsNotExist(err) {
		t.Fatalf("completion created the store: %v", err)
	}

	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(srv, "conf", "darse.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, store.User{Name: "alice", Hash: "x", Quota: 3}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"blog", "shop"} {
		spec := site.Spec{Name: n, Template: "static", Owner: "alice", Domain: n + ".test.example.org", Plan: site.Plan{CPUs: "0.5", Memory: "128m", Pids: 64}}
		if err := st.CreateSite(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"site", "up", ""}, "blog shop"},
		{[]string{"site", "rm", "b"}, "blog"},
		{[]string{"site", "status", "blog", ""}, ""},
		{[]string{"site", "domain", "add", "s"}, "shop"},
		{[]string{"key", "add", "s"}, "shop"},
		{[]string{"forward", "ls", ""}, "blog shop"},
		{[]string{"site", "create", "new", "--template", ""}, "php php-mariadb php-postgres static wordpress"},
		{[]string{"site", "create", "new", "--template", "php-"}, "php-mariadb php-postgres"},
		{[]string{"site", "create", "new", "--owner", "a"}, "alice"},
		{[]string{"user", "passwd", ""}, "alice"},
		{[]string{"user", "quota", "al"}, "alice"},
		{[]string{"op", "ls", "--site", "bl"}, "blog"},
	} {
		if got := strings.Join(complete(c.args...), " "); got != c.want {
			t.Errorf("complete darse %s: %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// nullable are the fields that may be null: times not reached yet.
var nullable = map[string]bool{"started_at": true, "finished_at": true, "created": true}

// checkShape fails on a key that is not snake_case and on a null that is
// not a time still to come (an empty list must be [], not null). An
// operation's args and a site's parameters hold their own keys.
func checkShape(t *testing.T, cmd, key string, v any) {
	t.Helper()
	switch v := v.(type) {
	case nil:
		if !nullable[key] {
			t.Errorf("%s --json: %q is null", cmd, key)
		}
	case []any:
		for _, e := range v {
			checkShape(t, cmd, key, e)
		}
	case []map[string]any:
		for _, e := range v {
			checkShape(t, cmd, key, e)
		}
	case map[string]any:
		for k, e := range v {
			if !snakeCase.MatchString(k) {
				t.Errorf("%s --json: field %q is not snake_case", cmd, k)
			}
			if k != "args" && k != "params" {
				checkShape(t, cmd, k, e)
			}
		}
	}
}

// TestReadCommandsJSON runs every read command with --json against a
// platform holding a site, a member, a key and a forward.
func TestReadCommandsJSON(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/sftp:bookworm")
	e := newEnv(t)
	empty := map[string]string{}
	for _, args := range [][]string{{"site", "ls"}} {
		if out := e.ok(append(args, "--json")...); strings.TrimSpace(out) != "[]" {
			empty[strings.Join(args, " ")] = out
		}
	}
	for cmd, out := range empty {
		t.Errorf("%s --json with nothing: %q, want []", cmd, out)
	}
	name := siteName("json")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "static")
	add := exec.Command(darseBin, "user", "add", "alice")
	add.Env = append(os.Environ(), "DARSE_SRV="+e.srv)
	add.Stdin = strings.NewReader("correct horse battery staple\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	key := newClientKey(t, t.TempDir(), "jsontest")
	e.ok("key", "add", name, key.file+".pub")
	e.ok("forward", "add", name, "8080")

	// Arguments the read commands need here; the others list everything.
	extra := map[string][]string{"darse site status": {name}}
	// What each list must hold, given what was made above.
	atLeast := map[string]int{"darse site ls": 1, "darse user ls": 1, "darse key ls": 1, "darse forward ls": 1,
		"darse op ls": 2, "darse templates ls": 2, "darse images ls": 1,
		"darse backup ls": 0} // no backup: section here: an empty list
	ran := 0
	for _, c := range commands() {
		if !isRead(c) || c.Flags().Lookup("json") == nil {
			continue
		}
		ran++
		out := e.ok(append(append(words(c), extra[c.CommandPath()]...), "--json")...)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("%s --json: %v\n%s", c.CommandPath(), err, out)
			continue
		}
		checkShape(t, c.CommandPath(), "", v)
		if n, ok := atLeast[c.CommandPath()]; ok {
			if list, isList := v.([]any); !isList || len(list) < n {
				t.Errorf("%s --json: want a list of at least %d, got %s", c.CommandPath(), n, out)
			}
		} else if _, isObject := v.(map[string]any); !isObject {
			t.Errorf("%s --json: want an object, got %s", c.CommandPath(), out)
		}
	}
	if ran < 9 {
		t.Errorf("ran only %d read commands with --json", ran)
	}

	var st platformJSON
	if err := json.Unmarshal([]byte(e.ok("platform", "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version.Version != version.Version || st.Domain != "test.example.org" {
		t.Errorf("platform status: version %+v, domain %q", st.Version, st.Domain)
	}
	if out := e.ok("platform", "status"); !strings.Contains(out, "darse:   "+version.Version+" (commit ") {
		t.Errorf("platform status does not show the version:\n%s", out)
	}
}

// TestPurgeAsksFirst: rm --purge deletes a member's files only when the
// operator confirms: typing the name on a terminal, or --yes.
func TestPurgeAsksFirst(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm")
	e := newEnv(t)
	name := siteName("purge")
	e.cleanup(name)
	e.ok("site", "create", name, "--template", "static")
	page := filepath.Join(e.srv, "users", name, "data", "index.html")
	if err := os.WriteFile(page, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kept := func(when string) {
		t.Helper()
		if b, err := os.ReadFile(page); err != nil || string(b) != "keep me\n" {
			t.Fatalf("%s: the member's file is gone: %q, %v", when, b, err)
		}
		if s := e.status(name); s.State != hosting.StateRunning {
			t.Fatalf("%s: site is %s", when, s.State)
		}
	}

	// No terminal (stdin is /dev/null), no --yes: refused.
	out, errs, code := e.run("site", "rm", name, "--purge")
	if code != 2 || !oneLine(errs) || !strings.Contains(errs, "--yes") {
		t.Errorf("rm --purge without a terminal: exit %d, stdout %q, stderr %q; want exit 2 naming --yes", code, out, errs)
	}
	kept("refused without a terminal")
	for _, op := range e.opsOn(name) {
		if op.Kind == "remove" {
			t.Errorf("a refused purge recorded %+v", op)
		}
	}

	// On a terminal (script(1) gives one), a wrong name is no.
	if script, err := exec.LookPath("script"); err == nil {
		onTerminal := func(answer string) string {
			cmd := exec.Command(script, "-qec", darseBin+" site rm "+name+" --purge", "/dev/null")
			cmd.Env = append(os.Environ(), "DARSE_SRV="+e.srv)
			cmd.Stdin = strings.NewReader(answer + "\n")
			b, _ := cmd.CombinedOutput()
			return string(b)
		}
		if out := onTerminal("blog"); !strings.Contains(out, "type its name:") || !strings.Contains(out, "not confirmed") {
			t.Errorf("wrong name typed on a terminal:\n%s", out)
		}
		kept("wrong name typed")
		if out := onTerminal(name); !strings.Contains(out, "data/ purged") {
			t.Errorf("name typed on a terminal:\n%s", out)
		}
		if _, err := os.Stat(filepath.Dir(filepath.Dir(page))); !os.IsNotExist(err) {
			t.Errorf("confirmed purge left the folder: %v", err)
		}
		e.ok("site", "create", name, "--template", "static")
	} else if testenv.Required() {
		t.Error("no script(1) to give darse a terminal (util-linux)")
	}

	e.ok("site", "rm", name, "--purge", "--yes")
	if _, err := os.Stat(filepath.Join(e.srv, "users", name)); !os.IsNotExist(err) {
		t.Errorf("rm --purge --yes left the folder: %v", err)
	}
}

// TestVersionOfBuild: a release build's -ldflags values are what it prints.
func TestVersionOfBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds darse")
	}
	bin := filepath.Join(t.TempDir(), "darse")
	pkg := "github.com/darse/darse/internal/version"
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X "+pkg+".Version=9.8.7 -X "+pkg+".Commit=abc1234 -X "+pkg+".Date=2026-12-01T09:00:00Z", ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if want := "darse 9.8.7 (commit abc1234, built 2026-12-01T09:00:00Z)\n"; err != nil || string(out) != want {
		t.Errorf("--version: %q, %v; want %q", out, err, want)
	}
}
