package panel

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/auth"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

const (
	ctxUser    = "darse.user"
	ctxSession = "darse.session"
	preCookie  = "darse_pre" // random value the CSRF token of pre-login forms is bound to
)

// preCookieName is preCookie's name here: behind TLS __Host-…, which a
// tenant's site on a sibling domain cannot set for the panel (cookie
// tossing would otherwise fix a pre-login value whose token it knows).
func (s *Server) preCookieName() string {
	if s.cfg.SecureCookies {
		return "__Host-" + preCookie
	}
	return preCookie
}

func (s *Server) sessionCookie() string {
	if s.cfg.SecureCookies {
		return "__Host-darse_session" // only settable by this host, over HTTPS, for path /
	}
	return "darse_session"
}

func currentUser(c *gin.Context) *store.User {
	u, _ := c.Get(ctxUser)
	user, _ := u.(*store.User)
	return user
}

func currentSession(c *gin.Context) *store.Session {
	v, _ := c.Get(ctxSession)
	se, _ := v.(*store.Session)
	return se
}

// loadSession finds the member behind the session cookie, if any.
func (s *Server) loadSession(c *gin.Context) {
	tok, err := c.Cookie(s.sessionCookie())
	if err == nil && tok != "" {
		se, u, err := s.store.GetSession(c.Request.Context(), auth.TokenHash(tok), s.cfg.Now())
		switch {
		case err == nil:
			c.Set(ctxUser, u)
			c.Set(ctxSession, se)
		case !errors.Is(err, store.ErrNotFound):
			s.fail(c, err)
			return
		}
	}
	c.Next()
}

// requireUser sends visitors to the login page (scripts get 401).
func (s *Server) requireUser(c *gin.Context) {
	if currentUser(c) != nil {
		c.Next()
		return
	}
	if wantsJSON(c) {
		c.AbortWithStatusJSON(http.StatusUnauthorized, jsonError{Error: "log in first"})
		return
	}
	next := c.Request.URL.RequestURI()
	if c.Request.Method != http.MethodGet {
		next = "/sites"
	}
	c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(next))
	c.Abort()
}

// requireAdmin answers 404 to members: admin pages do not exist for them.
func (s *Server) requireAdmin(c *gin.Context) {
	if u := currentUser(c); u == nil || !u.Admin {
		s.fail(c, errNotFound)
		return
	}
	c.Next()
}

// csrfToken is the token forms of this page carry: the session's own, or
// before login one bound to the visitor's pre-login cookie.
func (s *Server) csrfToken(c *gin.Context) string {
	if se := currentSession(c); se != nil {
		return se.CSRF
	}
	pre, err := c.Cookie(s.preCookieName())
	if err != nil || len(pre) < 32 {
		pre, _ = auth.Token()
		s.setCookie(c, s.preCookieName(), pre, 0)
		c.Request.AddCookie(&http.Cookie{Name: s.preCookieName(), Value: pre}) // the same page may ask again
	}
	return s.anonToken(pre)
}

func (s *Server) anonToken(pre string) string {
	m := hmac.New(sha256.New, s.anonKey)
	m.Write([]byte("pre-login form\x00" + pre))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF refuses a state-changing request without the page's token.
func (s *Server) checkCSRF(c *gin.Context) {
	got := c.GetHeader("X-CSRF-Token")
	if got == "" {
		if err := parseForm(c.Request); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.fail(c, tooLarge{tooBig.Limit})
				return
			}
		}
		got = c.PostForm("csrf")
	}
	var want string
	if se := currentSession(c); se != nil {
		want = se.CSRF
	} else if pre, err := c.Cookie(s.preCookieName()); err == nil && len(pre) >= 32 {
		want = s.anonToken(pre)
	}
	if got == "" || want == "" || !auth.Equal(got, want) {
		s.fail(c, errCSRF)
		return
	}
	c.Next()
}

// errCrossOrigin is a state-changing request a browser sent from another
// site; a 403 like a missing form token.
type errCrossOrigin struct{ err error }

func (e errCrossOrigin) Error() string {
	return "this request came from another site: the panel only accepts forms sent from its own pages"
}
func (e errCrossOrigin) Unwrap() error { return errCSRF }

// sameOrigin refuses a POST a browser sent from another site, even with a
// valid form token: a tenant's site on a sibling domain is "same-site", so
// SameSite=Lax cookies alone do not keep it out. Browsers say where a
// request comes from (Sec-Fetch-Site, Origin); requests without either
// (scripts, curl) and safe methods pass.
func (s *Server) sameOrigin(c *gin.Context) {
	if err := s.origins.Check(c.Request); err != nil {
		s.fail(c, errCrossOrigin{err})
		return
	}
	c.Next()
}

