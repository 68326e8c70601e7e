package main

// SSH access end to end: a static site, a key added with the CLI, Debian's
// sftp client uploading a file that the site then serves, and what must be
// refused (a removed key, passwords, commands, forwarding). Connections go
// to the site's own ssh container on its bridge address, port 22.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/darse/darse/internal/testenv"
)

// clientKey is an ed25519 key pair: the private key in a file for the
// sftp client, the signer for x/crypto/ssh, the public key line.
type clientKey struct {
	file   string
	signer ssh.Signer
	line   string
}

func newClientKey(t *testing.T, dir, comment string) clientKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, comment)
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + comment
	if err := os.WriteFile(file+".pub", []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return clientKey{file: file, signer: signer, line: line}
}

func TestSSHAccess(t *testing.T) {
	needEngine(t, "darse/nginx:bookworm", "darse/sftp:bookworm")
	sftpBin, err := exec.LookPath("sftp")
	if err != nil {
		if testenv.Required() {
			t.Fatal("integration test cannot run: no sftp client (Debian's openssh-client) (DARSE_INTEGRATION=require)")
		}
		t.Skip("integration test: no sftp client (Debian's openssh-client)")
	}
	e := newEnv(t)
	name := siteName("sftp")
	e.cleanup(name)
	dir := filepath.Join(e.srv, "users", name)
	tmp := t.TempDir()
	alice := newClientKey(t, tmp, "alice")
	bob := newClientKey(t, tmp, "bob")

	e.ok("site", "create", name, "--template", "static")
	// authorized_keys exists from creation, with no key.
	if b, err := os.ReadFile(filepath.Join(dir, "ssh", "authorized_keys")); err != nil || strings.Contains(string(b), "ssh-") {
		t.Fatalf("authorized_keys at creation: %q, %v", b, err)
	}
	// No key, no sshd: the ssh service runs from the first key on.
	if s := e.status(name); len(s.Services) != 1 || s.Services[0].Service != "web" {
		t.Fatalf("services before any key: %+v", s.Services)
	}
	out := e.ok("key", "add", name, alice.file+".pub")
	e.ok("key", "add", name, bob.file+".pub")

	s := e.status(name)
	if s.SSH == nil || s.SSH.HostPort < 40000 || s.SSH.HostPort > 50000 || !strings.HasPrefix(s.SSH.HostKey, "SHA256:") || s.SSH.Keys != 2 {
		t.Fatalf("status ssh: %+v", s.SSH)
	}
	want := fmt.Sprintf("sftp -P %d www-data@%s.test.example.org", s.SSH.HostPort, name)
	if s.SSH.Command != want || !strings.Contains(out, want) {
		t.Fatalf("connect command %q, key add said %q; want %q", s.SSH.Command, out, want)
	}
	sshC := name + "_ssh_1"
	labels := inspect(t, sshC, `{{index .Config.Labels "darse.expose.ssh.hostport"}} {{index .Config.Labels "darse.expose.ssh.port"}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.CapAdd}} {{.HostConfig.SecurityOpt}} {{.Config.User}}`)
	if labels != fmt.Sprintf("%d 22 true [ALL] [] [no-new-privileges:true] 33:33", s.SSH.HostPort) {
		t.Fatalf("ssh container: %s", labels)
	}
	var addr string
	for _, svc := range s.Services {
		if svc.Service == "ssh" && svc.State == "running" && len(svc.Addresses) > 0 {
			addr = net.JoinHostPort(svc.Addresses[0].IPv4, "22")
		}
	}
	if addr == "" {
		t.Fatalf("no running ssh service with an address: %+v", s.Services)
	}

	// The host key is the one darse reports.
	hostKeys := ssh.HostKeyCallback(func(_ string, _ net.Addr, k ssh.PublicKey) error {
		if fp := ssh.FingerprintSHA256(k); fp != s.SSH.HostKey {
			return fmt.Errorf("host key %s, darse says %s", fp, s.SSH.HostKey)
		}
		return nil
	})
	dial := func(auth ...ssh.AuthMethod) (*ssh.Client, error) {
		return ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "www-data", Auth: auth, HostKeyCallback: hostKeys, Timeout: 5 * time.Second})
	}
	waitSSH(t, addr)

	// Upload with Debian's sftp client; the site serves the file.
	known := filepath.Join(tmp, "known_hosts")
	pub, _ := os.ReadFile(filepath.Join(dir, "ssh", "ssh_host_ed25519_key.pub"))
	os.WriteFile(known, append([]byte(strings.Split(addr, ":")[0]+" "), pub...), 0o644)
	page := fmt.Sprintf("<p>uploaded to %s over SFTP</p>\n", name)
	os.WriteFile(filepath.Join(tmp, "hello.html"), []byte(page), 0o644)
	batch := filepath.Join(tmp, "batch")
	os.WriteFile(batch, []byte("pwd\nput "+filepath.Join(tmp, "hello.html")+" hello.html\nls -l\n"), 0o644)
	sftp := func(key string) (string, error) {
		cmd := exec.Command(sftpBin, "-b", batch, "-i", key, "-P", "22",
			"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile="+known, "-o", "ConnectTimeout=5", "www-data@"+strings.Split(addr, ":")[0])
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if out, err := sftp(alice.file); err != nil || !strings.Contains(out, "Remote working directory: /srv/data") {
		t.Fatalf("sftp upload: %v\n%s", err, out)
	}
	if body := get(t, name+"_web_1", "/hello.html", 200); body != page {
		t.Fatalf("served %q, want %q", body, page)
	}
	if st, err := os.Stat(filepath.Join(dir, "data", "hello.html")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 33 || st.Mode().Perm()&0o022 != 0 {
		t.Fatalf("uploaded file: %v, %v", st, err)
	}

	// A command is not run: the session is SFTP whatever is asked.
	c, err := dial(ssh.PublicKeys(alice.signer))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out2, err := sess.CombinedOutput("id; touch /srv/data/by-exec")
	if err == nil || strings.Contains(string(out2), "uid=") {
		t.Errorf("exec ran: %v %q", err, out2)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "by-exec")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("exec wrote a file: %v", err)
	}
	// No forwarding through the site either.
	if conn, err := c.Dial("tcp", "127.0.0.1:22"); err == nil {
		conn.Close()
		t.Error("TCP forwarding allowed")
	}
	c.Close()

	// Passwords and keyboard-interactive are refused.
	if c, err := dial(ssh.Password("www-data"), ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
		return []string{"www-data"}, nil
	})); err == nil {
		c.Close()
		t.Fatal("password login accepted")
	}

	// A key removed is refused at its next login, with no restart; the other still works.
	if c, err := dial(ssh.PublicKeys(bob.signer)); err != nil {
		t.Fatalf("second key refused: %v", err)
	} else {
		c.Close()
	}
	before := inspect(t, sshC, "{{.State.StartedAt}}")
	e.ok("key", "rm", name, ssh.FingerprintSHA256(bob.signer.PublicKey()))
	if c, err := dial(ssh.PublicKeys(bob.signer)); err == nil {
		c.Close()
		t.Fatal("removed key still accepted")
	}
	if out, err := sftp(bob.file); err == nil {
		t.Fatalf("sftp with a removed key: %s", out)
	}
	if c, err := dial(ssh.PublicKeys(alice.signer)); err != nil {
		t.Fatalf("remaining key refused: %v", err)
	} else {
		c.Close()
	}
	if after := inspect(t, sshC, "{{.State.StartedAt}}"); after != before {
		t.Errorf("ssh service restarted by a key change: %s, then %s", before, after)
	}

	// Recreated, the service keeps its host key and port.
	e.compose(name, "down")
	e.ok("site", "up", name)
	s2 := e.status(name)
	if s2.SSH == nil || s2.SSH.HostPort != s.SSH.HostPort || s2.SSH.HostKey != s.SSH.HostKey {
		t.Fatalf("after recreate: %+v, before %+v", s2.SSH, s.SSH)
	}
	for _, svc := range s2.Services {
		if svc.Service == "ssh" && len(svc.Addresses) > 0 {
			addr = net.JoinHostPort(svc.Addresses[0].IPv4, "22")
		}
	}
	waitSSH(t, addr)
	if c, err := dial(ssh.PublicKeys(alice.signer)); err != nil {
		t.Fatalf("after recreate: %v", err)
	} else {
		c.Close()
	}

	// docker-compose by hand reads the same profile from .env.
	e.compose(name, "down")
	e.compose(name, "up", "-d")
	if st := service(t, e.status(name), "ssh"); st.State != "running" {
		t.Fatalf("ssh after docker-compose up -d: %+v", st)
	}

	// The last key removed, the ssh service goes; the port stays the site's.
	e.ok("key", "rm", name, ssh.FingerprintSHA256(alice.signer.PublicKey()))
	s3 := e.status(name)
	if len(s3.Services) != 1 || s3.Services[0].Service != "web" || s3.Services[0].State != "running" {
		t.Fatalf("services after the last key went: %+v", s3.Services)
	}
	if s3.SSH == nil || s3.SSH.HostPort != s.SSH.HostPort || s3.SSH.Keys != 0 {
		t.Fatalf("ssh access after the last key went: %+v", s3.SSH)
	}
	if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "name=^"+name+"_ssh_1$").Output(); len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("ssh container left after the last key went: %s", out)
	}
}

func inspect(t *testing.T, container, format string) string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", format, container).CombinedOutput()
	if err != nil {
		t.Fatalf("inspect %s: %v\n%s", container, err, out)
	}
	return strings.TrimSpace(string(out))
}

// waitSSH waits until sshd answers with its banner on addr.
func waitSSH(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4)
			_, err = conn.Read(buf)
			conn.Close()
			if err == nil && string(buf) == "SSH-" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
