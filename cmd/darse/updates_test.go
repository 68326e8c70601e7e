package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/platform"
)

// `images update --if-due`: due when never run, then not until the
// schedule's next slot after the recorded start; nothing without a schedule.
func TestUpdatesDue(t *testing.T) {
	srv := t.TempDir()
	os.MkdirAll(filepath.Join(srv, "conf"), 0o755)
	if err := os.WriteFile(filepath.Join(srv, "conf", platform.ConfigFile), []byte("updates: {schedule: \"daily 04:00\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := platform.Load(srv)
	if err != nil {
		t.Fatal(err)
	}
	if due, msg, err := updatesDue(srv, nil, time.Now()); due || err != nil || !strings.Contains(msg, "no updates.schedule") {
		t.Errorf("no schedule: %v %q %v", due, msg, err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if due, _, err := updatesDue(srv, cfg.Updates, now); !due || err != nil {
		t.Fatalf("never run: due %v, %v", due, err)
	}
	if err := recordUpdates(srv, now); err != nil {
		t.Fatal(err)
	}
	if due, msg, err := updatesDue(srv, cfg.Updates, now.Add(time.Hour)); due || err != nil || !strings.Contains(msg, "2026-12-02T04:00:00Z") {
		t.Errorf("an hour after a run: %v %q %v", due, msg, err)
	}
	if due, _, _ := updatesDue(srv, cfg.Updates, time.Date(2026, 12, 2, 4, 1, 0, 0, time.UTC)); !due {
		t.Error("not due after the next slot")
	}
	os.WriteFile(filepath.Join(srv, "conf", "updates.last"), []byte("garbage\n"), 0o644)
	if _, _, err := updatesDue(srv, cfg.Updates, now); err == nil || !strings.Contains(err.Error(), "updates.last") {
		t.Errorf("unreadable record: %v", err)
	}
}
