package panel

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/darse/darse/internal/backup"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/store"
)

// Backups is what the panel reads of the backup repository (darse.yml's
// backup section): a site's backups, and how often they are taken.
type Backups interface {
	Sets(ctx context.Context, site string) ([]backup.Set, error)
	// Period is the backup schedule's (0: none).
	Period() time.Duration
}

type backupsView struct {
	Page
	Site    string
	Sets    []setRow
	Problem string // why no backup can be listed
	Pending *store.Operation
}

// setRow is one backup as the member's page lists it.
type setRow struct {
	backup.Set
	SizeText string
}

// humanBytes writes n bytes as KiB, MiB or GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + "KMGT"[exp:exp+1] + "iB"
}

// backupsPage lists the site's complete backups, newest first, each with
// a button that restores it.
func (s *Server) backupsPage(c *gin.Context) error {
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	v := backupsView{Page: s.page(c, "Backups of "+st.Name), Site: st.Name}
	v.Page.Nav = "sites"
	if s.cfg.Backups == nil {
		v.Problem = "Backups are not configured on this platform."
	} else if sets, err := s.cfg.Backups.Sets(c.Request.Context(), st.Name); err != nil {
		s.log.Warn("list backups", "site", st.Name, "err", err)
		v.Problem = "The backup repository cannot be read right now; try again later."
	} else {
		for _, set := range sets {
			if set.Complete() && set.Site == st.Name {
				v.Sets = append(v.Sets, setRow{Set: set, SizeText: humanBytes(set.Size)})
			}
		}
	}
	pending, err := s.store.ListOps(c.Request.Context(), store.OpFilter{Site: st.Name, States: []string{store.OpQueued, store.OpRunning}, Limit: 1})
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		v.Pending = pending[0]
	}
	s.render(c, http.StatusOK, "backups", v)
	return nil
}

// restoreBackup records the restore of one of the site's own backups,
// named by its run, and shows the operation's page (its progress). A run
// that is not one of this site's is refused before anything is recorded.
func (s *Server) restoreBackup(c *gin.Context) error {
	st, err := s.ownSite(c)
	if err != nil {
		return err
	}
	if s.cfg.Backups == nil {
		return errNotFound
	}
	run := strings.TrimSpace(c.PostForm("run"))
	sets, err := s.cfg.Backups.Sets(c.Request.Context(), st.Name)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(sets, func(set backup.Set) bool { return set.Complete() && set.Site == st.Name && set.Run == run }) {
		return errNotFound
	}
	// An in-place restore adds no site: not held to the owner's quota.
	id, err := s.ops.Submit(c.Request.Context(), ops.Request{Site: st.Name, Owner: st.Owner, User: currentUser(c).Name, Quota: -1}, &ops.Restore{Snapshot: run})
	if err != nil {
		return err
	}
	c.Redirect(http.StatusSeeOther, "/ops/"+itoa(int(id)))
	return nil
}

// backupRow is one site on the admin's backups page.
type backupRow struct {
	Site     string
	Owner    string
	LastDone *store.Backup // nil: never backed up
	Last     *store.Backup // the latest run, failed or not
	Overdue  bool          // no success within twice the schedule
	// Drill is the site's last restore drill that ended (nil: none yet);
	// DrillFailed shows it red.
	Drill       *store.Operation
	DrillFailed bool
}

type adminBackupsView struct {
	Page
	Rows   []backupRow
	Period time.Duration
}

// adminBackups shows every site's last successful backup (and the
// platform's), red when older than twice the schedule, with the last
// failure's message, and its last restore drill, red when it failed.
func (s *Server) adminBackups(c *gin.Context) error {
	ctx := c.Request.Context()
	sites, err := s.store.ListSites(ctx)
	if err != nil {
		return err
	}
	last, done, err := s.store.LastBackups(ctx)
	if err != nil {
		return err
	}
	v := adminBackupsView{Page: s.page(c, "Backups")}
	v.Page.Nav = "admin"
	if s.cfg.Backups != nil {
		v.Period = s.cfg.Backups.Period()
	}
	drills, err := s.lastDrills(ctx)
	if err != nil {
		return err
	}
	sched := backup.Schedule{Period: v.Period}
	row := func(name, owner string) backupRow {
		r := backupRow{Site: name, Owner: owner, LastDone: done[name], Last: last[name], Drill: drills[name]}
		r.Overdue = v.Period > 0 && (r.LastDone == nil || sched.Overdue(r.LastDone.FinishedAt, s.cfg.Now()))
		r.DrillFailed = r.Drill != nil && r.Drill.State == store.OpFailed
		return r
	}
	v.Rows = append(v.Rows, row("", ""))
	for _, st := range sites {
		v.Rows = append(v.Rows, row(st.Name, st.Owner))
	}
	s.render(c, http.StatusOK, "admin_backups", v)
	return nil
}

// drillsListed bounds the drills the admin page reads: weeks of scheduled
// drills of a few sites each, kept as long as operations are.
const drillsListed = 5000

// lastDrills returns each site's latest ended drill, from one listing of
// the drills (newest first), not one query per site.
func (s *Server) lastDrills(ctx context.Context) (map[string]*store.Operation, error) {
	list, err := s.store.ListOps(ctx, store.OpFilter{Kind: new(ops.Drill).Name(), States: []string{store.OpDone, store.OpFailed}, Limit: drillsListed})
	if err != nil {
		return nil, err
	}
	out := map[string]*store.Operation{}
	for _, op := range list {
		if _, seen := out[op.Site]; !seen {
			out[op.Site] = op
		}
	}
	return out, nil
}
