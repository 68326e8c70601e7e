package main

// End-to-end tests of the front door: the real Traefik (image traefik:v3.6,
// built by `darse images build`) on the host network, on ports the test
// picks, routing real sites; Pebble as the ACME CA. All traffic goes to
// loopback, except the isolation probes that tenant containers aim at each
// other, which must fail.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/platform"
	"github.com/darse/darse/internal/testenv"
)

// freePort finds a TCP port free on both 127.0.0.1 and [::1].
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if l6, err := net.Listen("tcp", fmt.Sprintf("[::1]:%d", port)); err == nil {
			l6.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

type front struct {
	*env
	http, https, api int
	domain           string
}

// newFront brings up a front door of its own (its own compose project,
// ports and /srv) with extra darse.yml lines.
func newFront(t *testing.T, extra string) *front {
	return newFrontWithHTTPS(t, freePort(t), extra)
}

func (f *front) waitAPI(t *testing.T) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ping", f.api))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("traefik did not answer its ping")
}

// request sends GET / with Host host to addr (e.g. "127.0.0.1:8080") over
// plain HTTP, without following redirects.
func request(addr, host string) (int, string, http.Header, error) {
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, nil
}

// eventually retries GET until it answers want (and wantBody, if set).
func eventually(t *testing.T, addr, host string, want int, wantBody string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var code int
	var body string
	var err error
	for time.Now().Before(deadline) {
		code, body, _, err = request(addr, host)
		if err == nil && code == want && (wantBody == "" || body == wantBody) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET http://%s/ Host %s: got %d %q (err %v), want %d %q", addr, host, code, body, err, want, wantBody)
}

func TestFrontDoorRoutesSitesByName(t *testing.T) {
	f := newFront(t, "")
	a, b := siteName("fda"), siteName("fdb")
	f.cleanup(a)
	f.cleanup(b)
	f.ok("site", "create", a, "--template", "static")
	f.ok("site", "create", b, "--template", "static")
	pageA, pageB := "<p>site "+a+"</p>\n", "<p>site "+b+"</p>\n"
	os.WriteFile(filepath.Join(f.srv, "users", a, "data", "index.html"), []byte(pageA), 0o644)
	os.WriteFile(filepath.Join(f.srv, "users", b, "data", "index.html"), []byte(pageB), 0o644)
	hostA, hostB := a+"."+f.domain, b+"."+f.domain
	v4, v6 := fmt.Sprintf("127.0.0.1:%d", f.http), fmt.Sprintf("[::1]:%d", f.http)

	// Each site answers at its name, over IPv4 and IPv6.
	for _, addr := range []string{v4, v6} {
		eventually(t, addr, hostA, 200, pageA)
		eventually(t, addr, hostB, 200, pageB)
	}
	// An unknown host gets a plain 404, never a tenant's site.
	if code, body, _, err := request(v4, "unknown."+f.domain); err != nil || code != 404 || strings.Contains(body, "site ") {
		t.Fatalf("unknown host: %d %q %v", code, body, err)
	}

	// Custom domains: added, routed; refused when taken; removed, unrouted.
	custom := fmt.Sprintf("www.custom-%d.net", os.Getpid())
	f.ok("site", "domain", "add", a, custom)
	eventually(t, v6, custom, 200, pageA)
	if _, errs, code := f.run("site", "domain", "add", b, custom); code == 0 || !strings.Contains(errs, "already used by site "+a) {
		t.Errorf("taken custom domain: exit %d, %q", code, errs)
	}
	if _, errs, code := f.run("site", "domain", "add", b, "x."+f.domain); code == 0 || !strings.Contains(errs, "platform's own names") {
		t.Errorf("platform subdomain as custom domain: exit %d, %q", code, errs)
	}
	if s := f.status(a); len(s.Aliases) != 1 || s.Aliases[0] != custom {
		t.Errorf("status aliases = %v", s.Aliases)
	}
	f.ok("site", "domain", "rm", a, custom)
	eventually(t, v4, custom, 404, "")
	eventually(t, v4, hostA, 200, pageA)

	// platform status shows Traefik running and the routers it serves.
	var st platformJSON
	if err := json.Unmarshal([]byte(f.ok("platform", "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Containers) != 4 || st.Error != "" {
		t.Fatalf("platform status: want traefik, docker-proxy, firewall and panel: %+v", st)
	}
	for _, c := range st.Containers {
		if c.State != "running" {
			t.Errorf("front door container %s is %s", c.Name, c.State)
		}
	}
	// The firewall watcher, running from the darse image, owns its table.
	table := fmt.Sprintf("darse-t%d", os.Getpid())
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("nft", "list", "table", "inet", table).Run() != nil {
		if time.Now().After(deadline) {
			out, _ := exec.Command("docker", "logs", "--tail", "30", st.Containers[0].Name).CombinedOutput()
			t.Fatalf("firewall watcher did not create table inet %s:\n%s", table, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	found := false
	for _, r := range st.Routers {
		found = found || (strings.HasPrefix(r.Name, "site-"+a+"@") && strings.Contains(r.Rule, hostA))
	}
	if !found {
		t.Errorf("routers %+v lack site-%s", st.Routers, a)
	}
	// The panel is up behind the front door, at panel.<domain>.
	deadline = time.Now().Add(20 * time.Second)
	for {
		code, body, hdr, err := request(v4, "panel."+f.domain)
		if err == nil && code == http.StatusSeeOther && hdr.Get("Location") == "/login" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("panel through the front door: %d %v %.200q", code, err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Isolation, from inside site A's container: B (on every address it
	// has), Traefik's API and the Docker socket are out of reach.
	sb := f.status(b)
	var targets []string
	ports := map[string]string{"web": "8080", "ssh": "22"}
	for _, svc := range sb.Services {
		if ports[svc.Service] == "" {
			t.Fatalf("site %s has an unexpected service %s", b, svc.Service)
		}
		for _, ad := range svc.Addresses {
			targets = append(targets, ad.IPv4+"/"+ports[svc.Service])
			if ad.Network != "front" {
				continue
			}
			// front is dual-stack; the firewall watcher keeps tenants
			// apart over IPv6, where Docker does not.
			if ad.IPv6 == "" {
				t.Fatalf("site %s has no IPv6 address on front: %+v", b, ad)
			}
			targets = append(targets, ad.IPv6+"/"+ports[svc.Service])
			if svc.Service == "web" {
				// From the host, B answers on that address: the probe
				// below fails for the firewall, not for want of IPv6.
				conn, err := net.DialTimeout("tcp", net.JoinHostPort(ad.IPv6, "8080"), 3*time.Second)
				if err != nil {
					t.Fatalf("site %s over IPv6 from the host: %v", b, err)
				}
				conn.Close()
			}
		}
	}
	// The host's address on front (the bridge's), where Traefik's API is not.
	gw, err := exec.Command("ip", "-4", "-o", "addr", "show", "dev", "br-darse-front").Output()
	fields := strings.Fields(string(gw))
	if err != nil || len(fields) < 4 {
		t.Fatalf("front bridge address: %v %s", err, gw)
	}
	bridgeIP, _, _ := strings.Cut(fields[3], "/")
	targets = append(targets, fmt.Sprintf("%s/%d", bridgeIP, f.api), fmt.Sprintf("127.0.0.1/%d", f.api))
	webA := a + "_web_1"
	for _, target := range targets {
		probe := fmt.Sprintf("timeout 3 bash -c 'exec 3<>/dev/tcp/%s' && echo OPEN", target)
		out, _ := exec.Command("docker", "exec", webA, "bash", "-c", probe).CombinedOutput()
		if strings.Contains(string(out), "OPEN") {
			t.Errorf("from %s, %s is reachable", webA, target)
		}
	}
	if out, err := exec.Command("docker", "exec", webA, "bash", "-c", "ls -l /var/run/docker.sock /run/docker.sock").CombinedOutput(); err == nil {
		t.Errorf("docker socket visible in %s: %s", webA, out)
	}
	// Traefik itself reads the engine through darse's read-only proxy.
	for _, c := range st.Containers {
		if !strings.HasSuffix(c.Name, "_traefik_1") {
			continue
		}
		mounts, err := exec.Command("docker", "inspect", "-f", "{{range .Mounts}}{{.Source}} {{end}}", c.Name).Output()
		if err != nil || strings.Contains(string(mounts), "docker.sock") {
			t.Errorf("traefik's mounts: %s %v: want no engine socket", mounts, err)
		}
	}
	// While the isolation holds, the front door still reaches both.
	eventually(t, v4, hostB, 200, pageB)

	// A stopped site is no longer routed, and never to another site.
	f.ok("site", "stop", b)
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, body, _, err := request(v4, hostB)
		if err == nil && body == pageA {
			t.Fatalf("stopped site %s served site %s's page", b, a)
		}
		if err == nil && (code == 404 || code == 502 || code == 503) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stopped site still answers: %d %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pebble runs Pebble and its DNS test server on loopback; every name
// resolves to 127.0.0.1, where the front door answers the TLS-ALPN-01
// challenge. It returns the ACME directory URL and Pebble's roots URL.
func pebble(t *testing.T, tlsPort int) (dir, roots, caPEM string) {
	t.Helper()
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "pebble-challtestsrv"), "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv").CombinedOutput(); err != nil {
		t.Fatalf("build pebble-challtestsrv: %v\n%s", err, out)
	}
	dns := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var log testenv.Buffer
	cmd := exec.Command(filepath.Join(bin, "pebble-challtestsrv"), "-dnsserver", dns, "-management", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble-challtestsrv log:\n%s", log.String())
		}
	})
	dir, roots, caPEM, _ = pebbleWithDNS(t, tlsPort, dns)
	return dir, roots, caPEM
}

// pebbleWithDNS runs Pebble on loopback resolving every name through
// dnsAddr, and returns its directory URL, its roots URL, the root of its
// own HTTPS and its log, where each ACME order is one "Added order" line;
// env is added to Pebble's environment.
func pebbleWithDNS(t *testing.T, tlsPort int, dnsAddr string, env ...string) (dir, roots, caPEM string, log *testenv.Buffer) {
	t.Helper()
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "pebble"), "github.com/letsencrypt/pebble/v2/cmd/pebble").CombinedOutput(); err != nil {
		t.Fatalf("build pebble: %v\n%s", err, out)
	}
	modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(strings.TrimSpace(string(modDir)), "test", "certs")
	acme, mgmt := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`{"pebble":{"listenAddress":"127.0.0.1:%d","managementListenAddress":"127.0.0.1:%d",
		"certificate":"%s/localhost/cert.pem","privateKey":"%s/localhost/key.pem",
		"httpPort":1,"tlsPort":%d,"ocspResponderURL":"","externalAccountBindingRequired":false}}`, acme, mgmt, certs, certs, tlsPort)
	cfgPath := filepath.Join(bin, "pebble.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	log = &testenv.Buffer{}
	cmd := exec.Command(filepath.Join(bin, "pebble"), "-config", cfgPath, "-dnsserver", dnsAddr)
	cmd.Env = append(append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble log:\n%s", log)
		}
	})
	return fmt.Sprintf("https://127.0.0.1:%d/dir", acme), fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmt), filepath.Join(certs, "pebble.minica.pem"), log
}

