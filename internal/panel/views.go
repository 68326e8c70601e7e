package panel

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
	tmpl "github.com/darse/darse/internal/template"
	"github.com/darse/darse/internal/version"
)

// Page is what every view has: who is looking, the form token, the title.
type Page struct {
	Title string
	User  *store.User // nil when logged out
	CSRF  string
	Nav   string // the active navigation entry
	Flash string // a one-line confirmation
	// Version is darse's, shown in the footer.
	Version string
}

func (s *Server) page(c *gin.Context, title string) Page {
	return Page{Title: title, User: currentUser(c), CSRF: s.csrfToken(c), Version: version.Get().Version}
}

// FieldErrors maps a form field to the rule its value broke.
type FieldErrors map[string]string

// formField names the form input a FieldError's field is shown next to.
func formField(f string) string {
	switch {
	case f == "site name", f == "member name", f == "owner", f == "member":
		return "name"
	case strings.HasPrefix(f, "parameter "):
		return "param." + strings.TrimPrefix(f, "parameter ")
	case f == "parameter":
		return "form"
	}
	return f
}

// fieldErrors puts an error next to its field, or at the top ("form").
func fieldErrors(err error) FieldErrors {
	var fe *site.FieldError
	if errors.As(err, &fe) {
		return FieldErrors{formField(fe.Field): fe.Rule}
	}
	return FieldErrors{"form": message(err)}
}

type errorView struct {
	Page
	Status  int
	Message string
}

type loginView struct {
	Page
	Name    string
	Next    string
	Error   string
	Limited bool
}

type setupView struct {
	Page
	Token  string
	Name   string
	Errors FieldErrors
}

type accountView struct {
	Page
	Sites  int
	Errors FieldErrors
}

// siteCard is a site as lists and its own page show it.
type siteCard struct {
	Name     string
	Owner    string
	Template string
	Domain   string
	Aliases  []string
	Links    []siteLink // the domain, then the aliases
	Plan     site.Plan
	State    string // running, stopped, partial, unhealthy, creating, failed, unknown
	Services []hosting.ServiceStatus
	Drift    []string
	Problem  string           // why the folder could not be read
	Pending  *store.Operation // queued or running on the site
	Failure  *store.Operation // the failed operation when State is failed
}

// siteLink is one of a site's host names and the address visitors open.
type siteLink struct {
	Host string
	URL  string
}

type dashboardView struct {
	Page
	Sites     []siteCard
	Quota     int
	Used      int
	CanCreate bool
	// Maintenance is the next scheduled update, once within its notice.
	Maintenance time.Time
}

type newSiteView struct {
	Page
	Templates      []*tmpl.Template
	Runs           map[string]string // by template: what its services run
	PlatformDomain string
	Name           string
	Template       string
	Domain         string
	Set            map[string]string
	Errors         FieldErrors
	Quota, Used    int
	OverQuota      bool
}

type siteView struct {
	Page
	Site      siteCard
	Files     string // the folder of its files on the server
	Ops       []*store.Operation
	Errors    FieldErrors
	UploadMax int64 // MiB
	Keys      []*store.SSHKey
	Forwards  []*store.Forward
	// Secrets are the values darse generated for the site (its database's
	// credentials), shown to its owner only.
	Secrets []hosting.Secret
}

type deleteView struct {
	Page
	Site   string
	Domain string
	Errors FieldErrors
}

type opView struct {
	Page
	Op      *store.Operation
	Next    string
	Archive string
	Failure string // a failed operation in a member's terms
	Retry   string // where a retry of it is posted, if it can be retried
	Again   string // the create form filled in again, for a creation undone
}

type checkResult struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Domain string `json:"domain"`
}

type liveStatus struct {
	Site     string        `json:"site"`
	State    string        `json:"state"`
	Label    string        `json:"label"`
	Pending  string        `json:"pending,omitempty"` // kind of the queued or running operation
	Services []liveService `json:"services"`
}

type liveService struct {
	Service string `json:"service"`
	State   string `json:"state"`
	Health  string `json:"health,omitempty"`
}

