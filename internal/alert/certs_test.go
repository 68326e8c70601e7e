package alert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pemCert is a self-signed certificate for domain expiring at notAfter.
func pemCert(t *testing.T, domain string, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

type acmeCert struct {
	Domain      map[string]any `json:"domain"`
	Certificate []byte         `json:"certificate"`
	Key         string         `json:"key"`
	Store       string         `json:"Store"`
}

// writeACME writes an acme.json as Traefik v3 does: per resolver, its
// account and certificates (keys beside them, here not even base64, to
// show they are never decoded).
func writeACME(t *testing.T, path string, certs map[string][]byte) {
	t.Helper()
	var list []acmeCert
	for domain, c := range certs {
		list = append(list, acmeCert{Domain: map[string]any{"main": domain}, Certificate: c, Key: "!! a private key, never read !!", Store: "default"})
	}
	b, err := json.Marshal(map[string]any{"darse": map[string]any{
		"Account":      map[string]any{"Email": "ops@example.org", "Registration": map[string]any{"uri": "https://ca/acct/1"}},
		"Certificates": list,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReadCerts(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	path := filepath.Join(dir, "acme.json")
	if cs, err := ReadCerts(path); err != nil || cs != nil {
		t.Fatalf("no file: %v, %v; want nothing", cs, err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if cs, err := ReadCerts(path); err != nil || cs != nil {
		t.Fatalf("empty file: %v, %v; want nothing", cs, err)
	}
	writeACME(t, path, map[string][]byte{
		"a.example.org": pemCert(t, "a.example.org", now.Add(60*24*time.Hour)),
		"b.example.org": []byte("not a certificate"),
	})
	cs, err := ReadCerts(path)
	if err == nil || !strings.Contains(err.Error(), `domain "b.example.org"`) {
		t.Errorf("a broken certificate: %v, want an error naming b.example.org", err)
	}
	if len(cs) != 1 || cs[0].Domain != "a.example.org" || cs[0].Resolver != "darse" || !cs[0].NotAfter.Equal(now.Add(60*24*time.Hour)) {
		t.Errorf("certificates %+v, want a.example.org's", cs)
	}
	if err := os.WriteFile(path, []byte(`{"darse": {"Certificates": "x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCerts(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("broken JSON: %v, want an error naming the file", err)
	}
}

// TestCertificateNotRenewing: a certificate 10 days from expiry opens one
// incident (one message, however many checks), one 60 days away none;
// once Traefik has renewed it, the incident is resolved.
func TestCertificateNotRenewing(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	h := &hook{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	clk := &clock{time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	acme := filepath.Join(t.TempDir(), "acme.json")
	writeACME(t, acme, map[string][]byte{
		"old.example.org":   pemCert(t, "old.example.org", clk.t.Add(10*24*time.Hour)),
		"fresh.example.org": pemCert(t, "fresh.example.org", clk.t.Add(60*24*time.Hour)),
	})
	w := New(Config{Webhook: &Webhook{URL: srv.URL}, DiskFreePercent: -1}, st, &fakePasses{}, "", slog.New(slog.DiscardHandler))
	w.Now, w.ACMEFile = clk.now, acme
	for range 3 {
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
		clk.t = clk.t.Add(time.Minute)
	}
	got := h.messages()
	if len(got) != 1 || got[0].Kind != KindCert || got[0].State != "open" ||
		!strings.Contains(got[0].Summary, "old.example.org not renewing") || !strings.Contains(got[0].Summary, "in 240h") {
		t.Fatalf("after three checks: %+v", got)
	}
	writeACME(t, acme, map[string][]byte{
		"old.example.org":   pemCert(t, "old.example.org", clk.t.Add(90*24*time.Hour)),
		"fresh.example.org": pemCert(t, "fresh.example.org", clk.t.Add(60*24*time.Hour)),
	})
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	got = h.messages()
	if len(got) != 2 || got[1].State != "resolved" || got[1].Incident != got[0].Incident {
		t.Fatalf("after renewal: %+v", got)
	}
}
