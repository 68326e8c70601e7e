package main

// The platform domain's wildcard certificate through ACME DNS-01
// (acme.dns): the real Traefik orders it from Pebble, writing the challenge
// records into a real DNS server (Debian's bind9 named, a child process on
// a loopback port) by RFC 2136 updates signed with TSIG; Pebble checks them
// by asking that same server. All traffic stays on loopback.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/testenv"
)

// tsigKeyName is the TSIG key the test's named accepts updates signed with.
const tsigKeyName = "darse-acme-test"

// namedServer runs named on 127.0.0.1:port, primary for domain (updates
// signed with the key whose secret it returns are allowed) and for
// example.net, where every name resolves to 127.0.0.1 (custom domains,
// which Pebble validates by TLS-ALPN on the front door).
func namedServer(t *testing.T, domain string) (addr, secret string, log *testenv.Buffer) {
	t.Helper()
	named, err := exec.LookPath("named")
	if err != nil {
		named = "/usr/sbin/named"
	}
	if _, err := os.Stat(named); err != nil {
		if testenv.Required() {
			t.Fatal("integration test cannot run: named (Debian's bind9) is not installed (DARSE_INTEGRATION=require)")
		}
		t.Skip("integration test: named (Debian's bind9) is not installed")
	}
	key := make([]byte, 32)
	rand.Read(key)
	secret = base64.StdEncoding.EncodeToString(key)
	dir := t.TempDir()
	port := freePort(t)
	soa := func(origin string) string {
		return fmt.Sprintf("$TTL 5\n@ IN SOA ns.%s. hostmaster.%s. 1 60 60 600 5\n@ IN NS ns.%s.\nns IN A 127.0.0.1\n", origin, origin, origin)
	}
	files := map[string]string{
		"platform.zone": soa(domain),
		"custom.zone":   soa("example.net") + "* IN A 127.0.0.1\n",
		"named.conf": fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file none;
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
controls { };
key "%[3]s." { algorithm hmac-sha256; secret "%[4]s"; };
zone "%[5]s" { type primary; file "%[1]s/platform.zone"; allow-update { key "%[3]s."; }; };
zone "example.net" { type primary; file "%[1]s/custom.zone"; };
`, dir, port, tsigKeyName, secret, domain),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	log = &testenv.Buffer{}
	cmd := exec.Command(named, "-g", "-c", filepath.Join(dir, "named.conf"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("named: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("named log:\n%s", log)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(log.String(), "running") {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("named exited: %v\n%s", err, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("named did not start:\n%s", log)
		}
	}
	return fmt.Sprintf("127.0.0.1:%d", port), secret, log
}

func orders(log *testenv.Buffer) int { return strings.Count(log.String(), "Added order") }

// servedTLS fetches https://host/ from addr (SNI host), trusting pool, until
// the certificate verifies, ok accepts it and the answer is want (and
// wantBody, if set); it returns that certificate.
func servedTLS(t *testing.T, addr, host string, pool *x509.CertPool, within time.Duration, ok func(*x509.Certificate) bool, want int, wantBody string) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: host},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}}
		resp, err := c.Get("https://" + host + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cert := resp.TLS.PeerCertificates[0]
			if ok(cert) && resp.StatusCode == want && (wantBody == "" || string(b) == wantBody) {
				return cert
			}
			err = fmt.Errorf("certificate for %v, answer %d %q, want %d %q", cert.DNSNames, resp.StatusCode, b, want, wantBody)
		}
		if time.Now().After(deadline) {
			t.Fatalf("https %s (%s): %v", host, addr, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func isWildcard(domain string) func(*x509.Certificate) bool {
	return func(c *x509.Certificate) bool {
		names := slices.Clone(c.DNSNames)
		slices.Sort(names)
		return slices.Equal(names, []string{"*." + domain, domain})
	}
}

func TestWildcardCertificateThroughDNS01(t *testing.T) {
	testenv.NeedEngine(t, "darse/nginx:bookworm", "traefik:v3.6")
	const domain = "test.example.org" // newFrontOn's platform domain
	dnsAddr, secret, namedLog := namedServer(t, domain)
	httpsPort := freePort(t)
	// Authorizations are never reused: every order is validated afresh.
	dir, rootsURL, caPEM, pebbleLog := pebbleWithDNS(t, httpsPort, dnsAddr, "PEBBLE_AUTHZREUSE=0")
	secretFile := filepath.Join(t.TempDir(), "tsig.key")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// named is not on port 53, where lego would ask the zone's servers:
	// lego checks the record through it as a resolver instead.
	f := newFrontWithHTTPS(t, httpsPort, fmt.Sprintf("acme:\n  ca: %q\n  email: ops@example.org\n  ca_certificates: %q\n"+
		"  dns:\n    provider: rfc2136\n    nameserver: %q\n    tsig_key: %s\n    tsig_algorithm: hmac-sha256\n    tsig_secret_file: %q\n"+
		"    propagation_timeout: 30s\n    sequence_interval: 1s\n    resolvers: [%q]\n    check_authoritative: false\n",
		dir, caPEM, dnsAddr, tsigKeyName, secretFile, dnsAddr))
	if b, err := os.ReadFile(filepath.Join(f.srv, "core", "front", "conf", "acme-dns.env")); err != nil || strings.Contains(string(b), secret) {
		t.Fatalf("acme-dns.env must not hold the secret: %v\n%s", err, b)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(fetchRoot(t, rootsURL, caPEM))
	v4, v6 := fmt.Sprintf("127.0.0.1:%d", f.https), fmt.Sprintf("[::1]:%d", f.https)

	// The wildcard is ordered at start, before any site: Traefik serves it
	// as its default certificate, here to a host no router has.
	wildcard := servedTLS(t, v4, "nosite."+domain, pool, 90*time.Second, isWildcard(domain), http.StatusNotFound, "")
	time.Sleep(2 * time.Second) // an order racing the first would show by now
	if n := orders(pebbleLog); n != 1 {
		t.Fatalf("%d ACME orders before any site, want 1 (the wildcard)", n)
	}

	// A site created after it is served with it, over IPv4 and IPv6, and
	// nothing is ordered for it.
	name := siteName("wild")
	f.cleanup(name)
	f.ok("site", "create", name, "--template", "static")
	page := "<p>wildcard " + name + "</p>\n"
	if err := os.WriteFile(filepath.Join(f.srv, "users", name, "data", "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	host := name + "." + domain
	for _, addr := range []string{v4, v6} {
		cert := servedTLS(t, addr, host, pool, 30*time.Second, isWildcard(domain), http.StatusOK, page)
		if !cert.Equal(wildcard) {
			t.Errorf("%s on %s: certificate serial %s, want the wildcard's %s", host, addr, cert.SerialNumber, wildcard.SerialNumber)
		}
	}
	time.Sleep(2 * time.Second)
	if n := orders(pebbleLog); n != 1 {
		t.Fatalf("%d ACME orders after a site was created under the wildcard, want still 1", n)
	}

	// A custom domain gets a certificate of its own, for it alone, through
	// TLS-ALPN (Pebble validates it on the front door's HTTPS port), one
	// order; the site's own host keeps the wildcard.
	custom := "www." + name + ".example.net"
	f.ok("site", "domain", "add", name, custom)
	for _, addr := range []string{v4, v6} {
		servedTLS(t, addr, custom, pool, 60*time.Second, func(c *x509.Certificate) bool {
			return slices.Equal(c.DNSNames, []string{custom})
		}, http.StatusOK, page)
		if cert := servedTLS(t, addr, host, pool, 10*time.Second, isWildcard(domain), http.StatusOK, page); !cert.Equal(wildcard) {
			t.Errorf("%s on %s lost the wildcard after the custom domain", host, addr)
		}
	}
	time.Sleep(2 * time.Second)
	if n := orders(pebbleLog); n != 2 {
		t.Fatalf("%d ACME orders after a custom domain, want 2 (the wildcard, the custom domain)", n)
	}
	// The wildcard came through RFC 2136 updates signed with the key, the
	// custom domain's certificate from the TLS-ALPN resolver, "le" (its
	// zone takes no update).
	update := fmt.Sprintf("/key %s: updating zone '%s/IN': adding an RR at '_acme-challenge.%s' TXT", tsigKeyName, domain, domain)
	if !strings.Contains(namedLog.String(), update) || strings.Contains(namedLog.String(), "example.net/IN': adding") {
		t.Errorf("named's log: want signed updates of _acme-challenge.%s only", domain)
	}
	var store map[string]struct {
		Certificates []struct {
			Domain struct {
				Main string   `json:"main"`
				SANs []string `json:"sans"`
			} `json:"domain"`
		}
	}
	b, err := os.ReadFile(filepath.Join(f.srv, "core", "front", "data", "acme.json"))
	if err != nil || json.Unmarshal(b, &store) != nil {
		t.Fatalf("acme.json: %v", err)
	}
	summary := map[string][]string{}
	for resolver, s := range store {
		for _, c := range s.Certificates {
			summary[resolver] = append(summary[resolver], strings.Join(append([]string{c.Domain.Main}, c.Domain.SANs...), ","))
		}
	}
	if want := map[string][]string{"le": {custom}, "le-dns": {domain + ",*." + domain}}; !reflect.DeepEqual(summary, want) {
		t.Errorf("certificates by resolver: %v, want %v", summary, want)
	}
}
