package alert

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darse/darse/internal/alert/alerttest"
	"github.com/darse/darse/internal/metrics"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// fakePasses answers the pass a test sets.
type fakePasses struct {
	mu sync.Mutex
	p  metrics.Pass
}

func (f *fakePasses) Collect(ctx context.Context) (*metrics.Pass, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.p
	p.Sites = append([]metrics.Site(nil), f.p.Sites...)
	return &p, nil
}

func (f *fakePasses) set(s ...metrics.Site) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.p.Sites = s
}

func openStore(t *testing.T, sites ...string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "darse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, n := range sites {
		if err := st.CreateSite(context.Background(), site.Spec{Name: n, Template: "static", Owner: "alice", Domain: n + ".example.org"}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// hook is a webhook receiver recording what it is sent; fail makes it
// answer 503.
type hook struct {
	mu   sync.Mutex
	got  []Message
	fail bool
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var m Message
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &m); err != nil || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	h.got = append(h.got, m)
}

func (h *hook) messages() []Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Message(nil), h.got...)
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestDownOpensOnceAndResolvesOnce(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "blog", "shop")
	h := &hook{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	passes := &fakePasses{}
	up := metrics.Site{Name: "blog", Containers: 1, Running: 1}
	down := metrics.Site{Name: "blog", Containers: 1}
	shop := metrics.Site{Name: "shop", Containers: 2, Running: 2}
	passes.set(up, shop)
	w := New(Config{Webhook: &Webhook{URL: srv.URL}, DownAfter: 2 * time.Minute, DiskFreePercent: -1}, st, passes, "", slog.New(slog.DiscardHandler))
	clk := &clock{time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	w.Now = clk.now
	check := func() {
		t.Helper()
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
		clk.t = clk.t.Add(time.Minute)
	}
	check()
	passes.set(down, shop)
	check() // down for 0
	check() // 1 minute: not yet
	if n := len(h.messages()); n != 0 {
		t.Fatalf("told before down_after: %+v", h.messages())
	}
	check() // 2 minutes: open
	for range 5 {
		check()
	}
	got := h.messages()
	if len(got) != 1 || got[0].State != "open" || got[0].Kind != KindDown || got[0].Site != "blog" || !strings.Contains(got[0].Summary, "1 of its 1 containers not running") {
		t.Fatalf("after 7 minutes down: %+v", got)
	}
	passes.set(up, shop)
	check()
	check()
	got = h.messages()
	if len(got) != 2 || got[1].State != "resolved" || got[1].Incident != got[0].Incident {
		t.Fatalf("after recovery: %+v", got)
	}
	if open, _ := st.OpenIncidents(ctx); len(open) != 0 {
		t.Fatalf("open incidents after recovery: %+v", open)
	}
}

func TestStoppedOnPurposeIsNoIncident(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "blog")
	// A stop that ran: the site is meant to be stopped.
	id, err := st.EnqueueOp(ctx, store.Operation{Kind: "stop", Site: "blog", Owner: "alice", User: "alice", Args: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if op, err := st.ClaimOp(ctx); err != nil || op.ID != id {
		t.Fatalf("claim: %v %v", op, err)
	}
	if err := st.FinishOp(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	passes := &fakePasses{}
	passes.set(metrics.Site{Name: "blog", Containers: 1})
	h := &hook{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	w := New(Config{Webhook: &Webhook{URL: srv.URL}, DownAfter: time.Nanosecond, DiskFreePercent: -1}, st, passes, "", slog.New(slog.DiscardHandler))
	for range 3 {
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.messages(); len(got) != 0 {
		t.Fatalf("a site being stopped raised: %+v", got)
	}
}

func TestFailedDeliveryIsTriedAgainNotRepeated(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "blog")
	h := &hook{fail: true}
	srv := httptest.NewServer(h)
	defer srv.Close()
	passes := &fakePasses{}
	passes.set(metrics.Site{Name: "blog", Containers: 1, Running: 1, OOMKills: 0})
	w := New(Config{Webhook: &Webhook{URL: srv.URL}, OOMQuiet: 10 * time.Minute, DiskFreePercent: -1}, st, passes, "", slog.New(slog.DiscardHandler))
	clk := &clock{time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	w.Now = clk.now
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	passes.set(metrics.Site{Name: "blog", Containers: 1, Running: 1, OOMKills: 2})
	if err := w.Check(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a failing webhook: %v", err)
	}
	h.mu.Lock()
	h.fail = false
	h.mu.Unlock()
	for range 3 {
		clk.t = clk.t.Add(time.Minute)
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := h.messages()
	if len(got) != 1 || got[0].Kind != KindOOM || !strings.Contains(got[0].Summary, "2 kills") {
		t.Fatalf("OOM told: %+v", got)
	}
	clk.t = clk.t.Add(10 * time.Minute)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.messages(); len(got) != 2 || got[1].State != "resolved" {
		t.Fatalf("after a quiet period: %+v", got)
	}
}

func TestFirewallApplyFailures(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	var mu sync.Mutex
	applies, failures := 3, 0
	fw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		io.WriteString(w, "# HELP x\ndarse_fw_applies_total "+strconv.Itoa(applies)+"\ndarse_fw_apply_failures_total "+strconv.Itoa(failures)+"\n")
	}))
	defer fw.Close()
	h := &hook{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	w := New(Config{Webhook: &Webhook{URL: srv.URL}, FirewallMetrics: fw.URL, DiskFreePercent: -1}, st, &fakePasses{}, "", slog.New(slog.DiscardHandler))
	step := func(a, f int) {
		t.Helper()
		mu.Lock()
		applies, failures = a, f
		mu.Unlock()
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	step(3, 0)
	step(3, 1) // failing
	step(3, 1) // still: no repeat
	step(3, 2)
	if got := h.messages(); len(got) != 1 || got[0].Kind != KindFirewall || got[0].State != "open" {
		t.Fatalf("firewall failing: %+v", got)
	}
	step(4, 2) // applied
	if got := h.messages(); len(got) != 2 || got[1].State != "resolved" {
		t.Fatalf("firewall applied again: %+v", got)
	}
	fw.Close() // the watcher gone
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.messages(); len(got) != 3 || !strings.Contains(got[2].Summary, "does not answer") {
		t.Fatalf("firewall watcher gone: %+v", got)
	}
}

func TestValidate(t *testing.T) {
	good := SMTP{Host: "127.0.0.1", Port: 25, From: "darse@example.org", To: []string{"ops@example.org"}}
	cases := []struct {
		name string
		cfg  Config
		want string // "" valid, else the key named
	}{
		{"smtp", Config{SMTP: &good}, ""},
		{"webhook", Config{Webhook: &Webhook{URL: "https://hooks.example.org/x"}}, ""},
		{"none", Config{}, "alerts.smtp"},
		{"port", Config{SMTP: &SMTP{Host: "h", Port: 0, From: "a@b.c", To: []string{"d@e.f"}}}, "alerts.smtp.port"},
		{"header injection", Config{SMTP: &SMTP{Host: "h", Port: 25, From: "a@b.c\r\nBcc: x@y.z", To: []string{"d@e.f"}}}, "alerts.smtp.from"},
		{"named to", Config{SMTP: &SMTP{Host: "h", Port: 25, From: "a@b.c", To: []string{"Ops <d@e.f>"}}}, "alerts.smtp.to[0]"},
		{"no to", Config{SMTP: &SMTP{Host: "h", Port: 25, From: "a@b.c"}}, "alerts.smtp.to"},
		{"user alone", Config{SMTP: &SMTP{Host: "h", Port: 25, From: "a@b.c", To: []string{"d@e.f"}, Username: "u"}}, "alerts.smtp.username"},
		{"relative password", Config{SMTP: &SMTP{Host: "h", Port: 25, From: "a@b.c", To: []string{"d@e.f"}, Username: "u", PasswordFile: "pw"}}, "alerts.smtp.password_file"},
		{"webhook scheme", Config{Webhook: &Webhook{URL: "ftp://x"}}, "alerts.webhook.url"},
		{"webhook creds", Config{Webhook: &Webhook{URL: "https://u:p@x/"}}, "alerts.webhook.url"},
		{"interval", Config{SMTP: &good, Interval: time.Millisecond}, "alerts.interval"},
		{"disk", Config{SMTP: &good, DiskFreePercent: 100}, "alerts.disk_free_percent"},
		{"cert days", Config{SMTP: &good, CertRenewDays: 30}, "alerts.cert_renew_days"},
		{"cert off", Config{SMTP: &good, CertRenewDays: -1}, ""},
		{"firewall", Config{SMTP: &good, FirewallMetrics: "127.0.0.1:9465"}, "alerts.firewall_metrics"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want+" ")):
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.want)
		}
	}
}

// TestMailThroughRealSMTP: Mailpit on loopback receives one mail when a
// site goes down and one when it is back, and nothing while it lasts.
func TestMailThroughRealSMTP(t *testing.T) {
	mp := alerttest.StartMailpit(t)
	ctx := context.Background()
	st := openStore(t, "blog")
	passes := &fakePasses{}
	passes.set(metrics.Site{Name: "blog", Containers: 1})
	cfg := Config{SMTP: &SMTP{Host: mp.SMTPHost, Port: mp.SMTPPort, From: "darse@example.org", To: []string{"ops@example.org", "oncall@example.org"}},
		DownAfter: time.Nanosecond, DiskFreePercent: -1}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := New(cfg, st, passes, "", slog.New(slog.DiscardHandler))
	for range 3 {
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	passes.set(metrics.Site{Name: "blog", Containers: 1, Running: 1})
	for range 3 {
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ms := mp.WaitMessages(t, 2, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if again, _ := mp.Messages(); len(again) != 2 {
		t.Fatalf("want 2 messages, have %d", len(again))
	}
	if !strings.Contains(ms[0].Subject, "ALERT: site blog is down") || !strings.Contains(ms[1].Subject, "RESOLVED: site blog is down") {
		t.Fatalf("subjects: %q, %q", ms[0].Subject, ms[1].Subject)
	}
	if ms[0].From.Address != "darse@example.org" || len(ms[0].To) != 2 || ms[0].To[1].Address != "oncall@example.org" {
		t.Fatalf("addresses: %+v", ms[0])
	}
}
