// Package panel is darse's web panel: members manage their sites, admins
// see everything. Pages are html/template views served by Gin that work
// without JavaScript; a small script adds live state and as-you-type
// checks. Every state-changing click is recorded as an operation (package
// ops) that a worker carries out.
package panel

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/auth"
	"github.com/darse/darse/internal/content"
	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/store"
)

// Sites is what the panel reads about sites (*hosting.Hosting): one
// site's full status, and the states and drift of many from one listing
// of the engine's containers.
type Sites interface {
	Status(ctx context.Context, name string) (*hosting.Status, error)
	CheckName(ctx context.Context, name string) error
	Secrets(ctx context.Context, name string) ([]hosting.Secret, error)
	QuickStates(names []string, cs []engine.ContainerInfo) map[string]hosting.Quick
	Drifts(ctx context.Context, names []string) (map[string][]string, map[string]error, error)
}

// Operations records what members ask for (*ops.Runner).
type Operations interface {
	Submit(ctx context.Context, req ops.Request, k ops.Kind) (int64, error)
	PendingCreates(ctx context.Context, owner string) ([]*store.Operation, error)
}

// Engine is what the panel reads from the Docker engine (*engine.Engine):
// every container, a container's last log lines, its resource use.
type Engine interface {
	Containers(ctx context.Context) ([]engine.ContainerInfo, error)
	Logs(ctx context.Context, id string, tail int) (string, error)
	Usage(ctx context.Context, id string) (engine.Usage, error)
}

// Config is the panel's own configuration.
type Config struct {
	// SecureCookies marks cookies Secure (and names them __Host-…): set
	// it when the panel is reached over HTTPS, as behind the front door.
	SecureCookies bool
	// TrustedProxies are the addresses whose X-Forwarded-For is believed
	// (the front door); none by default, so the peer address is the client.
	TrustedProxies []string
	SessionTTL     time.Duration // default 12h
	TemplatesDir   string        // where site templates are read from
	UsersDir       string        // where site folders are (for drift)
	PlatformDomain string
	// SiteScheme and SitePort are how visitors reach sites, for the
	// links the panel shows: "https" once the front door gets
	// certificates (ACME), "http" otherwise (the default); SitePort only
	// when the front door listens on another port than the scheme's own.
	SiteScheme string
	SitePort   string
	HashParams auth.Params // password hashing cost; default auth.DefaultParams
	// LoginFailures failed logins per LoginWindow are allowed per client
	// address and per member name; the next attempt gets 429.
	LoginFailures int
	LoginWindow   time.Duration
	// UploadsDir keeps uploaded archives until their operation installs
	// them; UploadMax bounds an upload's size (default 64 MiB), and
	// ContentLimits what it may unpack to.
	UploadsDir    string
	UploadMax     int64
	ContentLimits content.Limits
	Backups       Backups // nil: none configured (backups.go)
	// Maintenance, when set, says when the next scheduled update is if
	// members are to be told of it by now (darse.yml's updates.notice).
	Maintenance func(now time.Time) (time.Time, bool)
	Now         func() time.Time

	verify func(pw, hash string) (bool, error) // checks a login's password; tests count the calls
}

// siteAddress checks SiteScheme and SitePort, defaulting the scheme to
// http and dropping a port that is the scheme's own.
func (cfg *Config) siteAddress() error {
	switch cfg.SiteScheme {
	case "":
		cfg.SiteScheme = "http"
	case "http", "https":
	default:
		return fmt.Errorf("panel site scheme %q: must be http or https", cfg.SiteScheme)
	}
	if cfg.SitePort == "" {
		return nil
	}
	if n, err := strconv.Atoi(cfg.SitePort); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("panel site port %q: must be a number from 1 to 65535", cfg.SitePort)
	}
	if (cfg.SiteScheme == "http" && cfg.SitePort == "80") || (cfg.SiteScheme == "https" && cfg.SitePort == "443") {
		cfg.SitePort = ""
	}
	return nil
}

// siteURL is the address visitors reach a site's host name at.
func (cfg *Config) siteURL(host string) string {
	if cfg.SitePort != "" {
		host = net.JoinHostPort(host, cfg.SitePort)
	}
	return cfg.SiteScheme + "://" + host + "/"
}