func TestFrontDoorHTTPSFromACME(t *testing.T) {
	testenv.NeedEngine(t, "darse/nginx:bookworm", "traefik:v3.6")
	httpsPort := freePort(t)
	dir, rootsURL, caPEM := pebble(t, httpsPort)
	f := newFrontWithHTTPS(t, httpsPort, fmt.Sprintf("acme:\n  ca: %q\n  email: ops@example.org\n  ca_certificates: %q\n", dir, caPEM))
	name := siteName("tls")
	f.cleanup(name)
	f.ok("site", "create", name, "--template", "static")
	page := "<p>secure " + name + "</p>\n"
	os.WriteFile(filepath.Join(f.srv, "users", name, "data", "index.html"), []byte(page), 0o644)
	host := name + "." + f.domain

	// Plain HTTP redirects to HTTPS.
	eventually(t, fmt.Sprintf("127.0.0.1:%d", f.http), host, http.StatusMovedPermanently, "")
	_, _, hdr, _ := request(fmt.Sprintf("[::1]:%d", f.http), host)
	if loc := hdr.Get("Location"); !strings.HasPrefix(loc, "https://"+host) {
		t.Errorf("redirect to %q", loc)
	}

	// Over HTTPS, the certificate is Pebble's, for the site's name,
	// verified against Pebble's root, on IPv4 and IPv6.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(fetchRoot(t, rootsURL, caPEM))
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", f.https), fmt.Sprintf("[::1]:%d", f.https)} {
		servedTLS(t, addr, host, pool, 60*time.Second, func(c *x509.Certificate) bool { return c.VerifyHostname(host) == nil }, 200, page)
	}
}

