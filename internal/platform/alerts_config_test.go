package platform

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAlertsInDarseYml(t *testing.T) {
	srv := t.TempDir()
	os.MkdirAll(filepath.Join(srv, "conf"), 0o755)
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(srv, "conf", ConfigFile), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("alerts:\n  down_after: 90s\n  smtp:\n    host: 127.0.0.1\n    port: 2525\n    from: darse@example.org\n    to: [ops@example.org]\n  webhook:\n    url: https://hooks.example.org/darse\n")
	cfg, err := Load(srv)
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Alerts; a == nil || a.DownAfter != 90*time.Second || a.SMTP.Port != 2525 || a.Webhook.URL != "https://hooks.example.org/darse" {
		t.Fatalf("alerts: %+v", cfg.Alerts)
	}
	write("alerts:\n  smtp:\n    host: 127.0.0.1\n    port: 25\n    from: not-an-address\n    to: [ops@example.org]\n")
	if _, err := Load(srv); err == nil || !strings.Contains(err.Error(), "alerts.smtp.from") {
		t.Fatalf("a bad from: %v", err)
	}
	write("alerts:\n  smtp:\n    host: 127.0.0.1\n    prot: 25\n")
	if _, err := Load(srv); err == nil || !strings.Contains(err.Error(), "prot") {
		t.Fatalf("an unknown key: %v", err)
	}
}