// Server is the panel.
type Server struct {
	cfg       Config
	store     *store.Store
	sites     Sites
	ops       Operations
	engine    Engine
	log       *slog.Logger
	views     map[string]*template.Template
	static    fs.FS
	limiter   *auth.Limiter
	anonKey   []byte // signs the CSRF token of forms shown before login
	dummyHash string // verified when the member does not exist, to keep timing flat
	origins   *http.CrossOriginProtection
	handler   http.Handler

	// The engine's container list, read at most every containersTTL: a
	// list of hundreds takes the engine tens of milliseconds.
	containersMu sync.Mutex
	containersAt time.Time
	containers   []engine.ContainerInfo
}

const containersTTL = time.Second

// allContainers is the engine's list of every container, at most
// containersTTL old; concurrent callers share one read.
func (s *Server) allContainers(ctx context.Context) ([]engine.ContainerInfo, error) {
	s.containersMu.Lock()
	defer s.containersMu.Unlock()
	if s.containers != nil && s.cfg.Now().Sub(s.containersAt) < containersTTL {
		return s.containers, nil
	}
	cs, err := s.engine.Containers(ctx)
	if err != nil {
		return nil, err
	}
	s.containers, s.containersAt = cs, s.cfg.Now()
	return cs, nil
}

// New builds the panel over the store. web holds templates/ and static/.
// eng may be nil: the pages that read the engine directly then say so.
func New(cfg Config, st *store.Store, sites Sites, ops Operations, eng Engine, web fs.FS, log *slog.Logger) (*Server, error) {
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.HashParams == (auth.Params{}) {
		cfg.HashParams = auth.DefaultParams
	}
	if cfg.LoginFailures == 0 {
		cfg.LoginFailures = 5
	}
	if cfg.LoginWindow == 0 {
		cfg.LoginWindow = 5 * time.Minute
	}
	if cfg.UploadMax == 0 {
		cfg.UploadMax = 64 << 20
	}
	if cfg.ContentLimits == (content.Limits{}) {
		cfg.ContentLimits = content.DefaultLimits
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.siteAddress(); err != nil {
		return nil, err
	}
	if cfg.verify == nil {
		cfg.verify = auth.Verify
	}
	s := &Server{cfg: cfg, store: st, sites: sites, ops: ops, engine: eng, log: log,
		limiter: auth.NewLimiter(cfg.LoginFailures, cfg.LoginWindow), anonKey: make([]byte, 32),
		origins: http.NewCrossOriginProtection()}
	s.limiter.Now = cfg.Now
	if _, err := rand.Read(s.anonKey); err != nil {
		return nil, err
	}
	var err error
	if s.dummyHash, err = auth.Hash("not a password anyone has", cfg.HashParams); err != nil {
		return nil, err
	}
	if s.views, err = parseViews(web); err != nil {
		return nil, err
	}
	if s.static, err = fs.Sub(web, "static"); err != nil {
		return nil, err
	}
	if s.handler, err = s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP serves the panel.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() (http.Handler, error) {
	r := gin.New()
	if err := r.SetTrustedProxies(s.cfg.TrustedProxies); err != nil {
		return nil, err
	}
	r.Use(s.recover, s.limitBody, s.secureHeaders, s.sameOrigin, s.loadSession)
	r.StaticFS("/static", http.FS(s.static))
	r.GET("/favicon.ico", func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, "/static/favicon.svg") })
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	r.GET("/readyz", s.ready)
	r.NoRoute(s.handle(func(c *gin.Context) error { return errNotFound }))

	r.GET("/", s.handle(s.home))
	r.GET("/login", s.handle(s.loginPage))
	r.GET("/setup", s.handle(s.setupPage))
	post := r.Group("/", s.checkCSRF)
	post.POST("/login", s.handle(s.login))
	post.POST("/setup", s.handle(s.setup))

	m := r.Group("/", s.requireUser)
	m.GET("/sites", s.handle(s.dashboard))
	m.GET("/sites/new", s.handle(s.newSitePage))
	m.GET("/sites/check", s.handle(s.checkSite))
	m.GET("/sites/:site", s.handle(s.sitePage))
	m.GET("/sites/:site/status", s.handle(s.siteStatus))
	m.GET("/sites/:site/delete", s.handle(s.deletePage))
	m.GET("/sites/:site/logs", s.handle(s.logsPage))
	m.GET("/sites/:site/usage", s.handle(s.siteUsage))
	m.GET("/sites/:site/history.svg", s.handle(s.siteChart))
	m.GET("/sites/:site/backups", s.handle(s.backupsPage))
	m.GET("/ops/:id", s.handle(s.opPage))
	m.GET("/account", s.handle(s.accountPage))
	mp := m.Group("/", s.checkCSRF)
	mp.POST("/logout", s.handle(s.logout))
	mp.POST("/sites", s.handle(s.createSite))
	for _, action := range siteActionRoutes {
		h := withParam("action", action, s.handle(s.siteAction))
		if action == "content" { // an upload may take minutes: longer deadlines, for members only
			m.POST("/sites/:site/"+action, s.slowUpload, s.checkCSRF, h)
			continue
		}
		mp.POST("/sites/:site/"+action, h)
	}
	mp.POST("/account/password", s.handle(s.changePassword))
	mp.POST("/sites/:site/backups/restore", s.handle(s.restoreBackup))

	a := m.Group("/admin", s.requireAdmin)
	a.GET("", s.handle(s.adminSites))
	a.GET("/containers", s.handle(s.adminContainers))
	a.GET("/members", s.handle(s.adminMembers))
	a.GET("/ops", s.handle(s.adminOps))
	a.GET("/history.svg", s.handle(s.hostChart))
	a.GET("/backups", s.handle(s.adminBackups))
	ap := a.Group("", s.checkCSRF)
	ap.POST("/members", s.handle(s.createMember))
	for _, action := range memberActionRoutes {
		ap.POST("/members/:member/"+action, withParam("action", action, s.handle(s.memberAction)))
	}
	return r, nil
}

