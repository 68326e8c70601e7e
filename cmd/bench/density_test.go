package main

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("100, 500,1000,2000")
	if err != nil || !slices.Equal(got, []int{100, 500, 1000, 2000}) {
		t.Fatalf("parseSizes(default) = %v, %v", got, err)
	}
	for in, want := range map[string]string{
		"":          "not a site count",
		"20,x":      `"x" is not a site count`,
		"0":         "not a site count",
		"20,20":     "ascending",
		"50,20":     "ascending",
		"3":         "at least 4",
		"20,100000": "not a site count",
	} {
		if _, err := parseSizes(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseSizes(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestOutages(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	o := newOutages([]string{"a", "b", "c"})
	o.record("a", true, at(0))
	o.record("b", true, at(0))
	o.record("c", true, at(0))
	// a: down from 1 s to 3.5 s, then again from 5 s to 6 s.
	o.record("a", false, at(1))
	o.record("a", false, at(2))
	o.record("a", true, at(3.5))
	o.record("a", false, at(5))
	o.record("a", true, at(6))
	o.record("b", true, at(4))
	// c: down from 4 s and never back.
	o.record("c", false, at(4))
	o.record("unknown", false, at(4)) // not sampled: ignored
	if got := o.failing(); !slices.Equal(got, []string{"c"}) {
		t.Errorf("failing = %v, want [c]", got)
	}
	if o.answeredSince(at(3)) {
		t.Error("answeredSince(3 s) with c down since 4 s: want false")
	}
	if !o.answeredSince(at(0)) {
		t.Error("answeredSince(0): every site answered at 0 s")
	}
	s := o.summary([]string{"a", "b"}, at(10))
	if s.down != 1 || !slices.Equal(s.sites, []string{"a"}) || s.longest != 2500*time.Millisecond || s.failed != 3 || s.ok != 5 {
		t.Errorf("summary(a, b) = %+v, want 1 down, longest 2.5s, 3 failed, 5 ok", s)
	}
	// c still down at 10 s: its outage counts until then.
	if s := o.summary([]string{"c"}, at(10)); s.down != 1 || s.longest != 6*time.Second {
		t.Errorf("summary(c) = %+v, want 1 down for 6s", s)
	}
	if s := o.summary([]string{"b"}, at(10)); s.down != 0 || s.longest != 0 {
		t.Errorf("summary(b) = %+v, want no downtime", s)
	}
}

func TestPerMinuteAndRatio(t *testing.T) {
	if got := perMinute(30, 15*time.Second); got != 120 {
		t.Errorf("perMinute(30, 15s) = %v, want 120", got)
	}
	if got := perMinute(30, 0); got != 0 {
		t.Errorf("perMinute(30, 0) = %v, want 0", got)
	}
	if got := ratio(1, 4); got != "0.25x" {
		t.Errorf("ratio(1, 4) = %q", got)
	}
	if got := ratio(1, 0); got != "-" {
		t.Errorf("ratio(1, 0) = %q, want -", got)
	}
}

func TestEachStopsAfterTheFirstError(t *testing.T) {
	var mu sync.Mutex
	ran := 0
	err := each(2, 1000, func(i int) error {
		mu.Lock()
		ran++
		mu.Unlock()
		if i == 3 {
			return errors.New("exchange full")
		}
		return nil
	})
	if err == nil || err.Error() != "exchange full" {
		t.Fatalf("each = %v, want the first error", err)
	}
	if ran > 10 {
		t.Errorf("each started %d of 1000 after the error at 3, want it to stop handing out work", ran)
	}
	ran = 0
	if err := each(3, 50, func(int) error { mu.Lock(); ran++; mu.Unlock(); return nil }); err != nil || ran != 50 {
		t.Errorf("each without errors = %v after %d runs, want nil after 50", err, ran)
	}
}
