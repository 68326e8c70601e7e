package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// darse panel --check-health passes on 200 only, and says what it got.
func TestCheckHealth(t *testing.T) {
	var notReady atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if notReady.Load() {
			http.Error(w, "engine: unreachable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := checkHealth(ctx, srv.URL+"/readyz"); err != nil {
		t.Fatalf("a ready panel: %v", err)
	}
	notReady.Store(true)
	if err := checkHealth(ctx, srv.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "engine: unreachable") {
		t.Fatalf("a panel not ready: %v", err)
	}
	if err := checkHealth(ctx, "::not a url"); err == nil {
		t.Fatal("a bad URL: no error")
	}
	// Through the command, as a healthcheck runs it: no store, no engine needed.
	t.Setenv("DARSE_SRV", t.TempDir())
	if _, errs, code := runCLI(t, "", "panel", "--check-health", srv.URL+"/readyz"); code == 0 || !strings.Contains(errs, "503") {
		t.Errorf("darse panel --check-health on a 503: exit %d, %q", code, errs)
	}
	notReady.Store(false)
	if out, errs, code := runCLI(t, "", "panel", "--check-health", srv.URL+"/readyz"); code != 0 || out != "" {
		t.Errorf("darse panel --check-health on a 200: exit %d, %q %q", code, out, errs)
	}
}