// The actions on a site (siteAction) and on a member (memberAction) each
// have a route of their own rather than one ":action" route: the route
// table then lists every endpoint, and routes_test.go calls each one as
// another member. A new action needs its name here.
var (
	siteActionRoutes   = []string{"start", "stop", "restart", "delete", "content", "key-add", "key-remove", "forward-add", "forward-remove"}
	memberActionRoutes = []string{"disable", "enable", "grant-admin", "revoke-admin", "quota"}
)

// withParam serves a route of its own with a handler that reads the
// action from a parameter.
func withParam(key, value string, h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Params = append(c.Params, gin.Param{Key: key, Value: value})
		h(c)
	}
}

// Deadlines of the panel's connections (HTTPServer). A form is a few KiB
// and every page answers at once (engine work is done by operations), so
// a minute to send a request and two to get the answer are plenty; an
// upload gets uploadTimeout instead (slowUpload).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	writeTimeout      = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10 // cookies and a few headers; Go's default is 1 MiB
	// uploadTimeout is how long an upload may take: 64 MiB (the default
	// UploadMax) at 1 Mbit/s takes 9 minutes.
	uploadTimeout = 15 * time.Minute
)

// HTTPServer is an http.Server serving the panel, with deadlines that
// keep slow or stalled clients from holding connections.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// slowUpload gives a logged-in member's upload uploadTimeout to arrive and
// be answered, past the server's ReadTimeout and WriteTimeout.
func (s *Server) slowUpload(c *gin.Context) {
	rc := http.NewResponseController(c.Writer)
	until := time.Now().Add(uploadTimeout) // deadlines are real time, whatever Config.Now says
	if err := rc.SetReadDeadline(until); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.log.Warn("extend the read deadline of an upload", "err", err)
	}
	if err := rc.SetWriteDeadline(until); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.log.Warn("extend the write deadline of an upload", "err", err)
	}
	c.Next()
}

// SetupLink returns a one-time path that creates the first admin, valid
// for ttl, or "" when an admin exists already. The link dies as soon as
// any admin exists, however made.
func (s *Server) SetupLink(ctx context.Context, ttl time.Duration) (string, error) {
	tok, err := auth.Token()
	if err != nil {
		return "", err
	}
	err = s.store.CreateSetupToken(ctx, auth.TokenHash(tok), s.cfg.Now().Add(ttl))
	if errors.Is(err, store.ErrAdminExists) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return "/setup?token=" + tok, nil
}

// Sweep forgets expired sessions; call it now and then.
func (s *Server) Sweep(ctx context.Context) error {
	return s.store.DeleteExpiredSessions(ctx, s.cfg.Now())
}
