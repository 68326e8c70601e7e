package platform

import (
	"strings"
	"testing"
	"time"
)

func TestLoadBackup(t *testing.T) {
	cfg, err := Load(writeConfig(t, "backup:\n  repository: rest:http://127.0.0.1:8000/darse\n  password_file: /srv/conf/restic.pass\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Backup
	if b == nil || b.Repository != "rest:http://127.0.0.1:8000/darse" || b.PasswordFile != "/srv/conf/restic.pass" {
		t.Fatalf("backup = %+v", b)
	}
	if b.Keep != DefaultKeep {
		t.Errorf("keep left out = %+v, want the default %+v", b.Keep, DefaultKeep)
	}
	cfg, err = Load(writeConfig(t, "backup: {repository: /var/backups/darse, password_file: /p, keep: {daily: 3}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Backup.Keep != (Keep{Daily: 3}) {
		t.Errorf("keep = %+v, want only daily 3", cfg.Backup.Keep)
	}
	if bs, cs := cfg.Backup.Schedules(); bs.Period != 24*time.Hour || cs.Period != 7*24*time.Hour {
		t.Errorf("default schedules: backups every %v, checks every %v; want daily and weekly", bs.Period, cs.Period)
	}
	cfg, err = Load(writeConfig(t, "backup: {repository: /r, password_file: /p, schedule: 12h, check: \"off\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if bs, cs := cfg.Backup.Schedules(); bs.Period != 12*time.Hour || cs.Period != 0 {
		t.Errorf("schedules: backups every %v, checks every %v; want 12h and never", bs.Period, cs.Period)
	}
	if ds, n := cfg.Backup.Drills(); ds.Period != 7*24*time.Hour || n != 3 {
		t.Errorf("drills left out: every %v, %d sites; want weekly, 3 sites", ds.Period, n)
	}
	if cfg, err := Load(writeConfig(t, "domain: example.org\n")); err != nil || cfg.Backup != nil {
		t.Errorf("no backup section: %+v, %v", cfg.Backup, err)
	}
}

func TestLoadBackupRefuses(t *testing.T) {
	for body, want := range map[string]string{
		"backup: {password_file: /p}\n":                                        "backup.repository",
		"backup: {repository: backups, password_file: /p}\n":                   "must be an absolute path or start with one of",
		"backup: {repository: 'rest:', password_file: /p}\n":                   "backup.repository",
		"backup: {repository: /r}\n":                                           "backup.password_file",
		"backup: {repository: /r, password_file: pass.txt}\n":                  "backup.password_file",
		"backup: {repository: /r, password_file: /p, keep: {weekly: -1}}\n":    "backup.keep.weekly",
		"backup: {repository: /r, password_file: /p, keep: {hourly: 3}}\n":     "hourly",
		"backup: {repository: \"/r\\nx\", password_file: /p}\n":                "must be one line",
		"backup: {repository: /r, password_file: /p, keep: {monthly: 5000}}\n": "backup.keep.monthly",
		"backup: {repository: /r, password_file: /p, schedule: 5m}\n":          "backup.schedule",
		"backup: {repository: /r, password_file: /p, schedule: sometimes}\n":   "backup.schedule",
		"backup: {repository: /r, password_file: /p, check: monthly}\n":        "backup.check",
		"backup: {repository: /r, password_file: /p, drill: 10m}\n":            "backup.drill",
		"backup: {repository: /r, password_file: /p, drill_sample: -1}\n":      "backup.drill_sample",
	} {
		if _, err := Load(writeConfig(t, body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to mention %q", body, err, want)
		}
	}
}
