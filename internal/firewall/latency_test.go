package firewall

import (
	"testing"
	"time"
)

// Applied.Since is the time of the oldest event an apply answers: zero
// for the sync at connect, the event's own time after one, and an event
// that changed nothing is not carried into the next apply's latency.
func TestAppliedSinceOldestEvent(t *testing.T) {
	eng, kernel := newFakeEngine(), newFakeKernel()
	applied := make(chan Applied, 10)
	wt := startWatch(t, eng, kernel, Config{OnApply: func(a Applied) { applied <- a }})
	next := func(what string) Applied {
		t.Helper()
		select {
		case a := <-applied:
			return a
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no apply", what)
			return Applied{}
		}
	}
	if a := next("connect"); !a.Since.IsZero() {
		t.Errorf("the sync at connect has an event time %v", a.Since)
	}
	wt.waitExposed()

	t1 := time.Now().Add(-time.Second).Round(0)
	eng.start(exposing("2", 2, 40002))
	eng.send(Event{Container: "2", Action: "start", Time: t1})
	a := next("start")
	if !a.Since.Equal(t1) || a.At.Sub(a.Since) < time.Second {
		t.Errorf("apply after an event at %v: since %v, at %v", t1, a.Since, a.At)
	}

	// An event that changes nothing, then one that does.
	eng.send(Event{Container: "2", Action: "rename", Time: time.Now().Add(-time.Hour)})
	time.Sleep(100 * time.Millisecond) // past the debounce: handled, nothing applied
	t3 := time.Now().Round(0)
	eng.start(exposing("3", 3, 40003))
	eng.send(Event{Container: "3", Action: "start", Time: t3})
	if a := next("second start"); !a.Since.Equal(t3) {
		t.Errorf("since %v, want %v: the unchanged event's time was kept", a.Since, t3)
	}
	select {
	case a := <-applied:
		t.Errorf("an extra apply %+v", a)
	default:
	}
}
