package panel

import (
	"context"

	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/store"
)

// States the panel shows besides hosting's.
const (
	stateCreating = "creating" // its creation is queued or running
	stateFailed   = "failed"   // bringing it up failed, and it does not run
	stateUnknown  = "unknown"  // the engine could not be asked
)

// bringsUp reports whether an operation of this kind is meant to leave
// the site running: when one fails, so has the site.
func bringsUp(kind string) bool {
	switch kind {
	case new(ops.Create).Name(), new(ops.Up).Name(), new(ops.Restart).Name():
		return true
	}
	return false
}

// markFailures is the one place a site's failure is derived: a site the
// engine does not show running whose latest operation was meant to bring
// it up and failed (a creation whose containers did not start keeps its
// row, so it is listed) is shown failed, with that operation. Anything
// done since (a start, a stop) is the newer word, so a retry that works,
// or the owner stopping the site, ends the failure. Running sites are not
// looked up: the store is asked once per site that does not run.
func (s *Server) markFailures(ctx context.Context, cards []siteCard) error {
	for i := range cards {
		c := &cards[i]
		if c.State == hosting.StateRunning || c.State == stateCreating {
			continue
		}
		last, err := s.store.ListOps(ctx, store.OpFilter{Site: c.Name, Limit: 1})
		if err != nil {
			return err
		}
		if len(last) == 1 && last[0].State == store.OpFailed && bringsUp(last[0].Kind) {
			c.State, c.Failure = stateFailed, last[0]
		}
	}
	return nil
}

// Label is the site's state in words.
func (c siteCard) Label() string {
	if c.State == stateFailed && c.Failure != nil && c.Failure.Kind == new(ops.Create).Name() {
		return "Creation failed"
	}
	return stateLabel(c.State)
}

// Explain says why a failed site failed, in a member's terms.
func (c siteCard) Explain() string {
	if c.Failure == nil {
		return ""
	}
	return failureText(c.Failure, true)
}

// Tone is how alarming the state is, for its colours: ok (running),
// quiet (stopped, as its owner asked), bad (failing: failed, unhealthy,
// partly running) or busy (being created, unknown).
func (c siteCard) Tone() string {
	switch c.State {
	case hosting.StateRunning:
		return "ok"
	case hosting.StateStopped:
		return "quiet"
	case stateFailed, hosting.StateUnhealthy, hosting.StatePartial:
		return "bad"
	}
	return "busy"
}

// tryAgain ends what members read of a failure: the engine's own error
// is for admins, and a member has no command to run.
const tryAgain = " You can try again; if it keeps failing, contact an admin."

// failureText explains a failed operation to a member; siteExists tells a
// creation that kept the site (only starting it failed) from one undone.
func failureText(op *store.Operation, siteExists bool) string {
	switch {
	case op.Kind == new(ops.Create).Name() && siteExists:
		return "The site was created but could not be started." + tryAgain
	case op.Kind == new(ops.Create).Name():
		return "The site could not be created." + tryAgain
	case bringsUp(op.Kind):
		return "The site could not be started." + tryAgain
	}
	return ops.Title(op.Kind) + " could not be finished." + tryAgain
}