// newFrontWithHTTPS is newFront with the HTTPS port chosen by the caller
// (Pebble must know it to validate TLS-ALPN-01 challenges).
func newFrontWithHTTPS(t *testing.T, httpsPort int, extra string) *front {
	return newFrontOn(t, freePort(t), httpsPort, extra)
}

// newFrontOn is newFront on the ports given.
func newFrontOn(t *testing.T, httpPort, httpsPort int, extra string) *front {
	testenv.NeedEngine(t, "darse/nginx:bookworm", "traefik:v3.6")
	f := &front{http: httpPort, https: httpsPort, api: freePort(t), domain: "test.example.org"}
	project := fmt.Sprintf("front-t%d", os.Getpid())
	// The test's firewall watcher keeps a table of its own and looks only
	// at containers labelled for it (none): the host's rules stay as they are.
	table := fmt.Sprintf("darse-t%d", os.Getpid())
	frontLines, extra := splitFront(extra)
	f.env = newEnvWith(t, fmt.Sprintf("domain: %s\nfront:\n  project: %s\n  http: \":%d\"\n  https: \":%d\"\n  api: \"127.0.0.1:%d\"\n%sfirewall:\n  table: %s\n  label: darse.test=%s\npanel:\n  project: %s-panel\n%s",
		f.domain, project, f.http, f.https, f.api, frontLines, table, table, project, extra))
	t.Cleanup(func() { exec.Command("nft", "delete", "table", "inet", table).Run() })
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "80", project+"_traefik_1").CombinedOutput()
			t.Logf("traefik logs:\n%s", out)
		}
		f.run("platform", "down")
	})
	f.ok("platform", "up")
	f.waitAPI(t)
	return f
}

