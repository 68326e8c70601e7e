package panel

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/render"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
	tmpl "github.com/darse/darse/internal/template"
)

// ownSite returns the site named in the URL if the member may see it:
// their own, or any for an admin. Anything else is 404, exactly like a
// site that does not exist.
func (s *Server) ownSite(c *gin.Context) (*store.Site, error) {
	st, err := s.store.GetSite(c.Request.Context(), c.Param("site"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	if u := currentUser(c); !u.Admin && st.Owner != u.Name {
		return nil, errNotFound
	}
	return st, nil
}

// newCard is a site's card before its state is known, with the links
// visitors open.
func (s *Server) newCard(name, owner, template, domain string, aliases []string) siteCard {
	c := siteCard{Name: name, Owner: owner, Template: template, Domain: domain, Aliases: aliases}
	for _, host := range append([]string{domain}, aliases...) {
		if host != "" {
			c.Links = append(c.Links, siteLink{Host: host, URL: s.cfg.siteURL(host)})
		}
	}
	return c
}

// card is one site with its full status, for its own page.
func (s *Server) card(ctx context.Context, st *store.Site) (siteCard, error) {
	card := s.newCard(st.Name, st.Owner, st.Template, st.Domain, st.Aliases)
	card.Plan = st.Plan
	status, err := s.sites.Status(ctx, st.Name)
	if err != nil {
		card.State, card.Problem = stateUnknown, message(err)
		return card, nil
	}
	card.State = status.State
	card.Drift = status.Drift
	card.Problem = status.Error
	card.Services = status.Services
	cards := []siteCard{card}
	if err := s.markFailures(ctx, cards); err != nil {
		return card, err
	}
	return cards[0], nil
}

// quickCards are cards read without asking the engine per site: hosting
// gives each state from the (cached) list of every container, and the
// drift of each folder. The site page itself asks hosting for the full
// status.
func (s *Server) quickCards(ctx context.Context, sites []*store.Site) ([]siteCard, error) {
	names := make([]string, len(sites))
	for i, st := range sites {
		names[i] = st.Name
	}
	states, err := s.states(ctx, names)
	if err != nil {
		return nil, err
	}
	drifts, problems, err := s.sites.Drifts(ctx, names)
	if err != nil {
		return nil, err
	}
	cards := make([]siteCard, len(sites))
	for i, st := range sites {
		q := states[st.Name]
		cards[i] = s.newCard(st.Name, st.Owner, st.Template, st.Domain, st.Aliases)
		cards[i].Plan, cards[i].State, cards[i].Services, cards[i].Problem, cards[i].Drift = st.Plan, q.State, q.Services, q.Problem, drifts[st.Name]
		if err := problems[st.Name]; err != nil && cards[i].Problem == "" {
			cards[i].Problem = err.Error()
		}
	}
	if err := s.markFailures(ctx, cards); err != nil {
		return nil, err
	}
	return cards, nil
}

// states asks hosting for the named sites' states from one listing of
// the engine's containers; without an engine every state is unknown.
func (s *Server) states(ctx context.Context, names []string) (map[string]hosting.Quick, error) {
	if s.engine == nil {
		out := make(map[string]hosting.Quick, len(names))
		for _, n := range names {
			out[n] = hosting.Quick{State: stateUnknown}
		}
		return out, nil
	}
	cs, err := s.allContainers(ctx)
	if err != nil {
		return nil, err
	}
	return s.sites.QuickStates(names, cs), nil
}

func (s *Server) dashboard(c *gin.Context) error {
	ctx := c.Request.Context()
	u := currentUser(c)
	owned, err := s.store.ListSitesOwnedBy(ctx, u.Name)
	if err != nil {
		return err
	}
	pending, err := s.ops.PendingCreates(ctx, u.Name)
	if err != nil {
		return err
	}
	running, err := s.store.ListOps(ctx, store.OpFilter{Owner: u.Name, States: []string{store.OpQueued, store.OpRunning}})
	if err != nil {
		return err
	}
	busy := map[string]*store.Operation{}
	for _, op := range running {
		busy[op.Site] = op
	}
	v := dashboardView{Page: s.page(c, "Your sites"), Quota: u.Quota, Used: len(owned) + len(pending)}
	v.Page.Nav = "sites"
	cards, err := s.quickCards(ctx, owned)
	if err != nil {
		return err
	}
	for i := range cards {
		cards[i].Pending = busy[cards[i].Name]
	}
	v.Sites = append(v.Sites, cards...)
	for _, op := range pending {
		card := s.newCard(op.Site, u.Name, "", "", nil)
		card.State, card.Pending = stateCreating, op
		v.Sites = append(v.Sites, card)
	}
	sort.Slice(v.Sites, func(i, j int) bool { return v.Sites[i].Name < v.Sites[j].Name })
	v.CanCreate = u.Admin || v.Used < u.Quota
	if m := s.cfg.Maintenance; m != nil {
		if at, soon := m(s.cfg.Now()); soon {
			v.Maintenance = at
		}
	}
	s.render(c, http.StatusOK, "dashboard", v)
	return nil
}

func (s *Server) templates() ([]*tmpl.Template, error) {
	names, err := tmpl.List(s.cfg.TemplatesDir)
	if err != nil {
		return nil, err
	}
	var out []*tmpl.Template
	for _, n := range names {
		t, err := tmpl.Load(s.cfg.TemplatesDir, n)
		if err != nil {
			s.log.Warn("template cannot be offered", "template", n, "err", err)
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

func (s *Server) newSiteView(c *gin.Context) (newSiteView, error) {
	u := currentUser(c)
	v := newSiteView{Page: s.page(c, "New site"), PlatformDomain: s.cfg.PlatformDomain, Template: "static", Quota: u.Quota}
	v.Page.Nav = "sites"
	ts, err := s.templates()
	if err != nil {
		return v, err
	}
	v.Templates = ts
	sums, err := tmpl.Summaries(s.cfg.TemplatesDir)
	if err != nil {
		return v, err
	}
	v.Runs = map[string]string{}
	for _, sum := range sums {
		images := make([]string, 0, len(sum.Runs))
		for _, r := range sum.Runs {
			_, image, _ := strings.Cut(r, "=")
			images = append(images, image)
		}
		v.Runs[sum.Name] = strings.Join(images, ", ")
	}
	n, err := s.store.CountSitesOwnedBy(c.Request.Context(), u.Name)
	if err != nil {
		return v, err
	}
	pending, err := s.ops.PendingCreates(c.Request.Context(), u.Name)
	if err != nil {
		return v, err
	}
	v.Used = n + len(pending)
	v.OverQuota = !u.Admin && v.Used >= u.Quota
	return v, nil
}

func (s *Server) newSitePage(c *gin.Context) error {
	v, err := s.newSiteView(c)
	if err != nil {
		return err
	}
	// Filled in again from a creation that failed (its operation page links here).
	v.Name, v.Domain = c.Query("name"), c.Query("domain")
	if t := c.Query("template"); t != "" {
		v.Template = t
	}
	s.render(c, http.StatusOK, "new", v)
	return nil
}

// quota is the member's allowance as the store checks it; admins have none.
func quota(u *store.User) int {
	if u.Admin {
		return -1
	}
	return u.Quota
}

func (s *Server) createSite(c *gin.Context) error {
	ctx := c.Request.Context()
	u := currentUser(c)
	name := strings.TrimSpace(c.PostForm("name"))
	k := &ops.Create{
		Template: c.PostForm("template"),
		Domain:   strings.TrimSpace(strings.ToLower(c.PostForm("domain"))),
		Set:      map[string]string{},
	}
	form, _ := c.MultipartForm()
	values := c.Request.PostForm
	if form != nil {
		values = form.Value
	}
	for key, vs := range values {
		if p, ok := strings.CutPrefix(key, "param."); ok && len(vs) > 0 && strings.TrimSpace(vs[0]) != "" {
			k.Set[p] = strings.TrimSpace(vs[0])
		}
	}
	fail := func(err error) error {
		if status(err) == http.StatusInternalServerError {
			return err
		}
		v, verr := s.newSiteView(c)
		if verr != nil {
			return verr
		}
		v.Name, v.Template, v.Domain, v.Set = name, k.Template, k.Domain, k.Set
		v.Errors = fieldErrors(err)
		s.render(c, status(err), "new", v)
		return nil
	}
	id, err := s.ops.Submit(ctx, ops.Request{Site: name, Owner: u.Name, User: u.Name, Quota: quota(u)}, k)
	switch {
	case errors.Is(err, store.ErrQuota):
		return fail(&site.FieldError{Field: "site name", Value: name, Rule: "cannot be created: you already have " + strconv.Itoa(u.Quota) + " sites, your quota (ask an admin for more)"})
	case errors.Is(err, store.ErrPending):
		return fail(&site.FieldError{Field: "site name", Value: name, Rule: "is already being created"})
	case err != nil:
		return fail(err)
	}
	c.Redirect(http.StatusSeeOther, "/ops/"+strconv.FormatInt(id, 10))
	return nil
}

// checkSite answers the create form's as-you-type check with the same
// rules the CLI and the create handler apply.
func (s *Server) checkSite(c *gin.Context) error {
	ctx := c.Request.Context()
	name := strings.TrimSpace(c.Query("name"))
	out := checkResult{OK: true, Domain: site.DefaultDomain(name, s.cfg.PlatformDomain)}
	if err := s.sites.CheckName(ctx, name); err != nil {
		var fe *site.FieldError
		if !errors.As(err, &fe) {
			return err
		}
		out.OK, out.Error = false, fe.Rule
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *Server) sitePage(c *gin.Context) error {
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	return s.renderSite(c, st, http.StatusOK, nil)
}

// renderSite shows the site's page, with errors next to its forms' fields.
func (s *Server) renderSite(c *gin.Context, st *store.Site, code int, errs FieldErrors) error {
	ctx := c.Request.Context()
	card, err := s.card(ctx, st)
	if err != nil {
		return err
	}
	v := siteView{Page: s.page(c, st.Name), Site: card, Errors: errs, UploadMax: s.cfg.UploadMax >> 20,
		Files: filepath.Join(s.cfg.UsersDir, st.Name, render.DataDir)}
	v.Page.Nav = "sites"
	if st.Owner != v.Page.User.Name { // an admin looking at another's site
		v.Page.Nav = "admin"
	} else if v.Secrets, err = s.sites.Secrets(ctx, st.Name); err != nil {
		return err
	}
	if v.Ops, err = s.store.ListOps(ctx, store.OpFilter{Site: st.Name, Limit: 8}); err != nil {
		return err
	}
	if v.Keys, err = s.store.ListKeys(ctx, st.Name); err != nil {
		return err
	}
	if v.Forwards, err = s.store.ListForwards(ctx, st.Name); err != nil {
		return err
	}
	for _, op := range v.Ops {
		if op.State == store.OpQueued || op.State == store.OpRunning {
			v.Site.Pending = op
			break
		}
	}
	s.render(c, code, "site", v)
	return nil
}

// siteStatus is the live state the site and dashboard pages poll.
func (s *Server) siteStatus(c *gin.Context) error {
	ctx := c.Request.Context()
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	cards, err := s.quickCards(ctx, []*store.Site{st})
	if err != nil {
		return err
	}
	card := cards[0]
	out := liveStatus{Site: st.Name, State: card.State, Label: card.Label()}
	list, err := s.store.ListOps(ctx, store.OpFilter{Site: st.Name, States: []string{store.OpQueued, store.OpRunning}, Limit: 1})
	if err != nil {
		return err
	}
	if len(list) > 0 {
		out.Pending = list[0].Kind
	}
	for _, svc := range card.Services {
		out.Services = append(out.Services, liveService{Service: svc.Service, State: svc.State, Health: svc.Health})
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *Server) deletePage(c *gin.Context) error {
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	v := deleteView{Page: s.page(c, "Delete "+st.Name), Site: st.Name, Domain: st.Domain}
	v.Page.Nav = "sites"
	s.render(c, http.StatusOK, "delete", v)
	return nil
}

// siteActions are the buttons of a site's page, by the action in their URL.
var siteActions = map[string]func() ops.Kind{
	"start":   func() ops.Kind { return new(ops.Up) },
	"stop":    func() ops.Kind { return new(ops.Stop) },
	"restart": func() ops.Kind { return new(ops.Restart) },
}

func (s *Server) siteAction(c *gin.Context) error {
	ctx := c.Request.Context()
	switch c.Param("action") {
	case "content":
		return s.upload(c)
	case "key-add":
		return s.addKey(c)
	case "key-remove":
		return s.removeKey(c)
	case "forward-add":
		return s.addForward(c)
	case "forward-remove":
		return s.removeForward(c)
	case "delete":
		return s.deleteSite(c)
	}
	mk, ok := siteActions[c.Param("action")]
	if !ok {
		return errNotFound
	}
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	k := mk()
	id, err := s.ops.Submit(ctx, ops.Request{Site: st.Name, User: currentUser(c).Name}, k)
	if err != nil {
		return err
	}
	if wantsJSON(c) {
		c.JSON(http.StatusAccepted, opStatus{ID: id, Kind: k.Name(), Site: st.Name, State: store.OpQueued})
		return nil
	}
	c.Redirect(http.StatusSeeOther, "/sites/"+st.Name)
	return nil
}

// deleteSite records the removal of the site once its name is typed to
// confirm it; a final archive of data/ is kept unless asked otherwise.
func (s *Server) deleteSite(c *gin.Context) error {
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	if c.PostForm("confirm") != st.Name {
		v := deleteView{Page: s.page(c, "Delete "+st.Name), Site: st.Name, Domain: st.Domain,
			Errors: fieldErrors(&site.FieldError{Field: "confirm", Value: c.PostForm("confirm"), Rule: "type the site's name to confirm"})}
		s.render(c, http.StatusUnprocessableEntity, "delete", v)
		return nil
	}
	k := &ops.Remove{Purge: true, Archive: c.PostForm("discard") != "on"}
	id, err := s.ops.Submit(c.Request.Context(), ops.Request{Site: st.Name, User: currentUser(c).Name}, k)
	if err != nil {
		return err
	}
	if wantsJSON(c) {
		c.JSON(http.StatusAccepted, opStatus{ID: id, Kind: k.Name(), Site: st.Name, State: store.OpQueued})
		return nil
	}
	c.Redirect(http.StatusSeeOther, "/ops/"+strconv.FormatInt(id, 10))
	return nil
}

// mayRead reports whether the member may follow the operation: asked by
// them, acting for them (on their site, or creating one for them), or
// any for an admin.
func mayRead(u *store.User, op *store.Operation) bool {
	return u.Admin || op.User == u.Name || op.Owner == u.Name
}

func (s *Server) opPage(c *gin.Context) error {
	ctx := c.Request.Context()
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return errNotFound
	}
	op, err := s.store.GetOp(ctx, id)
	if err != nil {
		return err
	}
	if !mayRead(currentUser(c), op) {
		return errNotFound
	}
	k, err := ops.Decode(op)
	if err != nil {
		return err
	}
	rm, removal := k.(*ops.Remove)
	out := opStatus{ID: op.ID, Kind: op.Kind, Site: op.Site, State: op.State, Error: op.Error}
	if op.State == store.OpDone && !removal {
		out.Next = "/sites/" + op.Site
	}
	v := opView{Page: s.page(c, k.Title()+" · "+op.Site), Op: op, Next: out.Next}
	v.Page.Nav = "sites"
	if removal && op.State == store.OpDone {
		v.Archive = rm.Path
	}
	if op.State == store.OpFailed {
		if err := s.explainFailure(ctx, &v, k); err != nil {
			return err
		}
		if !currentUser(c).Admin { // the raw error is for admins
			out.Error = v.Failure
		}
	}
	if wantsJSON(c) {
		c.JSON(http.StatusOK, out)
		return nil
	}
	s.render(c, http.StatusOK, "op", v)
	return nil
}

// explainFailure says what a failed operation means to a member and how
// to try again: start the site if it exists (what a creation that kept
// the site lacks), or fill in the create form again if it was undone.
func (s *Server) explainFailure(ctx context.Context, v *opView, k ops.Kind) error {
	op := v.Op
	st, err := s.store.GetSite(ctx, op.Site)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	exists := err == nil && st.Owner == op.Owner // not another's site made since under the name
	v.Failure = failureText(op, exists)
	switch {
	case exists:
		v.Next = "/sites/" + op.Site
		if bringsUp(op.Kind) {
			v.Retry = "/sites/" + op.Site + "/start"
		}
	default:
		if cr, ok := k.(*ops.Create); ok {
			q := url.Values{"name": {op.Site}, "template": {cr.Template}}
			if cr.Domain != "" {
				q.Set("domain", cr.Domain)
			}
			v.Again = "/sites/new?" + q.Encode()
		}
	}
	return nil
}
