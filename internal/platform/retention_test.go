package platform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRetentionInDarseYml(t *testing.T) {
	srv := t.TempDir()
	if err := os.MkdirAll(filepath.Join(srv, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(srv, "conf", ConfigFile), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const day = 24 * time.Hour
	write("domain: example.org\n")
	cfg, err := Load(srv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Retention.ArchivesAge() != 90*day || cfg.Retention.OperationsAge() != 180*day {
		t.Fatalf("defaults: %v %v", cfg.Retention.ArchivesAge(), cfg.Retention.OperationsAge())
	}
	write("retention: {archives: 7d, operations: 30d}\n")
	if cfg, err = Load(srv); err != nil {
		t.Fatal(err)
	}
	if cfg.Retention.ArchivesAge() != 7*day || cfg.Retention.OperationsAge() != 30*day {
		t.Fatalf("set: %v %v", cfg.Retention.ArchivesAge(), cfg.Retention.OperationsAge())
	}
	for _, c := range []struct{ yml, key string }{
		{"retention: {archives: 0d}\n", "retention.archives"},
		{"retention: {archives: -3d}\n", "retention.archives"},
		{"retention: {archives: 90}\n", "retention.archives"},
		{"retention: {operations: 12h}\n", "retention.operations"},
		{"retention: {operations: 1.5d}\n", "retention.operations"},
		{"retention: {operations: 999999999999999999999d}\n", "retention.operations"},
		{"retention: {archive: 90d}\n", "archive"},
	} {
		write(c.yml)
		if _, err := Load(srv); err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%q: got %v, want an error naming %s", c.yml, err, c.key)
		}
	}
}
