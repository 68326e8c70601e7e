package panel

import (
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

// addKey authorizes a public key on the site. Keys live in the store only
// (no engine work), so no operation is recorded.
func (s *Server) addKey(c *gin.Context) error {
	ctx := c.Request.Context()
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	k, err := sshkey.Parse(c.PostForm("key"))
	if err != nil {
		return s.renderSite(c, st, status(err), fieldErrors(err))
	}
	_, err = s.store.AddKey(ctx, store.SSHKey{Site: st.Name, Fingerprint: k.Fingerprint, Key: k.Line, Comment: k.Comment})
	if errors.Is(err, store.ErrKeyExists) {
		err = &site.FieldError{Field: "key", Value: k.Fingerprint, Rule: "is already authorized on this site"}
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
	if err := s.store.DeleteKey(c.Request.Context(), st.Name, c.PostForm("fingerprint")); err != nil {
		return err
	}
	s.log.Info("ssh key removed", "site", st.Name, "fingerprint", c.PostForm("fingerprint"), "user", currentUser(c).Name)
	c.Redirect(http.StatusSeeOther, "/sites/"+st.Name+"#keys")
	return nil
}

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
	existing, err := s.store.ListForwards(ctx, st.Name)
	if err != nil {
		return err
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
		found = found || f.HostPort == hp
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
