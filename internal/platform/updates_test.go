package platform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUpdatesInDarseYml(t *testing.T) {
	srv := t.TempDir()
	if err := os.MkdirAll(filepath.Join(srv, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	load := func(s string) (Config, error) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(srv, "conf", ConfigFile), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(srv)
	}
	cfg, err := load("updates: {schedule: \"sun 04:00\"}\n")
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Updates
	if u.MaxAgeDuration() != 15*24*time.Hour || u.NoticeDuration() != 2*24*time.Hour {
		t.Fatalf("defaults: %v %v", u.MaxAgeDuration(), u.NoticeDuration())
	}
	// 2026-12-01 is a Tuesday.
	tue := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	sun := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	if got := u.Next(tue); !got.Equal(sun) {
		t.Errorf("next after %s = %s, want %s", tue, got, sun)
	}
	if got := u.Next(sun); !got.Equal(sun.AddDate(0, 0, 7)) {
		t.Errorf("next after the run itself = %s, want a week later", got)
	}
	if _, soon := u.Maintenance(tue); soon {
		t.Error("maintenance shown 4 days ahead with a 2-day notice")
	}
	if at, soon := u.Maintenance(sun.Add(-47 * time.Hour)); !soon || !at.Equal(sun) {
		t.Errorf("maintenance 47 h ahead: %s %v", at, soon)
	}
	if !u.Due(time.Time{}, tue) || u.Due(sun, sun.Add(time.Hour)) || !u.Due(sun, sun.AddDate(0, 0, 7)) {
		t.Error("Due: never run is due; just run is not; a week later is")
	}

	daily, err := load("updates: {schedule: \"daily 23:30\", max_age: 30d, notice: 1d}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := daily.Updates.Next(tue); !got.Equal(time.Date(2026, 12, 1, 23, 30, 0, 0, time.UTC)) {
		t.Errorf("daily next = %s", got)
	}

	for bad, want := range map[string]string{
		"updates: {schedule: sunday}\n":                      "updates.schedule",
		"updates: {schedule: \"sunday 04:00\"}\n":            `"sunday" is not sun`,
		"updates: {schedule: \"sun 4\"}\n":                   "not a time of day",
		"updates: {schedule: \"sun 24:00\"}\n":               "not a time of day",
		"updates: {schedule: \"sun 04:7\"}\n":                "not a time of day",
		"updates: {schedule: \"sun 04:00\", max_age: 2w}\n":  "updates.max_age",
		"updates: {schedule: \"sun 04:00\", notice: -1d}\n":  "updates.notice",
		"updates: {schedule: \"sun 04:00\", notice: 48h}\n":  "updates.notice",
		"updates: {schedule: \"sun 04:00\", nightly: yes}\n": "nightly",
	} {
		if _, err := load(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error naming %q", bad, err, want)
		}
	}
}