// parseForm reads the body as the form it is, reporting what went wrong
// (gin's PostForm would swallow a body over the limit as an empty form).
func parseForm(r *http.Request) error {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		return r.ParseMultipartForm(8 << 20)
	}
	return r.ParseForm()
}

func (s *Server) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: s.cfg.SecureCookies, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// secureHeaders keeps the panel out of frames and scripts to its own.
func (s *Server) secureHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if !strings.HasPrefix(c.Request.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store")
	}
	if s.cfg.SecureCookies {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.Next()
}

// startSession logs the member in on this browser with a fresh token:
// whatever session the browser had is dropped (rotation at login).
func (s *Server) startSession(c *gin.Context, u *store.User) error {
	ctx := c.Request.Context()
	if old := currentSession(c); old != nil {
		if err := s.store.DeleteSession(ctx, old.TokenHash); err != nil {
			return err
		}
	}
	tok, err := auth.Token()
	if err != nil {
		return err
	}
	csrf, err := auth.Token()
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	se := store.Session{TokenHash: auth.TokenHash(tok), User: u.Name, CSRF: csrf, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.store.CreateSession(ctx, se); err != nil {
		return err
	}
	s.setCookie(c, s.sessionCookie(), tok, int(s.cfg.SessionTTL.Seconds()))
	c.Set(ctxSession, &se)
	c.Set(ctxUser, u)
	return nil
}

// localPath keeps a ?next= redirect on the panel itself: an absolute path
// on this host, or def. Browsers take "//x", "/\x" and "/<tab>/x" (they
// drop tabs and newlines, and read a backslash as a slash) to host x.
func localPath(next, def string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return def
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return def
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return def
	}
	return next
}

func (s *Server) home(c *gin.Context) error {
	if currentUser(c) == nil {
		c.Redirect(http.StatusSeeOther, "/login")
		return nil
	}
	c.Redirect(http.StatusSeeOther, "/sites")
	return nil
}

func (s *Server) loginPage(c *gin.Context) error {
	if currentUser(c) != nil {
		c.Redirect(http.StatusSeeOther, localPath(c.Query("next"), "/sites"))
		return nil
	}
	v := loginView{Page: s.page(c, "Log in"), Next: localPath(c.Query("next"), "")}
	if c.Query("bye") != "" {
		v.Page.Flash = "You are logged out."
	}
	s.render(c, http.StatusOK, "login", v)
	return nil
}

func (s *Server) login(c *gin.Context) error {
	ctx := c.Request.Context()
	name := strings.TrimSpace(c.PostForm("name"))
	pw := c.PostForm("password")
	next := localPath(c.PostForm("next"), "/sites")
	view := loginView{Name: name, Next: localPath(c.PostForm("next"), "")}
	refuse := func(err error) error {
		view.Page = s.page(c, "Log in")
		view.Error = err.Error()
		s.render(c, status(err), "login", view)
		return nil
	}
	// Counted before the password is checked: of any number of parallel
	// attempts, at most the limit reach the (costly) verification.
	attempt, wait := s.limiter.Try("addr:"+c.ClientIP(), "member:"+name)
	if wait > 0 {
		c.Header("Retry-After", itoa(int(wait.Seconds())+1))
		view.Limited = true
		return refuse(rateLimited{wait})
	}
	u, err := s.store.GetUser(ctx, name)
	hash := s.dummyHash
	switch {
	case err == nil:
		hash = u.Hash
	case errors.Is(err, store.ErrNotFound):
		u = nil
	default:
		return err
	}
	ok, err := s.cfg.verify(pw, hash)
	if err != nil {
		s.log.Error("stored password hash unreadable", "user", name, "err", err)
	}
	if !ok || u == nil {
		return refuse(errLogin)
	}
	if u.Disabled {
		return refuse(&site.FieldError{Field: "member", Value: name, Rule: "is disabled; ask an admin"})
	}
	// A success does not count, and clears the member's failures; the
	// address keeps its failures, or a member of its own could reset them
	// between guesses at others.
	s.limiter.Forgive(attempt)
	s.limiter.Reset("member:" + name)
	if err := s.startSession(c, u); err != nil {
		return err
	}
	s.log.Info("login", "user", u.Name, "addr", c.ClientIP())
	c.Redirect(http.StatusSeeOther, next)
	return nil
}

func (s *Server) logout(c *gin.Context) error {
	if se := currentSession(c); se != nil {
		if err := s.store.DeleteSession(c.Request.Context(), se.TokenHash); err != nil {
			return err
		}
	}
	s.setCookie(c, s.sessionCookie(), "", -1)
	c.Redirect(http.StatusSeeOther, "/login?bye=1")
	return nil
}

