package panel

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/auth"
	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/site"
	"github.com/darse/darse/internal/store"
)

// adminPageSize rows of the site list are shown at a time.
const adminPageSize = 50

// adminSites lists every site from two reads, whatever their number: the
// store's rows and the engine's containers (one call), from which hosting
// gives each site's state; the store's latest operation is read for the
// sites that do not run (markFailures), drift for the rows shown only.
func (s *Server) adminSites(c *gin.Context) error {
	ctx := c.Request.Context()
	all, err := s.store.ListSiteSummaries(ctx)
	if err != nil {
		return err
	}
	names := make([]string, len(all))
	for i, st := range all {
		names[i] = st.Name
	}
	states, err := s.states(ctx, names)
	if err != nil {
		return err
	}
	q := strings.ToLower(strings.TrimSpace(c.Query("q")))
	state := c.Query("state")
	v := adminSitesView{Page: s.page(c, "All sites"), Query: q, State: state, Counts: map[string]int{}, Total: len(all)}
	v.Page.Nav = "admin"
	cards := make([]siteCard, len(all))
	for i, st := range all {
		qs := states[st.Name]
		cards[i] = s.newCard(st.Name, st.Owner, st.Template, st.Domain, st.Aliases)
		cards[i].State, cards[i].Services, cards[i].Problem = qs.State, qs.Services, qs.Problem
	}
	if err := s.markFailures(ctx, cards); err != nil {
		return err
	}
	var rows []siteCard
	for _, card := range cards {
		v.Counts[card.State]++
		if q != "" && !strings.Contains(card.Name, q) && !strings.Contains(card.Owner, q) && !strings.Contains(card.Domain, q) {
			continue
		}
		if state != "" && card.State != state {
			continue
		}
		rows = append(rows, card)
	}
	v.Matching = len(rows)
	v.Pages = (len(rows) + adminPageSize - 1) / adminPageSize
	v.PageNum, _ = strconv.Atoi(c.DefaultQuery("page", "1"))
	if v.PageNum < 1 || v.PageNum > v.Pages {
		v.PageNum = 1
	}
	from := (v.PageNum - 1) * adminPageSize
	rows = rows[from:min(from+adminPageSize, len(rows))]
	shown := make([]string, len(rows))
	for i := range rows {
		shown[i] = rows[i].Name
	}
	drifts, problems, err := s.sites.Drifts(ctx, shown)
	if err != nil {
		return err
	}
	for i := range rows {
		rows[i].Drift = drifts[rows[i].Name]
		if err := problems[rows[i].Name]; err != nil && rows[i].Problem == "" {
			rows[i].Problem = err.Error()
		}
	}
	v.Sites = rows
	v.Monitor = s.monitor(ctx)
	s.render(c, http.StatusOK, "admin_sites", v)
	return nil
}

// projectKind tells the platform's own projects from the members' by
// where their compose folder lives.
func projectKind(c engine.ContainerInfo) string {
	switch {
	case c.Project == "":
		return "other"
	case strings.Contains(c.WorkingDir, "/core/"):
		return "core"
	case strings.Contains(c.WorkingDir, "/apps/"):
		return "apps"
	case strings.Contains(c.WorkingDir, "/users/"):
		return "users"
	}
	return "other"
}

func (s *Server) adminContainers(c *gin.Context) error {
	v := adminContainersView{Page: s.page(c, "Containers")}
	v.Page.Nav = "admin"
	if s.engine == nil {
		v.Problem = "This panel has no connection to the Docker engine."
		s.render(c, http.StatusOK, "admin_containers", v)
		return nil
	}
	cs, err := s.allContainers(c.Request.Context())
	if err != nil {
		return err
	}
	byProject := map[string]*projectGroup{}
	for _, ct := range cs {
		key := ct.Project
		if key == "" {
			key = "(no compose project)"
		}
		g := byProject[key]
		if g == nil {
			g = &projectGroup{Project: key, Kind: projectKind(ct)}
			byProject[key] = g
		}
		g.Containers = append(g.Containers, ct)
		v.Total++
		if ct.State == "running" {
			v.Running++
		}
	}
	order := map[string]int{"core": 0, "apps": 1, "users": 2, "other": 3}
	for _, g := range byProject {
		v.Groups = append(v.Groups, *g)
	}
	sort.Slice(v.Groups, func(i, j int) bool {
		a, b := v.Groups[i], v.Groups[j]
		if order[a.Kind] != order[b.Kind] {
			return order[a.Kind] < order[b.Kind]
		}
		return a.Project < b.Project
	})
	s.render(c, http.StatusOK, "admin_containers", v)
	return nil
}

