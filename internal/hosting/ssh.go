package hosting

// SSH access: a site whose template declares an ssh service (template.yml,
// `ssh:`) gets SFTP to its data/ on a host port from 40000-50000. The port
// is a forward of that service like members' own (one allocator, one
// unique host_port column); the keys live in the store and are rendered
// into ssh/authorized_keys, which the service mounts read-only and sshd
// reads at every login. The host key is made once, in the same folder.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/sshkey"
	"github.com/darse/darse/internal/store"
	"github.com/darse/darse/internal/template"
)

// Files of a site's SSH access, relative to its folder. The service mounts
// the folder, not the files: a file renamed over (an atomic write) is seen
// through a folder mount, never through a file mount.
const (
	sshDir             = "ssh"
	authorizedKeysFile = sshDir + "/authorized_keys" // rendered: in the manifest
	hostKeyFile        = sshDir + "/ssh_host_ed25519_key"
	sshExposure        = "ssh" // name of the darse.expose.<name> labels
	// sshProfile is the compose profile of the ssh service in the shipped
	// templates, active (COMPOSE_PROFILES in .env) while the site has keys.
	sshProfile = "ssh"
)

// SSHAccess is how a member reaches the site's files.
type SSHAccess struct {
	HostPort int    `json:"host_port"`
	User     string `json:"user"`
	Host     string `json:"host"`
	Command  string `json:"command"`            // e.g. sftp -P 40001 www-data@blog.example.org
	HostKey  string `json:"host_key,omitempty"` // the host key's SHA256 fingerprint
	Keys     int    `json:"keys"`               // keys authorized
}

func isSSH(t *template.Template, f *store.Forward) bool {
	return t.SSH != nil && f.Service == t.SSH.Service && f.ContainerPort == t.SSH.Port && f.Proto == string(labels.TCP)
}

// ensureSSHPort returns the forward of the site's SSH access, allocating
// its host port when it has none (a new site, or one rendered before its
// template had SSH access). Nil when the template has none.
func (h *Hosting) ensureSSHPort(ctx context.Context, name string, t *template.Template) (*store.Forward, error) {
	if t.SSH == nil {
		return nil, nil
	}
	for range 2 {
		fs, err := h.store.ListForwards(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			if isSSH(t, f) {
				return f, nil
			}
		}
		f, err := h.store.AddForward(ctx, store.Forward{Site: name, Service: t.SSH.Service, ContainerPort: t.SSH.Port, Proto: string(labels.TCP)})
		if errors.Is(err, store.ErrForwardExists) {
			continue // allocated meanwhile by another process: read it
		}
		if err != nil {
			return nil, fmt.Errorf("site %q: ssh port: %w", name, err)
		}
		h.log.Info("ssh port allocated", "site", name, "host_port", f.HostPort)
		return f, nil
	}
	return nil, fmt.Errorf("site %q: ssh port: %w", name, store.ErrForwardExists)
}

// CheckRemoveForward answers at once what RemoveForward refuses: a site
// that does not exist, a host port it does not forward, its SSH access.
func (h *Hosting) CheckRemoveForward(ctx context.Context, name string, hostPort int) error {
	s, err := h.get(ctx, name)
	if err != nil {
		return err
	}
	fs, err := h.store.ListForwards(ctx, name)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(fs, func(f *store.Forward) bool { return f.HostPort == hostPort }) {
		return inputErr(&site.FieldError{Field: "host port", Value: strconv.Itoa(hostPort), Rule: "is not forwarded for site " + name})
	}
	return h.refuseSSHForward(ctx, s, hostPort)
}

// refuseSSHForward refuses to remove the forward of the site's SSH access
// as if it were a member's port forward.
func (h *Hosting) refuseSSHForward(ctx context.Context, s *store.Site, hostPort int) error {
	t, err := template.Load(h.cfg.TemplatesDir(), s.Template)
	if err != nil {
		return err
	}
	fs, err := h.store.ListForwards(ctx, s.Name)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if f.HostPort == hostPort && isSSH(t, f) {
			return inputErr(&site.FieldError{Field: "host port", Value: strconv.Itoa(hostPort), Rule: "is the site's SSH access, not a port forward"})
		}
	}
	return nil
}

// AuthorizedKeys renders the authorized_keys file of a site's keys, in
// the store's order. Each key is `restrict`ed (no forwarding, pty or rc)
// on top of sshd's own configuration.
func AuthorizedKeys(name string, keys []*store.SSHKey) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Rendered by darse: the SSH keys of site %s, from its store.\n", name)
	fmt.Fprintf(&b, "# Change them with `darse key` or the panel; a hand edit here shows as drift.\n")
	for _, k := range keys {
		line := "restrict " + k.Key
		if c := strings.TrimSpace(k.Comment); c != "" && !strings.ContainsAny(c, "\r\n") {
			line += " " + c
		}
		b.WriteString(line + "\n")
	}
	return b.Bytes()
}

