package panel

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Members see the next scheduled update on their dashboard once it is
// within its notice, and not before.
func TestDashboardMaintenanceNotice(t *testing.T) {
	run := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	soon := false
	f := newFixture(t, func(cfg *Config) {
		cfg.Maintenance = func(time.Time) (time.Time, bool) { return run, soon }
	})
	f.user("alice", "alice's long password", false, 3)
	b := f.browser()
	b.mustLogin("alice", "alice's long password")
	if p := b.get("/sites"); p.code != http.StatusOK || strings.Contains(p.body, "Maintenance on") {
		t.Fatalf("notice before its time: %d", p.code)
	}
	soon = true
	p := b.get("/sites")
	if p.code != http.StatusOK || !strings.Contains(p.body, "Maintenance on Sunday 6 December 2026 at 04:00 UTC") {
		t.Fatalf("no maintenance notice within its notice: %d\n%s", p.code, p.body)
	}
}
