package panel

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/sshkey"
	"github.com/darse/darse/internal/store"
)

// maxForwards bounds one site's forwards: the 10,001 host ports are shared.
const maxForwards = 5

// keyring is what the key handlers call (*hosting.Hosting): the same
// functions as `darse key`, which store the key and rewrite the site's
// authorized_keys. Keys need no engine work, so no operation is recorded.
type keyring interface {
	AddKey(ctx context.Context, site, text string) (*sshkey.Key, error)
	RemoveKey(ctx context.Context, site, idOrFingerprint string) error
}

func (s *Server) keyring() (keyring, error) {
	kr, ok := s.sites.(keyring)
	if !ok {
		return nil, errors.New("panel: SSH keys need the hosting layer")
	}
	return kr, nil
}

// addKey authorizes a public key on the site.
func (s *Server) addKey(c *gin.Context) error {
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	kr, err := s.keyring()
	if err != nil {
		return err
	}
	k, err := kr.AddKey(c.Request.Context(), st.Name, c.PostForm("key"))
	var fe *site.FieldError
	if errors.As(err, &fe) {
		return s.renderSite(c, st, status(err), fieldErrors(err))
	}
	if err != nil {
		return err
	}
	s.log.Info("ssh key added", "site", st.Name, "fingerprint", k.Fingerprint, "user", currentUser(c).Name)
	c.Redirect(http.StatusSeeOther, "/sites/"+st.Name+"#keys")
	return nil
}

func (s *Server) removeKey(c *gin.Context) error {
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	kr, err := s.keyring()
	if err != nil {
		return err
	}
	if err := kr.RemoveKey(c.Request.Context(), st.Name, c.PostForm("fingerprint")); err != nil {
		var fe *site.FieldError
		if errors.As(err, &fe) && fe.Field == "key" {
			return errNotFound
		}
		return err
	}
	s.log.Info("ssh key removed", "site", st.Name, "fingerprint", c.PostForm("fingerprint"), "user", currentUser(c).Name)
	c.Redirect(http.StatusSeeOther, "/sites/"+st.Name+"#keys")
	return nil
}

// sshService is the service of the SSH access in the shipped templates:
// its forward is the site's SSH port, shown apart and not a member's
// port forward.
const sshService = "ssh"

// addForward records the operation that allocates a host port and
// renders the site with it.
func (s *Server) addForward(c *gin.Context) error {
	ctx := c.Request.Context()
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	refuse := func(rule string) error {
		err := &site.FieldError{Field: "port", Value: c.PostForm("port"), Rule: rule}
		return s.renderSite(c, st, status(err), fieldErrors(err))
	}
	port, err := strconv.Atoi(strings.TrimSpace(c.PostForm("port")))
	if err != nil || port < 1 || port > 65535 {
		return refuse("must be a port number from 1 to 65535")
	}
	proto := c.PostForm("proto")
	if proto != "udp" {
		proto = "tcp"
	}
	all, err := s.store.ListForwards(ctx, st.Name)
	if err != nil {
		return err
	}
	var existing []*store.Forward
	for _, f := range all {
		if f.Service != sshService {
			existing = append(existing, f)
		}
	}
	for _, f := range existing {
		if f.ContainerPort == port && f.Proto == proto {
			return refuse("is already forwarded, on host port " + strconv.Itoa(f.HostPort))
		}
	}
	if len(existing) >= maxForwards {
		return refuse("cannot be added: a site has at most " + strconv.Itoa(maxForwards) + " forwards")
	}
	if _, err := s.ops.Submit(ctx, ops.Forward, st.Name, currentUser(c).Name, ops.ForwardArgs{Port: port, Proto: proto}); err != nil {
		return err
	}
	c.Redirect(http.StatusSeeOther, "/sites/"+st.Name+"#forwards")
	return nil
}

func (s *Server) removeForward(c *gin.Context) error {
	ctx := c.Request.Context()
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	hp, err := strconv.Atoi(c.PostForm("host_port"))
	if err != nil {
		return errNotFound
	}
	fs, err := s.store.ListForwards(ctx, st.Name)
	if err != nil {
		return err
	}
	found := false
	for _, f := range fs {
		found = found || (f.HostPort == hp && f.Service != sshService)
	}
	if !found {
		return errNotFound
	}
	if _, err := s.ops.Submit(ctx, ops.Unforward, st.Name, currentUser(c).Name, ops.ForwardArgs{HostPort: hp}); err != nil {
		return err
	}
	c.Redirect(http.StatusSeeOther, "/sites/"+st.Name+"#forwards")
	return nil
}
