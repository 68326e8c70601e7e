package panel

import (
	"context"
	"encoding/xml"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/store"
)

var chartNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func atNow(cfg *Config) { cfg.Now = func() time.Time { return chartNow } }

// dayOfHistory stores a day of minute points for site, with a gap of an
// hour (the panel was down), and a week of quarters: what the loop leaves.
func dayOfHistory(t *testing.T, st *store.Store, site string, scale int64) (minutes []store.Point) {
	t.Helper()
	start := chartNow.Add(-24 * time.Hour).Add(time.Minute)
	var pts []store.Point
	for i := 0; i < 1439; i++ {
		if i >= 600 && i < 660 {
			continue
		}
		at := start.Add(time.Duration(i) * time.Minute)
		wave := int64(500 + 400*math.Sin(float64(i)/90))
		pts = append(pts, store.Point{Site: site, Step: store.StepMinute, At: at, CPUMilli: wave * scale,
			Memory: (30<<20 + int64(i)*8<<10) * scale, Receive: (wave * 900) * scale, Transmit: (wave * 4000) * scale})
	}
	minutes = pts
	for q := 0; q < 7*96; q++ {
		at := chartNow.Add(-7 * 24 * time.Hour).Add(time.Duration(q+1) * 15 * time.Minute)
		pts = append(pts, store.Point{Site: site, Step: store.StepQuarter, At: at, CPUMilli: int64(q%96) * 1500 * scale,
			Memory: 40 << 20 * scale, Receive: int64(q) * 10000 * scale, Transmit: int64(q) * 50000 * scale})
	}
	if err := st.AddHistory(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
	return minutes
}

type svgDoc struct {
	XMLName   xml.Name `xml:"svg"`
	Polylines []struct {
		Series string `xml:"data-series,attr"`
		Points string `xml:"points,attr"`
	} `xml:"polyline"`
	Texts []string `xml:"text"`
}

func parseSVG(t *testing.T, p page) svgDoc {
	t.Helper()
	if p.code != http.StatusOK || p.h.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("chart: %d %s\n%.300s", p.code, p.h.Get("Content-Type"), p.body)
	}
	var d svgDoc
	if err := xml.Unmarshal([]byte(p.body), &d); err != nil {
		t.Fatalf("the chart is not SVG: %v\n%.300s", err, p.body)
	}
	return d
}

func coords(t *testing.T, pts string) [][2]float64 {
	t.Helper()
	var out [][2]float64
	for _, xy := range strings.Fields(pts) {
		x, y, ok := strings.Cut(xy, ",")
		fx, err1 := strconv.ParseFloat(x, 64)
		fy, err2 := strconv.ParseFloat(y, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("bad point %q", xy)
		}
		out = append(out, [2]float64{fx, fy})
	}
	return out
}

