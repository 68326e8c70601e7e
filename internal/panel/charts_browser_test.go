package panel

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/testenv"
)

// TestChartsInBrowser: a real chromium shows the site page and the admin
// page with a day of history, every chart image loaded; the screenshots
// are kept in the test's temporary folder (-v prints where).
func TestChartsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: skipped with -short (needs chromium)")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if testenv.Required() {
			t.Fatal("integration test cannot run: chromium is not installed (DARSE_INTEGRATION=require)")
		}
		t.Skip("integration test: chromium is not installed")
	}
	f := newFixture(t, atNow)
	f.user("root", "root's long password", true, 3)
	f.user("alice", "alice's long password", false, 3)
	f.site("blog", "alice")
	f.site("shop", "alice")
	dayOfHistory(t, f.store, "blog", 1)
	dayOfHistory(t, f.store, "shop", 3)
	dayOfHistory(t, f.store, store.HostSite, 4)
	if _, err := f.store.OpenIncident(context.Background(), store.Incident{Key: "oom:shop", Kind: "oom", Site: "shop", Message: "site shop: a process was killed for exceeding the site's memory limit (1 kills counted)", OpenedAt: chartNow}); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("proxy-server", "direct://"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("force-device-scale-factor", "1"))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	type css = chromedp.CSS
	// Kept where the other browser tests keep theirs (DARSE_ARTIFACTS,
	// else artifacts/ at the repository's root), to be looked at.
	dir := os.Getenv("DARSE_ARTIFACTS")
	if dir == "" {
		dir, _ = filepath.Abs("../../artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	login := func(name, pw string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate(f.http.URL+"/login"),
			chromedp.WaitVisible(css("#name")),
			chromedp.SendKeys(css("#name"), name),
			chromedp.SendKeys(css("#password"), pw),
			chromedp.Submit(css("#password")),
			chromedp.WaitVisible(css("nav.nav")),
		); err != nil {
			t.Fatalf("log in as %s: %v", name, err)
		}
	}
	// loaded counts the page's chart images the browser decoded.
	shot := func(path, wait, name string, want int) {
		t.Helper()
		const imgs = `Array.from(document.querySelectorAll('img[src*="history.svg"]')).filter(i => i.loading !== 'lazy')`
		if err := chromedp.Do(ctx, chromedp.Navigate(f.http.URL+path), chromedp.WaitVisible(css(wait))); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](imgs+`.every(i => i.complete)`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("%s: charts not loaded: %v", path, err)
		}
		loaded, err1 := chromedp.Run(ctx, chromedp.Evaluate[int](imgs+`.filter(i => i.naturalWidth > 0).length`))
		total, err2 := chromedp.Run(ctx, chromedp.Evaluate[int](imgs+`.length`))
		png, err3 := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if total != want || loaded != want {
			t.Errorf("%s: %d of %d charts drawn, want %d", path, loaded, total, want)
		}
		p := filepath.Join(dir, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	login("alice", "alice's long password")
	shot("/sites/blog", "#history", "site-history", 3)
	if err := chromedp.Do(ctx, chromedp.Submit(css(`form[action="/logout"] button`)), chromedp.WaitVisible(css("#name"))); err != nil {
		t.Fatalf("log out: %v", err)
	}
	login("root", "root's long password")
	shot("/admin", "#host-history", "admin-history", 3+2) // host's three, a CPU chart per top site
}
