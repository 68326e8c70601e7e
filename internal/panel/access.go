package panel

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/sshkey"
)

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

// addForward records the operation that allocates a host port and
// renders the site with it; the forward kind's check (hosting's rules, as
// the CLI's) answers a bad request next to the form.
func (s *Server) addForward(c *gin.Context) error {
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(strings.TrimSpace(c.PostForm("port")))
	if err != nil {
		ferr := &site.FieldError{Field: "port", Value: c.PostForm("port"), Rule: "must be a port number from 1 to 65535"}
		return s.renderSite(c, st, status(ferr), fieldErrors(ferr))
	}
	proto := c.PostForm("proto")
	if proto != "udp" {
		proto = "tcp"
	}
	_, err = s.ops.Submit(c.Request.Context(), ops.Request{Site: st.Name, User: currentUser(c).Name}, &ops.Forward{Port: port, Proto: proto})
	if status(err) == http.StatusUnprocessableEntity {
		return s.renderSite(c, st, status(err), fieldErrors(err))
	}
	if err != nil {
		return err
	}
	c.Redirect(http.StatusSeeOther, "/sites/"+st.Name+"#forwards")
	return nil
}

// removeForward records the removal of one of the site's forwards; a
// host port the site does not forward (or its SSH access) is not found.
func (s *Server) removeForward(c *gin.Context) error {
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	hp, err := strconv.Atoi(c.PostForm("host_port"))
	if err != nil {
		return errNotFound
	}
	_, err = s.ops.Submit(c.Request.Context(), ops.Request{Site: st.Name, User: currentUser(c).Name}, &ops.Unforward{HostPort: hp})
	if errors.Is(err, hosting.ErrInput) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	c.Redirect(http.StatusSeeOther, "/sites/"+st.Name+"#forwards")
	return nil
}