// AddKey authorizes a public key (one authorized_keys line, no options) on
// the site: stored, then the site's authorized_keys rewritten, so the key
// works at the next login. If the file cannot be written the key is
// dropped again.
func (h *Hosting) AddKey(ctx context.Context, name, text string) (*sshkey.Key, error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return nil, err
	}
	k, err := sshkey.Parse(text)
	if err != nil {
		return nil, inputErr(err)
	}
	id, err := h.store.AddKey(ctx, store.SSHKey{Site: name, Fingerprint: k.Fingerprint, Key: k.Line, Comment: k.Comment})
	if errors.Is(err, store.ErrKeyExists) {
		return nil, inputErr(&site.FieldError{Field: "key", Value: k.Fingerprint, Rule: "is already authorized on this site"})
	}
	if err != nil {
		return nil, err
	}
	if err := h.writeKeys(ctx, s, nil); err != nil {
		if derr := h.store.DeleteKey(context.WithoutCancel(ctx), name, strconv.FormatInt(id, 10)); derr != nil {
			h.log.Error("undo key add", "site", name, "err", derr)
		}
		return nil, err
	}
	h.log.Info("ssh key added", "site", name, "fingerprint", k.Fingerprint)
	return k, h.toggleSSH(ctx, name)
}

// toggleSSH renders the site again after its first key was added or its
// last removed, so that its ssh service runs exactly while it has keys
// (COMPOSE_PROFILES in .env), and converges it unless it is stopped.
func (h *Hosting) toggleSSH(ctx context.Context, name string) error {
	s, err := h.get(ctx, name) // the manifest writeKeys just recorded
	if err != nil {
		return err
	}
	if err := h.checkDrift(ctx, s); err != nil {
		return err // the key is in place; the service follows at the next render
	}
	files, err := h.renderStored(ctx, s)
	if err != nil {
		return err
	}
	changed, err := render.Write(h.cfg.SiteDir(name), files, s.Rendered)
	if err != nil {
		return fmt.Errorf("write site %q: %w", name, err)
	}
	if err := h.store.SetRendered(ctx, name, files.Manifest()); err != nil {
		return err
	}
	if len(changed) == 0 {
		return nil
	}
	st, err := h.Status(ctx, name)
	if err != nil || st.State == StateStopped {
		return err
	}
	_, err = h.Up(ctx, name)
	return err
}

// RemoveKey removes a key (by id or fingerprint) from the site. The file
// is rewritten without it first, then the store forgets it: a failure
// leaves the key refused rather than still accepted.
func (h *Hosting) RemoveKey(ctx context.Context, name, idOrFingerprint string) error {
	s, err := h.get(ctx, name)
	if err != nil {
		return err
	}
	keys, err := h.store.ListKeys(ctx, name)
	if err != nil {
		return err
	}
	i := -1
	for j, k := range keys {
		if k.Fingerprint == idOrFingerprint || strconv.FormatInt(k.ID, 10) == idOrFingerprint {
			i = j
		}
	}
	if i < 0 {
		return inputErr(&site.FieldError{Field: "key", Value: idOrFingerprint, Rule: "is not authorized on site " + name})
	}
	gone := keys[i]
	keys = append(keys[:i:i], keys[i+1:]...)
	if err := h.writeKeys(ctx, s, keys); err != nil {
		return err
	}
	if err := h.store.DeleteKey(ctx, name, strconv.FormatInt(gone.ID, 10)); err != nil {
		return err
	}
	h.log.Info("ssh key removed", "site", name, "fingerprint", gone.Fingerprint)
	return h.toggleSSH(ctx, name)
}

// writeKeys rewrites the site's authorized_keys from keys (the store's
// when nil), atomically, and records it in the site's manifest. Nothing
// else of the folder is rendered and nothing is restarted: sshd reads the
// file at every login. A file edited by hand is not overwritten.
func (h *Hosting) writeKeys(ctx context.Context, s *store.Site, keys []*store.SSHKey) error {
	t, err := template.Load(h.cfg.TemplatesDir(), s.Template)
	if err != nil {
		return err
	}
	if t.SSH == nil {
		return nil // no SSH access: the keys wait in the store
	}
	if keys == nil {
		if keys, err = h.store.ListKeys(ctx, s.Name); err != nil {
			return err
		}
	}
	dst := filepath.Join(h.cfg.SiteDir(s.Name), filepath.FromSlash(authorizedKeysFile))
	if sum, ok := s.Rendered[authorizedKeysFile]; ok {
		drift, err := render.Drift(h.cfg.SiteDir(s.Name), render.Manifest{authorizedKeysFile: sum})
		if err != nil {
			return err
		}
		if len(drift) > 0 {
			return inputErr(&site.FieldError{Field: "site", Value: s.Name,
				Rule: "has " + authorizedKeysFile + " edited by hand; darse will not overwrite it: restore it with `darse site render --force " + s.Name + "`"})
		}
	}
	files := render.Files{authorizedKeysFile: AuthorizedKeys(s.Name, keys)}
	if old, err := os.ReadFile(dst); err != nil || !bytes.Equal(old, files[authorizedKeysFile]) {
		if err := render.WriteFile(dst, files[authorizedKeysFile], 0o644); err != nil {
			return fmt.Errorf("site %q: write %s: %w", s.Name, authorizedKeysFile, err)
		}
	}
	m := maps.Clone(s.Rendered)
	if m == nil {
		m = render.Manifest{}
	}
	maps.Copy(m, files.Manifest())
	return h.store.SetRendered(ctx, s.Name, m)
}

