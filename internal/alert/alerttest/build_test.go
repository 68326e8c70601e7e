package alerttest

import "testing"

func TestMailpitStarts(t *testing.T) {
	m := StartMailpit(t)
	if ms, err := m.Messages(); err != nil || len(ms) != 0 {
		t.Fatalf("a new mailpit: %v %v", ms, err)
	}
}
