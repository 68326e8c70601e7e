package main

// End-to-end tests of `darse panel` as operators run it: the real binary,
// the real engine, a real browser (Debian's chromium driven by chromedp)
// on loopback, and a SIGKILL in the middle of a site creation.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/ssh"

	"github.com/darse/darse/internal/netns"
	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/testenv"
)

type lockedBuffer = testenv.Buffer

// panelProc is a running `darse panel`.
type panelProc struct {
	cmd   *exec.Cmd
	url   string
	setup string // the one-time setup link, when printed
	log   *lockedBuffer
	done  chan struct{}
}

// startPanel runs `darse panel` on a free loopback port and waits until it serves.
func (e *env) startPanel() *panelProc {
	e.t.Helper()
	cmd := exec.Command(darseBin, "panel", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "DARSE_SRV="+e.srv, "DARSE_LOG=info")
	p := &panelProc{cmd: cmd, log: &lockedBuffer{}, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.log, line)
			if u, ok := strings.CutPrefix(line, "darse panel: listening on "); ok {
				p.url = u
			}
			if strings.Contains(line, "/setup?token=") {
				p.setup = strings.TrimSpace(line)
			}
			if strings.HasPrefix(line, "or on this server") || (p.url != "" && !strings.Contains(p.log.String(), "no admin yet")) {
				select {
				case <-ready:
				default:
					close(ready)
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(p.done) }()
	e.t.Cleanup(func() { p.stop() })
	select {
	case <-ready:
	case <-p.done:
		e.t.Fatalf("darse panel exited:\n%s", p.log)
	case <-time.After(60 * time.Second):
		e.t.Fatalf("darse panel did not start:\n%s", p.log)
	}
	for i := 0; ; i++ {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			e.t.Fatalf("panel at %s does not answer: %v\n%s", p.url, err, p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

func (p *panelProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *panelProc) kill() {
	p.cmd.Process.Kill() // SIGKILL
	<-p.done
}

// addUser runs `darse user add` with the password on stdin.
func (e *env) addUser(name, pw string, extra ...string) {
	e.t.Helper()
	cmd := exec.Command(darseBin, append([]string{"user", "add", name}, extra...)...)
	cmd.Env = append(os.Environ(), "DARSE_SRV="+e.srv)
	cmd.Stdin = strings.NewReader(pw + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("darse user add %s: %v\n%s", name, err, out)
	}
}

func (e *env) ops() []store.Operation {
	e.t.Helper()
	var list []store.Operation
	if err := json.Unmarshal([]byte(e.ok("op", "ls", "--json")), &list); err != nil {
		e.t.Fatal(err)
	}
	return list
}

// artifacts is where screenshots go: $DARSE_ARTIFACTS or <repo>/artifacts.
func artifacts(t *testing.T) string {
	dir := os.Getenv("DARSE_ARTIFACTS")
	if dir == "" {
		dir, _ = filepath.Abs("../../artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// formClient logs in over HTTP as a browser would, for tests that need no rendering.
type formClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newFormClient(t *testing.T, base string) *formClient {
	jar, _ := cookiejar.New(nil)
	return &formClient{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (f *formClient) post(from, path string, form url.Values) *http.Response {
	f.t.Helper()
	resp, err := f.c.Get(f.base + from)
	if err != nil {
		f.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInput.FindSubmatch(body)
	if m == nil {
		f.t.Fatalf("no form token on %s (%d)", from, resp.StatusCode)
	}
	form.Set("csrf", string(m[1]))
	resp, err = f.c.PostForm(f.base+path, form)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// needChromium finds Debian's chromium (installed by the README's test command).
func needChromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		if testenv.Required() {
			t.Fatal("integration test cannot run: chromium is not installed (DARSE_INTEGRATION=require)")
		}
		t.Skip("integration test: chromium is not installed")
	}
	return p
}

// browserContext starts a headless chromium that talks to loopback only:
// background services off, and every host name resolving to nothing but
// the names of the domain given (*.domain to 127.0.0.1, on the ports given).
func browserContext(t *testing.T, chromium string, domain ...string) context.Context {
	rules := "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
	if len(domain) > 0 {
		rules = "MAP *." + domain[0] + " 127.0.0.1, " + rules
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 860),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,InterestFeedContentSuggestions,AutofillServerCommunication"),
		chromedp.Flag("host-resolver-rules", rules),
		chromedp.Flag("proxy-server", "direct://"),
		chromedp.Flag("force-device-scale-factor", "1"),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	return ctx
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifacts(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestPanelInBrowser: a member logs in, creates a site, sees it running,
// logs out; an admin sees it among every site and container.
func TestPanelInBrowser(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm")
	chromium := needChromium(t)
	e := newEnv(t)
	e.addUser("root", "root's long password", "--admin")
	e.addUser("alice", "alice's long password", "--quota", "5")
	name := siteName("shop")
	e.cleanup(name)
	p := e.startPanel()
	ctx := browserContext(t, chromium)
	type css = chromedp.CSS
	fail := func(what string, err error) {
		t.Helper()
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			os.WriteFile(filepath.Join(artifacts(t), "failed.png"), png, 0o644)
		}
		t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, p.log)
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			fail(what, err)
		}
	}
	// text reads an element; the page's script may be reloading it just
	// then (an operation ended), so a vanished node is read again.
	text := func(sel css) string {
		t.Helper()
		var err error
		for range 20 {
			var s string
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			s, err = chromedp.Run(sctx, chromedp.Text(sel))
			cancel()
			if err == nil {
				return s
			}
			time.Sleep(250 * time.Millisecond)
		}
		fail("read "+string(sel), err)
		return ""
	}
	// The first run starts the browser for the context it is given: no timeout there.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	run("log in",
		chromedp.Navigate(p.url+"/sites"),
		chromedp.WaitVisible(css("#name")),
		chromedp.SendKeys(css("#name"), "alice"),
		chromedp.SendKeys(css("#password"), "alice's long password"),
		chromedp.Submit(css("#password")),
		chromedp.WaitVisible(css("meter.quota")),
	)
	screenshot(t, ctx, "dashboard-empty")

	// A bad name is refused as it is typed, next to the field.
	run("name checked as typed",
		chromedp.Click(css(`a[href="/sites/new"]`)),
		chromedp.WaitVisible(css("#name")),
		chromedp.SendKeys(css("#name"), "Bad_Name"),
		chromedp.WaitVisible(css("#name-error")),
	)
	if msg := text("#name-error"); !strings.Contains(msg, "must be 1-63 lowercase letters") {
		t.Fatalf("as-you-type error = %q", msg)
	}
	screenshot(t, ctx, "new-site-invalid-name")
	run("create the site",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[string](`document.getElementById("name").value = ""`)(ctx, tg)
			return err
		}),
		chromedp.SendKeys(css("#name"), name),
		chromedp.WaitNotVisible(css("#name-error")),
		chromedp.Submit(css("#name")),
		// The operation page follows the creation, then opens the site.
		chromedp.WaitVisible(css(`.page-head[data-live-site="`+name+`"]`)),
	)
	deadline := time.Now().Add(60 * time.Second)
	for text("h1 [data-state]") != "Running" {
		if time.Now().After(deadline) {
			fail("site never shown running", nil)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The panel's word is the engine's: the container answers.
	get(t, name+"_web_1", "/", 200)
	// Live CPU and memory fill in.
	for deadline = time.Now().Add(30 * time.Second); !strings.HasSuffix(text(`[data-cpu="web"]`), "%"); time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			fail("no CPU figure", nil)
		}
	}
	screenshot(t, ctx, "site")
	run("logs", chromedp.Click(css(`a[href="/sites/`+name+`/logs"]`)), chromedp.WaitVisible(css("pre.logs")))
	screenshot(t, ctx, "logs")
	run("back to the site", chromedp.Click(css("a.back")), chromedp.WaitVisible(css("#content")))

	// Content: an archive reaching out of data/ is refused whole, next to
	// the field; a good one is served after the swap.
	dir := t.TempDir()
	evil := filepath.Join(dir, "evil.tar.gz")
	good := filepath.Join(dir, "site.tar.gz")
	page := fmt.Sprintf("<h1>uploaded to %s</h1>\n", name)
	writeTarGz(t, evil, map[string]string{"index.html": "pwned", "../../evil": "x"})
	writeTarGz(t, good, map[string]string{"index.html": page, "css/site.css": "h1{color:teal}"})
	run("refused upload",
		chromedp.SetUploadFiles(css("#archive"), []string{evil}),
		chromedp.Submit(css("#archive")),
		chromedp.WaitVisible(css("#content .field-error")),
	)
	if msg := text("#content .field-error"); !strings.Contains(msg, "goes outside data/") {
		t.Fatalf("refused upload says %q", msg)
	}
	screenshot(t, ctx, "site-upload-refused")
	if body := get(t, name+"_web_1", "/", 200); strings.Contains(body, "pwned") {
		t.Fatal("refused upload is served")
	}
	run("upload",
		chromedp.SetUploadFiles(css("#archive"), []string{good}),
		chromedp.Submit(css("#archive")),
		chromedp.WaitVisible(css(`.page-head[data-live-site="`+name+`"]`)),
	)
	deadline = time.Now().Add(60 * time.Second)
	for served(name+"_web_1", "/") != page {
		if time.Now().After(deadline) {
			fail("uploaded content never served", nil)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if css := get(t, name+"_web_1", "/css/site.css", 200); css != "h1{color:teal}" {
		t.Fatalf("uploaded css = %q", css)
	}

	// An SSH key (its fingerprint shown) and a port forward (a host port
	// allocated, the exposure rendered for the firewall watcher).
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(edPub)
	run("add an SSH key",
		chromedp.SendKeys(css("#key"), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))+" alice@laptop"),
		chromedp.Submit(css("#key")),
		chromedp.WaitVisible(css("#keys .keylist form")),
	)
	if got := text("#keys .keylist"); !strings.Contains(got, ssh.FingerprintSHA256(sshPub)) {
		t.Fatalf("keys list %q lacks the fingerprint", got)
	}
	run("forward a port",
		chromedp.SendKeys(css("#port"), "8080"),
		chromedp.Submit(css("#port")),
		chromedp.WaitVisible(css("#forwards")),
	)
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(text("#forwards .keylist"), "→ web:8080") {
		if time.Now().After(deadline) {
			fail("forward never listed", nil)
		}
		time.Sleep(300 * time.Millisecond)
		run("reload", chromedp.Reload())
	}
	override, _ := os.ReadFile(filepath.Join(e.srv, "users", name, "docker-compose.override.yml"))
	if !strings.Contains(string(override), `port: "8080"`) || !strings.Contains(string(override), "darse.expose.fwd4") {
		t.Fatalf("forward not rendered as an exposure:\n%s", override)
	}
	idle := func() bool {
		busy, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(".alert-info") !== null`))
		return err == nil && !busy
	}
	for deadline = time.Now().Add(30 * time.Second); !idle(); time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			fail("forward operation never done", nil)
		}
		run("reload", chromedp.Navigate(p.url+"/sites/"+name), chromedp.WaitVisible(css("#forwards")))
	}
	screenshot(t, ctx, "site-complete")

	run("dashboard", chromedp.Click(css("a.back")), chromedp.WaitVisible(css(".site-card .state-running")))
	screenshot(t, ctx, "dashboard")
	// A default install (no acme: in darse.yml) serves sites over plain HTTP.
	if href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(".site-card a.domain").href`)); err != nil || href != "http://"+name+".test.example.org/" {
		t.Errorf("the site's link is %q (%v), want http://%s.test.example.org/", href, err, name)
	}

	// A creation that cannot start (a container squats the name its web
	// service needs) is shown failed, in the member's terms, with a retry
	// that works once the cause is gone.
	bad := siteName("oops")
	e.cleanup(bad)
	squatter := bad + "_web_1"
	if out, err := exec.Command("docker", "create", "--name", squatter, "darse/nginx:bookworm").CombinedOutput(); err != nil {
		t.Fatalf("docker create %s: %v\n%s", squatter, err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", squatter).Run() })
	run("create a site that cannot start",
		chromedp.Navigate(p.url+"/sites/new"),
		chromedp.WaitVisible(css("#name")),
		chromedp.SendKeys(css("#name"), bad),
		chromedp.WaitNotVisible(css("#name-error")),
		chromedp.Submit(css("#name")),
		chromedp.WaitVisible(css(`[data-op-state="failed"] .alert-error`)),
	)
	memberText := func(what string) string {
		t.Helper()
		got := text("main")
		for _, never := range []string{"darse site", "darse op", "`", "already in use", "Conflict", "Stopped"} {
			if strings.Contains(got, never) {
				t.Errorf("%s shows the member %q:\n%s", what, never, got)
			}
		}
		return got
	}
	if got := memberText("the failed operation"); !strings.Contains(got, "could not be started. You can try again; if it keeps failing, contact an admin.") {
		t.Errorf("the failed operation says:\n%s", got)
	}
	screenshot(t, ctx, "op-failed")
	onPhone(t, ctx, "op-failed")
	run("dashboard with the failed site",
		chromedp.Click(css(`.nav a[href="/sites"]`)),
		chromedp.WaitVisible(css(`.site-card[data-live-site="`+bad+`"] .state-failed`)),
	)
	if got := memberText("the dashboard"); !strings.Contains(got, "Creation failed") {
		t.Errorf("the dashboard does not show the failed creation:\n%s", got)
	}
	screenshot(t, ctx, "dashboard-failed")
	onPhone(t, ctx, "dashboard-failed")
	admin := newFormClient(t, p.url)
	if resp := admin.post("/login", "/login", url.Values{"name": {"root"}, "password": {"root's long password"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("root logs in over HTTP: %d", resp.StatusCode)
	}
	adminList := func() string {
		t.Helper()
		resp, err := admin.c.Get(p.url + "/admin")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if list := adminList(); !strings.Contains(list, `data-site-row="`+bad+`" class="tone-bad"`) || !strings.Contains(list, "is already in use") {
		t.Errorf("the admin list does not show %s failing with the engine's error", bad)
	}
	if out, err := exec.Command("docker", "rm", "-f", squatter).CombinedOutput(); err != nil {
		t.Fatalf("docker rm %s: %v\n%s", squatter, err, out)
	}
	run("try again",
		chromedp.Click(css(`.site-card[data-live-site="`+bad+`"] form[action="/sites/`+bad+`/start"] button`)),
		chromedp.WaitVisible(css(`.page-head[data-live-site="`+bad+`"]`)),
	)
	for deadline = time.Now().Add(60 * time.Second); text("h1 [data-state]") != "Running"; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			fail("the retried site never shown running", nil)
		}
	}
	get(t, bad+"_web_1", "/", 200)
	if list := adminList(); !strings.Contains(list, `data-site-row="`+bad+`" class="tone-ok"`) {
		t.Errorf("the admin list still shows %s failing", bad)
	}
	// For the tours below: that site stopped by its owner, and another
	// left failed (made over HTTP, as alice).
	run("stop it",
		chromedp.Click(css(`form[action="/sites/`+bad+`/stop"] button`)),
		chromedp.WaitVisible(css(`form[action="/sites/`+bad+`/start"]`)),
	)
	bad2 := siteName("oops2")
	e.cleanup(bad2)
	squatter2 := bad2 + "_web_1"
	if out, err := exec.Command("docker", "create", "--name", squatter2, "darse/nginx:bookworm").CombinedOutput(); err != nil {
		t.Fatalf("docker create %s: %v\n%s", squatter2, err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", squatter2).Run() })
	member := newFormClient(t, p.url)
	member.post("/login", "/login", url.Values{"name": {"alice"}, "password": {"alice's long password"}})
	if resp := member.post("/sites/new", "/sites", url.Values{"name": {bad2}, "template": {"static"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create %s: %d", bad2, resp.StatusCode)
	}
	for deadline = time.Now().Add(60 * time.Second); !strings.Contains(adminList(), `data-site-row="`+bad2+`" class="tone-bad"`); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never shown failing in the admin list", bad2)
		}
	}
	if list := adminList(); !strings.Contains(list, `data-site-row="`+bad+`" class="tone-quiet"`) {
		t.Errorf("the admin list does not show %s stopped by its owner, quietly", bad)
	}

	// Every page a member reaches through the navigation, on a desktop
	// and on a phone: nothing wider than the screen.
	tour(t, ctx, p.url, "member", []step{
		{"dashboard", `.nav a[href="/sites"]`, "meter.quota"},
		{"new-site", `a[href="/sites/new"]`, "#name"},
		{"", `.nav a[href="/sites"]`, ".site-grid"},
		{"site", `a.site-name[href="/sites/` + name + `"]`, "#forwards"},
		{"logs", `a[href="/sites/` + name + `/logs"]`, "pre.logs"},
		{"", "a.back", "#forwards"},
		{"operation", `.table a[href^="/ops/"]`, "[data-op]"},
		{"", `.nav a[href="/sites"]`, ".site-grid"},
		{"", `a.site-name[href="/sites/` + name + `"]`, "#forwards"},
		{"delete", `a[href="/sites/` + name + `/delete"]`, "#confirm"},
		{"account", `.nav a[href="/account"]`, "#current"},
	})

	run("log out",
		chromedp.Click(css(`form[action="/logout"] button`)),
		chromedp.WaitVisible(css(`form[action="/login"]`)),
		chromedp.Navigate(p.url+"/sites"),
		chromedp.WaitVisible(css(`form[action="/login"]`)),
	)
	screenshot(t, ctx, "login")

	run("admin logs in",
		chromedp.SendKeys(css("#name"), "root"),
		chromedp.SendKeys(css("#password"), "root's long password"),
		chromedp.Submit(css("#password")),
		chromedp.WaitVisible(css(`a[href="/admin"]`)),
		chromedp.Navigate(p.url+"/admin"),
		chromedp.WaitVisible(css(`tr[data-site-row="`+name+`"]`)),
	)
	screenshot(t, ctx, "admin-sites")
	run("admin containers", chromedp.Navigate(p.url+"/admin/containers"), chromedp.WaitVisible(css(`td[title]`)))
	if !strings.Contains(text("main"), name+"_web_1") {
		t.Errorf("admin containers page does not list %s_web_1", name)
	}
	screenshot(t, ctx, "admin-containers")
	run("admin members", chromedp.Navigate(p.url+"/admin/members"), chromedp.WaitVisible(css(`form[action="/admin/members/alice/disable"]`)))
	screenshot(t, ctx, "admin-members")
	run("admin operations", chromedp.Navigate(p.url+"/admin/ops"), chromedp.WaitVisible(css(".opstate-done")))
	screenshot(t, ctx, "admin-ops")

	tour(t, ctx, p.url, "admin", []step{
		{"admin-sites", `.nav a[href="/admin"]`, `tr[data-site-row="` + name + `"]`},
		{"admin-containers", `.subnav a[href="/admin/containers"]`, "td[title]"},
		{"admin-members", `.subnav a[href="/admin/members"]`, `form[action="/admin/members/alice/disable"]`},
		{"admin-ops", `.subnav a[href="/admin/ops"]`, ".opstate-done"},
		{"", `.subnav a[href="/admin"]`, `tr[data-site-row="` + name + `"]`},
		{"admin-site", `tr[data-site-row="` + name + `"] a[href="/sites/` + name + `"]`, "#forwards"},
		{"admin-dashboard", `.nav a[href="/sites"]`, ".page-head"},
		{"admin-account", `.nav a[href="/account"]`, "#current"},
	})
}

// step is one click of a tour through the panel: on the link click, the
// page shows wait; named pages are checked and photographed.
type step struct {
	name  string
	click string
	wait  string
}

// viewports are the screens every page is checked on: a desktop and a
// 390 px phone.
var viewports = []struct {
	name string
	w, h int64
	opts []chromedp.EmulateViewportOption
}{
	{"desktop", 1280, 860, nil},
	{"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait}},
}

// tour walks the steps from the dashboard at each viewport, by clicking
// (so every page is reached through the navigation), checks that no
// named page is wider than the screen, and saves a screenshot of each.
func tour(t *testing.T, ctx context.Context, base, who string, steps []step) {
	t.Helper()
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); serr == nil {
				os.WriteFile(filepath.Join(artifacts(t), "failed.png"), png, 0o644)
			}
			t.Fatalf("%s tour: %s: %v (at %s)", who, what, err, loc)
		}
	}
	for _, vp := range viewports {
		do("open the dashboard on a "+vp.name, chromedp.EmulateViewport(vp.w, vp.h, vp.opts...),
			chromedp.Navigate(base+"/sites"), chromedp.WaitVisible(chromedp.CSS(".nav")))
		for _, st := range steps {
			do(fmt.Sprintf("on a %s, click %s and wait for %s", vp.name, st.click, st.wait),
				chromedp.Click(chromedp.CSS(st.click)), chromedp.WaitVisible(chromedp.CSS(st.wait)))
			if st.name != "" {
				fitsScreen(t, ctx, st.name+" ("+who+", "+vp.name+")", vp.w)
				screenshot(t, ctx, st.name+"-"+vp.name)
			}
		}
	}
	do("back to the desktop", chromedp.EmulateViewport(1280, 860))
}

// onPhone checks and photographs the page as it is on the phone.
func onPhone(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	phone := viewports[1]
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.EmulateViewport(phone.w, phone.h, phone.opts...)); err != nil {
		t.Fatalf("emulate a phone: %v", err)
	}
	fitsScreen(t, sctx, name+" ("+phone.name+")", phone.w)
	screenshot(t, sctx, name+"-"+phone.name)
	if err := chromedp.Do(sctx, chromedp.EmulateViewport(1280, 860)); err != nil {
		t.Fatalf("back to the desktop: %v", err)
	}
}

// overflow measures the page against the window, naming what sticks out.
const overflow = `(() => {
	const d = document.documentElement, out = [];
	for (const el of document.body.querySelectorAll("*")) {
		const r = el.getBoundingClientRect();
		if (r.right > d.clientWidth + 1 && !el.closest(".scroll, .logs, .nav, .subnav")) {
			out.push(el.tagName.toLowerCase() + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "") + " ends at " + Math.round(r.right));
		}
	}
	return JSON.stringify({scrollWidth: d.scrollWidth, clientWidth: d.clientWidth, innerWidth: window.innerWidth, wide: out.slice(0, 10)});
})()`

// fitsScreen fails the test when the page is wider than the screen
// (width px): the member would have to scroll sideways.
func fitsScreen(t *testing.T, ctx context.Context, page string, width int64) {
	t.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](overflow))
	if err != nil {
		t.Fatalf("measure %s: %v", page, err)
	}
	var m struct {
		ScrollWidth, ClientWidth, InnerWidth int64
		Wide                                 []string
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("measure %s: %v", page, err)
	}
	if m.ScrollWidth > m.InnerWidth || m.ScrollWidth > m.ClientWidth || m.InnerWidth > width {
		t.Errorf("%s is %d px wide on a %d px screen (window %d px): %s", page, m.ScrollWidth, width, m.InnerWidth, strings.Join(m.Wide, "; "))
	}
}

func writeTarGz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// served is what the container answers on path now, "" while it restarts.
func served(container, path string) string {
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Pid}}", container).Output()
	if err != nil {
		return ""
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	if pid == 0 {
		return ""
	}
	code, body, err := netns.Get(pid, "http://127.0.0.1:8080"+path, "")
	if err != nil || code != http.StatusOK {
		return ""
	}
	return body
}

// TestSiteAddress: the panel links to sites the way the front door serves
// them, from darse.yml.
func TestSiteAddress(t *testing.T) {
	def := platform.Default()
	acme := platform.Default()
	acme.ACME = &platform.ACME{CA: platform.LetsEncrypt}
	moved := platform.Default()
	moved.Front.HTTP, moved.Front.HTTPS = "127.0.0.1:8080", "[::]:8443"
	movedACME := moved
	movedACME.ACME = acme.ACME
	for _, c := range []struct {
		name         string
		cfg          platform.Config
		scheme, port string
	}{
		{"default install: plain HTTP on 80", def, "http", ""},
		{"acme: HTTPS on 443", acme, "https", ""},
		{"front door on 8080", moved, "http", "8080"},
		{"acme, front door on 8443", movedACME, "https", "8443"},
	} {
		if scheme, port := siteAddress(c.cfg); scheme != c.scheme || port != c.port {
			t.Errorf("%s: %q %q, want %q %q", c.name, scheme, port, c.scheme, c.port)
		}
	}
}
