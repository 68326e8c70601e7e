package hosting

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/darse/darse/internal/store"
)

func TestAuthorizedKeys(t *testing.T) {
	got := string(AuthorizedKeys("blog", []*store.SSHKey{
		{Key: "ssh-ed25519 AAAAone", Comment: "alice@laptop"},
		{Key: "ssh-ed25519 AAAAtwo"},
		{Key: "ssh-ed25519 AAAAthree", Comment: "bad\ncomment"},
	}))
	want := "# Rendered by darse: the SSH keys of site blog, from its store.\n" +
		"# Change them with `darse key` or the panel; a hand edit here shows as drift.\n" +
		"restrict ssh-ed25519 AAAAone alice@laptop\n" +
		"restrict ssh-ed25519 AAAAtwo\n" +
		"restrict ssh-ed25519 AAAAthree\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if got := string(AuthorizedKeys("blog", nil)); strings.Contains(got, "ssh-") || !strings.HasPrefix(got, "#") {
		t.Fatalf("no key: %q", got)
	}
}

func newPublicKey(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " " + comment
}

func TestSSHAccess(t *testing.T) {
	ctx := context.Background()
	h, _, st := newTestHosting(t)
	for _, name := range []string{"blog", "shop"} {
		if _, err := h.Create(ctx, CreateRequest{Name: name, Template: "static", Owner: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	dir := h.cfg.SiteDir("blog")
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// Each site has its own host port, rendered as an exposure of its ssh service.
	a, err := h.SSHAccess(ctx, "blog")
	if err != nil || a == nil {
		t.Fatalf("blog: %+v, %v", a, err)
	}
	b, err := h.SSHAccess(ctx, "shop")
	if err != nil || b == nil {
		t.Fatalf("shop: %+v, %v", b, err)
	}
	if a.HostPort != 40000 || b.HostPort != 40001 || a.Command != "sftp -P 40000 www-data@blog.example.org" || a.Keys != 0 {
		t.Fatalf("access: %+v %+v", a, b)
	}
	override := read("docker-compose.override.yml")
	svc := override[strings.Index(override, "  ssh:"):strings.Index(override, "  web:")]
	for _, want := range []string{`darse.expose.ssh.port: "22"`, `darse.expose.ssh.hostport: "40000"`, "darse.expose.ssh.protocol: tcp"} {
		if !strings.Contains(svc, want) {
			t.Errorf("ssh service lacks %s:\n%s", want, override)
		}
	}

	// The host key exists from creation, private to its owner, and stays.
	if !strings.HasPrefix(a.HostKey, "SHA256:") {
		t.Fatalf("host key fingerprint %q", a.HostKey)
	}
	if fi, err := os.Stat(filepath.Join(dir, hostKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key: %v, %v", fi, err)
	}
	if read(authorizedKeysFile) != string(AuthorizedKeys("blog", nil)) {
		t.Fatalf("authorized_keys at creation:\n%s", read(authorizedKeysFile))
	}

	// A key added is in the file at once, with no drift; removed, it is gone.
	key := newPublicKey(t, "alice@laptop")
	k, err := h.AddKey(ctx, "blog", key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(read(authorizedKeysFile), "restrict "+strings.TrimSuffix(key, " alice@laptop")+" alice@laptop\n") {
		t.Fatalf("key not written:\n%s", read(authorizedKeysFile))
	}
	if _, err := h.AddKey(ctx, "blog", key); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "already authorized") {
		t.Fatalf("same key twice: %v", err)
	}
	if _, err := h.AddKey(ctx, "blog", `command="/bin/sh" `+key); !errors.Is(err, ErrInput) {
		t.Fatalf("key with options: %v", err)
	}
	s, _ := st.GetSite(ctx, "blog")
	if _, _, err := h.Render(ctx, "blog", false); err != nil {
		t.Fatalf("render after key add (drift?): %v", err)
	}
	if s2, _ := st.GetSite(ctx, "blog"); s2.Rendered[authorizedKeysFile] != s.Rendered[authorizedKeysFile] {
		t.Fatal("render and key add disagree on authorized_keys")
	}
	if err := h.RemoveKey(ctx, "blog", k.Fingerprint); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(read(authorizedKeysFile), "ssh-ed25519") {
		t.Fatalf("removed key still written:\n%s", read(authorizedKeysFile))
	}
	if err := h.RemoveKey(ctx, "blog", k.Fingerprint); !errors.Is(err, ErrInput) {
		t.Fatalf("second removal: %v", err)
	}

	// A hand-edited authorized_keys is not overwritten.
	os.WriteFile(filepath.Join(dir, authorizedKeysFile), []byte("ssh-ed25519 AAAAmine\n"), 0o644)
	if _, err := h.AddKey(ctx, "blog", key); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "edited by hand") {
		t.Fatalf("key add over a hand edit: %v", err)
	}
	if ks, _ := st.ListKeys(ctx, "blog"); len(ks) != 0 {
		t.Fatalf("refused key kept: %+v", ks)
	}
	if _, _, err := h.Render(ctx, "blog", true); err != nil {
		t.Fatal(err)
	}

	// The SSH access is no port forward to remove.
	if _, err := h.RemoveForward(ctx, "blog", 40000); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "SSH access") {
		t.Fatalf("remove ssh forward: %v", err)
	}

	// A site rendered before templates had SSH access gets it (port,
	// host key, authorized_keys) from `site render`, keeping its port after.
	if err := st.DeleteForward(ctx, "blog", 40000); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, sshDir))
	s, _ = st.GetSite(ctx, "blog")
	delete(s.Rendered, authorizedKeysFile)
	if err := st.SetRendered(ctx, "blog", s.Rendered); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Render(ctx, "blog", false); err != nil {
		t.Fatal(err)
	}
	again, err := h.SSHAccess(ctx, "blog")
	if err != nil || again == nil || again.HostPort != 40000 || again.HostKey == "" || again.HostKey == a.HostKey {
		t.Fatalf("after render: %+v, %v (before: %+v)", again, err, a)
	}
	if _, _, err := h.Render(ctx, "blog", false); err != nil {
		t.Fatal(err)
	}
	if same, _ := h.SSHAccess(ctx, "blog"); same.HostPort != again.HostPort || same.HostKey != again.HostKey {
		t.Fatalf("render again changed the access: %+v, then %+v", again, same)
	}

	// Removed without purge, only data/ is left (with a note of whose it
	// is), and the name can be taken again by its owner only.
	if err := h.Remove(ctx, "blog", false); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 || entries[0].Name() != keptFile || entries[1].Name() != "data" {
		t.Fatalf("left after rm: %v", entries)
	}
	if _, err := h.Create(ctx, CreateRequest{Name: "blog", Template: "static", Owner: "mallory"}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "kept from a removed site") {
		t.Fatalf("another member took the kept data/: %v", err)
	}
	if _, err := h.Create(ctx, CreateRequest{Name: "blog", Template: "static", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
}