func (s *Server) setupPage(c *gin.Context) error {
	tok := c.Query("token")
	ok, err := s.store.SetupTokenValid(c.Request.Context(), auth.TokenHash(tok), s.cfg.Now())
	if err != nil {
		return err
	}
	if !ok {
		return setupLinkGone
	}
	s.render(c, http.StatusOK, "setup", setupView{Page: s.page(c, "Create the first admin"), Token: tok})
	return nil
}

var setupLinkGone = notFoundError("This setup link is unknown, used or expired. Restart the panel for a new one, or run `darse user add NAME --admin` on the server.")

func (s *Server) setup(c *gin.Context) error {
	ctx := c.Request.Context()
	view := setupView{Token: c.PostForm("token"), Name: strings.TrimSpace(c.PostForm("name"))}
	fail := func(err error) error {
		view.Page = s.page(c, "Create the first admin")
		view.Errors = fieldErrors(err)
		s.render(c, status(err), "setup", view)
		return nil
	}
	// A dead link answers as such whatever the form holds.
	if ok, err := s.store.SetupTokenValid(ctx, auth.TokenHash(view.Token), s.cfg.Now()); err != nil {
		return err
	} else if !ok {
		return setupLinkGone
	}
	if err := site.ValidateOwner(view.Name); err != nil {
		return fail(&site.FieldError{Field: "name", Value: view.Name, Rule: err.(*site.FieldError).Rule})
	}
	pw := c.PostForm("password")
	if err := auth.ValidatePassword(pw); err != nil {
		return fail(err)
	}
	if pw != c.PostForm("confirm") {
		return fail(&site.FieldError{Field: "confirm", Value: "…", Rule: "does not match the password"})
	}
	hash, err := auth.Hash(pw, s.cfg.HashParams)
	if err != nil {
		return err
	}
	u := store.User{Name: view.Name, Hash: hash, Admin: true, Quota: store.DefaultQuota}
	if err := s.store.ClaimSetup(ctx, auth.TokenHash(view.Token), s.cfg.Now(), u); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return setupLinkGone
		}
		if errors.Is(err, store.ErrUserExists) {
			return fail(&site.FieldError{Field: "name", Value: view.Name, Rule: "is taken"})
		}
		return err
	}
	created, err := s.store.GetUser(ctx, u.Name)
	if err != nil {
		return err
	}
	s.log.Info("first admin created through the setup link", "user", u.Name)
	if err := s.startSession(c, created); err != nil {
		return err
	}
	c.Redirect(http.StatusSeeOther, "/admin")
	return nil
}

func (s *Server) accountPage(c *gin.Context) error {
	v := accountView{Page: s.page(c, "Your account")}
	v.Page.Nav = "account"
	if c.Query("changed") != "" {
		v.Page.Flash = "Password changed. Your other sessions have been logged out."
	}
	n, err := s.store.CountSitesOwnedBy(c.Request.Context(), currentUser(c).Name)
	if err != nil {
		return err
	}
	v.Sites = n
	s.render(c, http.StatusOK, "account", v)
	return nil
}

func (s *Server) changePassword(c *gin.Context) error {
	ctx := c.Request.Context()
	u := currentUser(c)
	fail := func(err error) error {
		v := accountView{Page: s.page(c, "Your account"), Errors: fieldErrors(err)}
		v.Page.Nav = "account"
		v.Sites, _ = s.store.CountSitesOwnedBy(ctx, u.Name)
		s.render(c, status(err), "account", v)
		return nil
	}
	if ok, _ := auth.Verify(c.PostForm("current"), u.Hash); !ok {
		return fail(&site.FieldError{Field: "current", Value: "…", Rule: "is not your current password"})
	}
	pw := c.PostForm("password")
	if err := auth.ValidatePassword(pw); err != nil {
		return fail(err)
	}
	if pw != c.PostForm("confirm") {
		return fail(&site.FieldError{Field: "confirm", Value: "…", Rule: "does not match the new password"})
	}
	hash, err := auth.Hash(pw, s.cfg.HashParams)
	if err != nil {
		return err
	}
	if err := s.store.SetPassword(ctx, u.Name, hash); err != nil { // ends every session
		return err
	}
	c.Set(ctxSession, (*store.Session)(nil))
	u.Hash = hash
	if err := s.startSession(c, u); err != nil {
		return err
	}
	c.Redirect(http.StatusSeeOther, "/account?changed=1")
	return nil
}
