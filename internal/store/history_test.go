package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func minutes(site string, from time.Time, n int, cpu int64) []Point {
	var out []Point
	for i := 0; i < n; i++ {
		out = append(out, Point{Site: site, Step: StepMinute, At: from.Add(time.Duration(i) * time.Minute),
			CPUMilli: cpu, Memory: int64(1000 + i), Receive: 10, Transmit: 20})
	}
	return out
}

func TestHistoryFoldsAndPrunes(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	for _, n := range []string{"blog", "shop"} {
		if err := s.CreateSite(ctx, spec(n, n+".example.org")); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var pts []Point
	pts = append(pts, minutes("blog", start, 40, 500)...)
	pts = append(pts, minutes("shop", start, 40, 100)...)
	pts = append(pts, minutes("gone", start, 5, 100)...)
	pts = append(pts, minutes(HostSite, start, 40, 600)...)
	if err := s.AddHistory(ctx, pts); err != nil {
		t.Fatal(err)
	}
	now := start.Add(40 * time.Minute) // quarters 10:00 and 10:15 finished, 10:30 not
	for range 2 {                      // twice: the same outcome
		if err := s.MaintainHistory(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	q, err := s.History(ctx, "blog", StepQuarter, start)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 2 || !q[0].At.Equal(start) || q[0].CPUMilli != 15*500 || q[0].Memory != 1014 || q[0].Receive != 150 || q[1].Memory != 1029 {
		t.Fatalf("blog's quarters: %+v", q)
	}
	if host, _ := s.History(ctx, HostSite, StepQuarter, start); len(host) != 2 {
		t.Fatalf("the host's quarters: %+v", host)
	}
	if gone, _ := s.History(ctx, "gone", StepMinute, start); len(gone) != 0 {
		t.Fatalf("a site not in the store keeps its history: %+v", gone)
	}
	top, err := s.TopSites(ctx, start, 5)
	if err != nil || len(top) != 2 || top[0].Site != "blog" || top[0].CPUMilli != 30*500 || top[1].Site != "shop" {
		t.Fatalf("top sites: %+v %v", top, err)
	}

	// A day later the minutes are gone, the quarters stay for a week.
	if err := s.MaintainHistory(ctx, start.Add(25*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.History(ctx, "blog", StepMinute, start); len(m) != 0 {
		t.Fatalf("minutes older than a day kept: %d", len(m))
	}
	if q, _ := s.History(ctx, "blog", StepQuarter, start); len(q) != 2 {
		t.Fatalf("quarters after a day: %+v", q)
	}
	if err := s.MaintainHistory(ctx, start.Add(8*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if q, _ := s.History(ctx, "blog", StepQuarter, start); len(q) != 0 {
		t.Fatalf("quarters older than a week kept: %+v", q)
	}
	if err := s.AddHistory(ctx, []Point{{Site: "blog", Step: 30, At: start}}); err == nil {
		t.Fatal("a point of step 30 was taken")
	}
}

// TestHistorySize fills a full week for a few sites as the loop leaves it
// and measures the bytes a row costs, for the bound at 1,000 sites.
func TestHistorySize(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a database: skipped with -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "conf", "darse.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	const sites = 20
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	base := fileSize(t, path)
	for i := range sites {
		name := fmt.Sprintf("site-%03d", i)
		var pts []Point
		for m := 0; m < 1440; m++ {
			pts = append(pts, Point{Site: name, Step: StepMinute, At: start.Add(time.Duration(m) * time.Minute),
				CPUMilli: int64(m % 3000), Memory: 40<<20 + int64(m)*4096, Receive: int64(m * 1500), Transmit: int64(m * 9000)})
		}
		for q := 0; q < 672; q++ {
			pts = append(pts, Point{Site: name, Step: StepQuarter, At: start.Add(-7 * 24 * time.Hour).Add(time.Duration(q) * 15 * time.Minute),
				CPUMilli: int64(q * 700), Memory: 50 << 20, Receive: int64(q * 22000), Transmit: int64(q * 135000)})
		}
		if err := s.AddHistory(ctx, pts); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	rows := sites * (1440 + 672)
	per := float64(fileSize(t, path)-base) / float64(rows)
	t.Logf("%d rows: %.1f bytes a row; 1,000 sites: %.0f MB", rows, per, per*1001*(1440+15+672)/1e6)
	if per > 80 {
		t.Errorf("a history row takes %.1f bytes: more than the 80 the README counts", per)
	}
	s.Close()
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestIncidentsOpenOnce(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	in := Incident{Key: "down:blog", Kind: "down", Site: "blog", Message: "blog is down", OpenedAt: at}
	if fresh, err := s.OpenIncident(ctx, in); err != nil || !fresh {
		t.Fatalf("first open: %v %v", fresh, err)
	}
	if fresh, err := s.OpenIncident(ctx, in); err != nil || fresh {
		t.Fatalf("second open of a lasting incident: %v %v", fresh, err)
	}
	untold, err := s.UntoldIncidents(ctx, 3)
	if err != nil || len(untold) != 1 {
		t.Fatalf("untold: %+v %v", untold, err)
	}
	if err := s.MarkIncidentTold(ctx, untold[0].ID, false, 1); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.UntoldIncidents(ctx, 3); len(again) != 1 { // the webhook still to tell
		t.Fatalf("told by mail only: %+v", again)
	}
	if untold, _ := s.UntoldIncidents(ctx, 1); len(untold) != 0 {
		t.Fatalf("told by mail, untold by mail: %+v", untold)
	}
	if err := s.MarkIncidentTold(ctx, untold[0].ID, false, 2); err != nil {
		t.Fatal(err)
	}
	if untold, _ := s.UntoldIncidents(ctx, 3); len(untold) != 0 {
		t.Fatalf("told, still untold: %+v", untold)
	}
	if err := s.ResolveIncident(ctx, "down:blog", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	untold, _ = s.UntoldIncidents(ctx, 3)
	if len(untold) != 1 || untold[0].ResolvedAt.IsZero() || untold[0].ToldOpen != 3 {
		t.Fatalf("resolved, untold: %+v", untold)
	}
	// The same condition again is a new incident.
	if fresh, err := s.OpenIncident(ctx, in); err != nil || !fresh {
		t.Fatalf("open after resolve: %v %v", fresh, err)
	}
	if open, _ := s.OpenIncidents(ctx); len(open) != 1 || open[0].ID == untold[0].ID {
		t.Fatalf("open incidents: %+v", open)
	}
}