func (s *Server) membersView(c *gin.Context) (adminMembersView, error) {
	ctx := c.Request.Context()
	v := adminMembersView{Page: s.page(c, "Members")}
	v.Page.Nav = "admin"
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		return v, err
	}
	for _, u := range users {
		n, err := s.store.CountSitesOwnedBy(ctx, u.Name)
		if err != nil {
			return v, err
		}
		v.Members = append(v.Members, memberRow{User: u, Sites: n})
	}
	return v, nil
}

var memberFlash = map[string]string{
	"created": "Member %s created. Give them their password through a safe channel; they can change it under Account.",
	"disable": "Member %s disabled: their sessions have ended.", "enable": "Member %s can log in again.",
	"quota": "Quota of %s changed.", "grant-admin": "%s is now an admin.", "revoke-admin": "%s is no longer an admin.",
}

func (s *Server) adminMembers(c *gin.Context) error {
	v, err := s.membersView(c)
	if err != nil {
		return err
	}
	if f, ok := memberFlash[c.Query("done")]; ok && site.ValidateOwner(c.Query("member")) == nil {
		v.Page.Flash = strings.Replace(f, "%s", c.Query("member"), 1)
	}
	s.render(c, http.StatusOK, "admin_members", v)
	return nil
}

func (s *Server) membersFailed(c *gin.Context, err error, name string) error {
	if status(err) == http.StatusInternalServerError {
		return err
	}
	v, verr := s.membersView(c)
	if verr != nil {
		return verr
	}
	v.Errors, v.Name = fieldErrors(err), name
	s.render(c, status(err), "admin_members", v)
	return nil
}

func (s *Server) createMember(c *gin.Context) error {
	ctx := c.Request.Context()
	name := strings.TrimSpace(c.PostForm("name"))
	if err := site.ValidateOwner(name); err != nil {
		return s.membersFailed(c, err, name)
	}
	pw := c.PostForm("password")
	if err := auth.ValidatePassword(pw); err != nil {
		return s.membersFailed(c, err, name)
	}
	q := store.DefaultQuota
	if qs := c.PostForm("quota"); qs != "" {
		n, err := strconv.Atoi(qs)
		if err != nil || n < 0 || n > 1000 {
			return s.membersFailed(c, &site.FieldError{Field: "quota", Value: qs, Rule: "must be a number from 0 to 1000"}, name)
		}
		q = n
	}
	hash, err := auth.Hash(pw, s.cfg.HashParams)
	if err != nil {
		return err
	}
	err = s.store.CreateUser(ctx, store.User{Name: name, Hash: hash, Admin: c.PostForm("admin") == "on", Quota: q})
	if errors.Is(err, store.ErrUserExists) {
		return s.membersFailed(c, &site.FieldError{Field: "name", Value: name, Rule: "is taken"}, name)
	}
	if err != nil {
		return err
	}
	s.log.Info("member created", "user", name, "by", currentUser(c).Name)
	c.Redirect(http.StatusSeeOther, "/admin/members?done=created&member="+url.QueryEscape(name))
	return nil
}

func (s *Server) memberAction(c *gin.Context) error {
	ctx := c.Request.Context()
	name, action := c.Param("member"), c.Param("action")
	if _, err := s.store.GetUser(ctx, name); err != nil {
		return err
	}
	var err error
	switch action {
	case "disable":
		err = s.store.SetDisabled(ctx, name, true)
	case "enable":
		err = s.store.SetDisabled(ctx, name, false)
	case "grant-admin":
		err = s.store.SetAdmin(ctx, name, true)
	case "revoke-admin":
		err = s.store.SetAdmin(ctx, name, false)
	case "quota":
		qs := c.PostForm("quota")
		n, perr := strconv.Atoi(qs)
		if perr != nil || n < 0 || n > 1000 {
			return s.membersFailed(c, &site.FieldError{Field: "quota", Value: qs, Rule: "must be a number from 0 to 1000"}, "")
		}
		err = s.store.SetQuota(ctx, name, n)
	default:
		return errNotFound
	}
	if err != nil {
		return s.membersFailed(c, err, "")
	}
	s.log.Info("member changed", "user", name, "change", action, "by", currentUser(c).Name)
	c.Redirect(http.StatusSeeOther, "/admin/members?done="+action+"&member="+url.QueryEscape(name))
	return nil
}

func (s *Server) adminOps(c *gin.Context) error {
	f := store.OpFilter{Site: c.Query("site"), Limit: 200}
	state := c.Query("state")
	if state != "" {
		f.States = []string{state}
	}
	list, err := s.store.ListOps(c.Request.Context(), f)
	if err != nil {
		return err
	}
	v := adminOpsView{Page: s.page(c, "Operations"), Ops: list, State: state}
	v.Page.Nav = "admin"
	s.render(c, http.StatusOK, "admin_ops", v)
	return nil
}