// splitFront takes a leading "front:" block out of extra: its lines join
// the harness's own front block (YAML refuses a key given twice).
func splitFront(extra string) (frontLines, rest string) {
	after, ok := strings.CutPrefix(extra, "front:\n")
	if !ok {
		return "", extra
	}
	lines := strings.SplitAfter(after, "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "  ") {
		i++
	}
	return strings.Join(lines[:i], ""), strings.Join(lines[i:], "")
}

// fetchRoot downloads Pebble's current root (its HTTPS is signed by the
// minica root shipped with Pebble).
func fetchRoot(t *testing.T, url, caPEM string) []byte {
	t.Helper()
	ca, err := os.ReadFile(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if blk, _ := pem.Decode(b); blk == nil {
		t.Fatalf("pebble root: %q", b)
	}
	return b
}

// The top-level compose file darse platform up leaves in <srv> brings the
// platform back up with plain docker-compose, through darse's own
// reconciler running from the darse image.
func TestTopLevelComposeBringsPlatformUp(t *testing.T) {
	f := newFront(t, "")
	env, err := os.ReadFile(filepath.Join(f.srv, ".env"))
	if err != nil || !strings.Contains(string(env), "DARSE_IMAGE=darse/darse:") || !strings.Contains(string(env), "DARSE_SRV="+f.srv+"\n") {
		t.Fatalf("%s/.env: %v %q", f.srv, err, env)
	}
	compose := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("docker-compose", args...)
		cmd.Dir = f.srv
		cmd.Env = append(os.Environ(), fmt.Sprintf("COMPOSE_PROJECT_NAME=darse-t%d", os.Getpid()))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { compose("down") })

	f.ok("platform", "down")
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ping", f.api)); err == nil {
		resp.Body.Close()
		t.Fatal("traefik still answers after platform down")
	}
	compose("up")
	f.waitAPI(t)
	// darse ran in a container, where the socket is /var/run/docker.sock;
	// what it rendered must still mount the host's (here the test engine's).
	sock := platform.EngineSocket(os.Getenv("DOCKER_HOST"))
	for _, dir := range []string{".", "core/front", "apps/panel"} {
		env, err := os.ReadFile(filepath.Join(f.srv, dir, ".env"))
		if err != nil || !strings.Contains(string(env), "DOCKER_SOCKET="+sock+"\n") {
			t.Errorf("%s/.env after docker-compose up: want DOCKER_SOCKET=%s: %v\n%s", dir, sock, err, env)
		}
	}
	var st platformJSON
	if err := json.Unmarshal([]byte(f.ok("platform", "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Containers) != 4 || len(st.Drift) != 0 {
		t.Fatalf("after docker-compose up in %s: want traefik, docker-proxy, firewall and panel, no drift: %+v", f.srv, st)
	}
	for _, c := range st.Containers {
		if c.State != "running" {
			t.Errorf("%s is %s after docker-compose up", c.Name, c.State)
		}
	}
	// The same one-shot service answers other darse commands.
	if out := compose("run", "--rm", "darse", "platform", "status"); !strings.Contains(out, "traefik") {
		t.Errorf("docker-compose run darse platform status:\n%s", out)
	}
}
