package hosting

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/darse/darse/internal/reconcile"
	"github.com/darse/darse/internal/template"
)

// containerLogs is the engine's log reader (*engine.Engine has it), used to
// say why a database did not come up.
type containerLogs interface {
	Logs(ctx context.Context, id string, tail int) (string, error)
}

// databaseLogLines is how much of a failed database's log an error quotes.
const databaseLogLines = 20

// DatabaseError is a site's database that did not come up: its state and
// the database's own last log lines.
type DatabaseError struct {
	Site, Service, State string
	Logs                 string
}

func (e *DatabaseError) Error() string {
	return fmt.Sprintf("site %q: database %s did not come up (%s); its last log lines:\n%s", e.Site, e.Service, e.State, e.Logs)
}

// WaitDatabase waits, after the site was brought up, until its database is
// healthy, and fails with a *DatabaseError quoting the database's own last
// log lines as soon as it is seen restarting, stopped or unhealthy, or when
// it is still not healthy after its health check's start period and
// retries. A site without a database returns at once. Nothing is removed:
// the site's folder and other services stay as they are.
func (h *Hosting) WaitDatabase(ctx context.Context, name string) error {
	return h.waitDatabase(ctx, name, 0)
}

// databaseSettle is how long a site's database must keep running, once
// brought up, before its creation or start is taken to have worked: a
// database that cannot start (its folder unwritable, say) exits within
// it (the shipped images fail their first start within a second), and
// waiting for the first health check would cost a whole interval.
const databaseSettle = 2 * time.Second

// checkDatabaseStarted fails like WaitDatabase when the site's database
// stops or restarts within databaseSettle, and returns once it is healthy
// or has kept running that long.
func (h *Hosting) checkDatabaseStarted(ctx context.Context, name string) error {
	return h.waitDatabase(ctx, name, databaseSettle)
}

// waitDatabase is WaitDatabase; with settle > 0, a database still running
// (not unhealthy) after settle counts as up.
func (h *Hosting) waitDatabase(ctx context.Context, name string, settle time.Duration) error {
	s, err := h.get(ctx, name)
	if err != nil {
		return err
	}
	t, err := template.Load(h.cfg.TemplatesDir(), s.Template)
	if err != nil {
		return fmt.Errorf("site %q: %w", name, err)
	}
	d := t.Database
	if d == nil {
		return nil
	}
	deadline := time.Now().Add(healthBudget(d.Health))
	settled := time.Now().Add(settle)
	for {
		c, found, err := h.databaseContainer(ctx, name, d.Service)
		if err != nil {
			return err
		}
		switch {
		case found && c.State == "running" && c.Health == "healthy":
			return nil
		case found && (c.State != "running" || c.Health == "unhealthy"):
			return h.databaseError(ctx, name, d.Service, c)
		case settle > 0 && found && time.Now().After(settled):
			return nil
		case time.Now().After(deadline):
			if !found {
				return fmt.Errorf("site %q: database %s has no container", name, d.Service)
			}
			return h.databaseError(ctx, name, d.Service, c)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// healthBudget is how long a database may take to be reported healthy: its
// start period, then as many intervals as retries.
func healthBudget(h template.DatabaseHealth) time.Duration {
	start, _ := time.ParseDuration(h.StartPeriod) // checked when loaded
	iv, _ := time.ParseDuration(h.Interval)
	to, _ := time.ParseDuration(h.Timeout)
	return start + time.Duration(h.Retries+1)*(iv+to)
}

func (h *Hosting) databaseContainer(ctx context.Context, site, service string) (reconcile.Container, bool, error) {
	obs, err := h.engine.Observe(ctx, scope(site))
	if err != nil {
		return reconcile.Container{}, false, fmt.Errorf("site %q: %w", site, err)
	}
	for _, c := range obs.Containers {
		if c.Service == service {
			return c, true, nil
		}
	}
	return reconcile.Container{}, false, nil
}

func (h *Hosting) databaseError(ctx context.Context, site, service string, c reconcile.Container) error {
	state := c.State
	if c.Health != "" {
		state += ", " + c.Health
	}
	e := &DatabaseError{Site: site, Service: service, State: state}
	if l, ok := h.engine.(containerLogs); ok {
		logs, err := l.Logs(ctx, c.ID, databaseLogLines)
		if err != nil {
			logs = "(logs unavailable: " + err.Error() + ")"
		}
		e.Logs = strings.TrimRight(logs, "\n")
	}
	return e
}