type opStatus struct {
	ID    int64  `json:"id"`
	Kind  string `json:"kind"`
	Site  string `json:"site"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	Next  string `json:"next,omitempty"`
}

type logsView struct {
	Page
	Site      string
	Services  []string
	Service   string
	Container string
	Tail      int
	Text      string
	Problem   string
}

type logsJSON struct {
	Service string `json:"service"`
	Text    string `json:"text"`
	Problem string `json:"problem,omitempty"`
}

type serviceUsage struct {
	Service    string `json:"service"`
	CPU        string `json:"cpu"`
	Memory     string `json:"memory"`
	MemPercent int    `json:"mem_percent"`
}

type adminSitesView struct {
	Page
	Sites    []siteCard
	Query    string
	State    string
	Counts   map[string]int
	Total    int
	Matching int
	PageNum  int
	Pages    int
	Monitor  monitorView // incidents, top sites (charts.go)
}

type projectGroup struct {
	Project    string
	Kind       string // core, apps, users, other
	Containers []engine.ContainerInfo
}

type adminContainersView struct {
	Page
	Groups  []projectGroup
	Total   int
	Running int
	Problem string
}

type memberRow struct {
	*store.User
	Sites int
}

type adminMembersView struct {
	Page
	Members []memberRow
	Errors  FieldErrors
	Name    string
}

type adminOpsView struct {
	Page
	Ops   []*store.Operation
	State string
}

var funcs = template.FuncMap{
	"stateLabel": stateLabel,
	"ago":        ago,
	"join":       strings.Join,
	"charts":     chartNames,
	"opVerb":     ops.Title,
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
	"short": func(id string) string {
		if len(id) > 12 {
			return id[:12]
		}
		return id
	},
	"param": func(set map[string]string, name string) string { return set[name] },
	"split": strings.Fields,
	"add":   func(a, b int) int { return a + b },
	"took": func(op *store.Operation) string {
		if op.StartedAt.IsZero() || op.FinishedAt.IsZero() {
			return ""
		}
		return op.FinishedAt.Sub(op.StartedAt).Round(100 * time.Millisecond).String()
	},
}

func stateLabel(state string) string {
	switch state {
	case hosting.StateRunning:
		return "Running"
	case hosting.StateStopped:
		return "Stopped"
	case hosting.StatePartial:
		return "Partly running"
	case hosting.StateUnhealthy:
		return "Unhealthy"
	case stateCreating:
		return "Being created"
	case stateFailed:
		return "Start failed"
	}
	return "Unknown"
}

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min ago"
	case d < 24*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h ago"
	}
	return t.Local().Format("2 Jan 2006")
}

func itoa(n int) string { return strconv.Itoa(n) }

// parseViews parses each page of templates/ with the layout and partials.
func parseViews(web fs.FS) (map[string]*template.Template, error) {
	pages, err := fs.Glob(web, "templates/*.html")
	if err != nil {
		return nil, err
	}
	views := map[string]*template.Template{}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue
		}
		partials, _ := fs.Glob(web, "templates/_*.html")
		files := append([]string{"templates/layout.html"}, partials...)
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(web, append(files, p)...)
		if err != nil {
			return nil, fmt.Errorf("panel view %s: %w", name, err)
		}
		views[name] = t
	}
	for _, need := range []string{"error", "login", "setup", "account", "dashboard", "new", "site", "delete", "op",
		"admin_sites", "admin_containers", "admin_members", "admin_ops", "logs"} {
		if views[need] == nil {
			return nil, fmt.Errorf("panel view %s is missing", need)
		}
	}
	return views, nil
}

// render writes a page; a template error becomes a plain 500.
func (s *Server) render(c *gin.Context, code int, name string, data any) {
	var buf bytes.Buffer
	if err := s.views[name].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		s.log.Error("render panel view", "view", name, "err", err)
		c.String(http.StatusInternalServerError, "internal error rendering the page\n")
		return
	}
	c.Data(code, "text/html; charset=utf-8", buf.Bytes())
}