func TestSiteChartDrawsTheStoredHistory(t *testing.T) {
	f := newFixture(t, atNow)
	f.user("alice", "alice's long password", false, 3)
	f.user("bob", "bob's long password!", false, 3)
	f.site("blog", "alice")
	minutes := dayOfHistory(t, f.store, "blog", 1)
	alice, bob := f.browser(), f.browser()
	alice.mustLogin("alice", "alice's long password")
	bob.mustLogin("bob", "bob's long password!")

	d := parseSVG(t, alice.get("/sites/blog/history.svg?metric=cpu&range=day"))
	// The hour without points splits the line in two.
	if len(d.Polylines) != 2 {
		t.Fatalf("%d polylines, want 2 (one gap)", len(d.Polylines))
	}
	var drawn [][2]float64
	for _, pl := range d.Polylines {
		if pl.Series != "cpu" {
			t.Fatalf("series %q", pl.Series)
		}
		drawn = append(drawn, coords(t, pl.Points)...)
	}
	if len(drawn) != len(minutes) {
		t.Fatalf("%d points drawn, %d stored", len(drawn), len(minutes))
	}
	// Each point where its time and value put it: x over the day, y
	// from the top of the scale (the highest value rounded up, 100%).
	const top = 2.0 // the wave peaks at 900 ms a minute: 1.5%, rounded up to 2
	for i, p := range minutes {
		wantX := float64(chartLeft) + float64(p.At.Sub(chartNow.Add(-24*time.Hour)))/float64(24*time.Hour)*plotW
		v := float64(p.CPUMilli) / 10 / 60
		wantY := float64(chartTop) + plotH - v/top*plotH
		if math.Abs(drawn[i][0]-wantX) > 0.06 || math.Abs(drawn[i][1]-wantY) > 0.06 {
			t.Fatalf("point %d (%s, %.2f%%): drawn at %v, want %.1f,%.1f", i, p.At, v, drawn[i], wantX, wantY)
		}
	}
	if !strings.Contains(strings.Join(d.Texts, "|"), "|2%|") {
		t.Errorf("no 2%% at the top of the scale: %q", d.Texts)
	}

	net := parseSVG(t, alice.get("/sites/blog/history.svg?metric=network&range=week"))
	if len(net.Polylines) != 2 || net.Polylines[0].Series != "rx" || net.Polylines[1].Series != "tx" ||
		len(coords(t, net.Polylines[0].Points)) != 7*96 {
		t.Fatalf("network over the week: %+v", net.Polylines)
	}

	// Bob sees nothing of it; a bad metric is refused by name.
	if p := bob.get("/sites/blog/history.svg?metric=cpu"); p.code != http.StatusNotFound || strings.Contains(p.body, "polyline") {
		t.Fatalf("bob's view of alice's chart: %d", p.code)
	}
	if p := alice.get("/sites/blog/history.svg?metric=disk"); p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, "metric") {
		t.Fatalf("a bad metric: %d\n%.200s", p.code, p.body)
	}
	if p := bob.get("/admin/history.svg?metric=cpu"); p.code != http.StatusNotFound {
		t.Fatalf("bob and the host's chart: %d", p.code)
	}
	// The site page shows the charts as images.
	if p := alice.get("/sites/blog"); !strings.Contains(p.body, `src="/sites/blog/history.svg?metric=memory&amp;range=day"`) {
		t.Fatalf("the site page has no memory chart:\n%s", p.body)
	}
	// No history: an empty chart that says so.
	f.site("new", "alice")
	if d := parseSVG(t, alice.get("/sites/new/history.svg")); len(d.Polylines) != 0 || !strings.Contains(strings.Join(d.Texts, "|"), "No history yet") {
		t.Fatalf("a chart without history: %+v", d)
	}
}

func TestAdminPageShowsHostTopSitesAndAlerts(t *testing.T) {
	f := newFixture(t, atNow)
	f.user("root", "root's long password", true, 3)
	f.user("alice", "alice's long password", false, 3)
	for i, n := range []string{"quiet", "busy", "mid"} {
		f.site(n, "alice")
		dayOfHistory(t, f.store, n, []int64{1, 5, 3}[i])
	}
	dayOfHistory(t, f.store, store.HostSite, 9)
	if _, err := f.store.OpenIncident(context.Background(), store.Incident{Key: "down:busy", Kind: "down", Site: "busy", Message: "site busy is down: 1 of its 1 containers not running", OpenedAt: chartNow}); err != nil {
		t.Fatal(err)
	}
	root := f.browser()
	root.mustLogin("root", "root's long password")
	p := root.get("/admin")
	for _, want := range []string{"site busy is down", `src="/admin/history.svg?metric=cpu&amp;range=day"`, `id="top-sites"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the admin page has no %q", want)
		}
	}
	b, m, q := strings.Index(p.body, `href="/sites/busy#history"`), strings.Index(p.body, `href="/sites/mid#history"`), strings.Index(p.body, `href="/sites/quiet#history"`)
	if b < 0 || m < b || q < m {
		t.Errorf("top sites not busiest first: busy %d, mid %d, quiet %d", b, m, q)
	}
	if d := parseSVG(t, root.get("/admin/history.svg?metric=memory")); len(d.Polylines) != 2 {
		t.Errorf("the host's memory: %d polylines", len(d.Polylines))
	}
	if err := f.store.ResolveIncident(context.Background(), "down:busy", chartNow); err != nil {
		t.Fatal(err)
	}
	if p := root.get("/admin"); strings.Contains(p.body, "site busy is down") {
		t.Error("a resolved incident still shown")
	}
}