// SSHAccess reports the site's SSH access; nil when its template has none.
func (h *Hosting) SSHAccess(ctx context.Context, name string) (*SSHAccess, error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return nil, err
	}
	return h.sshAccess(ctx, s)
}

func (h *Hosting) sshAccess(ctx context.Context, s *store.Site) (*SSHAccess, error) {
	t, err := template.Load(h.cfg.TemplatesDir(), s.Template)
	if err != nil || t.SSH == nil {
		return nil, err
	}
	fs, err := h.store.ListForwards(ctx, s.Name)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		if !isSSH(t, f) {
			continue
		}
		keys, err := h.store.ListKeys(ctx, s.Name)
		if err != nil {
			return nil, err
		}
		a := &SSHAccess{HostPort: f.HostPort, User: t.SSH.User, Host: s.Domain, Keys: len(keys),
			Command: fmt.Sprintf("sftp -P %d %s@%s", f.HostPort, t.SSH.User, s.Domain)}
		if b, err := os.ReadFile(filepath.Join(h.cfg.SiteDir(s.Name), filepath.FromSlash(hostKeyFile)+".pub")); err == nil {
			if pk, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil {
				a.HostKey = ssh.FingerprintSHA256(pk)
			}
		}
		return a, nil
	}
	return nil, nil // not allocated yet: `darse site render` does it
}

// prepareSSH makes what the SSH service needs beside the rendered files:
// the host key, made once and kept (so its fingerprint survives restarts
// and recreations), and data/ owned by the account members log in as.
func prepareSSH(t *template.Template, dir string) error {
	if t.SSH == nil {
		return nil
	}
	if err := ensureHostKey(dir, t.SSH.UID, t.SSH.GID); err != nil {
		return fmt.Errorf("ssh host key: %w", err)
	}
	if err := ownData(filepath.Join(dir, render.DataDir), t.SSH.UID, t.SSH.GID); err != nil {
		return fmt.Errorf("owner of %s: %w", render.DataDir, err)
	}
	return nil
}

// ensureHostKey writes an ed25519 host key pair into dir/ssh unless the
// private key is there. sshd runs as uid:gid, not root: the private key is
// that account's, mode 0600 (sshd refuses one that others may read).
func ensureHostKey(dir string, uid, gid int) error {
	priv := filepath.Join(dir, filepath.FromSlash(hostKeyFile))
	if _, err := os.Lstat(priv); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	// The public half first: a private key without it is never left.
	if err := render.WriteFile(priv+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		return err
	}
	if err := writeOwned(priv, pem.EncodeToMemory(block), uid, gid); err != nil {
		return err
	}
	return nil
}

// writeOwned writes b to name, mode 0600, owned by uid:gid before it is
// renamed into place (so never readable by sshd with the wrong owner).
// Only root can give a file away: otherwise (unit tests) it stays ours.
func writeOwned(name string, b []byte, uid, gid int) error {
	tmp := name + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // no-op once renamed
	_, werr := f.Write(b)
	if werr == nil && os.Geteuid() == 0 {
		werr = f.Chown(uid, gid)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// ownData gives data/ and everything in it to uid:gid when data/ itself
// is owned by someone else: folders made by darse as root before sites had
// SSH access, or content kept from an older site. All through an os.Root,
// so a symbolic link in the member's files never leads it out of data/.
func ownData(data string, uid, gid int) error {
	st, err := os.Lstat(data)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !st.IsDir()) || os.Geteuid() != 0 {
		return nil
	}
	if err != nil {
		return err
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok && int(s.Uid) == uid && int(s.Gid) == gid {
		return nil
	}
	r, err := os.OpenRoot(data)
	if err != nil {
		return err
	}
	defer r.Close()
	err = fs.WalkDir(r.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		return r.Lchown(p, uid, gid)
	})
	if err != nil {
		return err
	}
	// data/ itself last: it marks the work done.
	return r.Lchown(".", uid, gid)
}

// removeSSH deletes the site's ssh/ folder (host key, authorized_keys).
func removeSSH(dir string) {
	os.RemoveAll(filepath.Join(dir, sshDir))
}
