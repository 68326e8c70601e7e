package backup

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 24 * time.Hour, "daily": 24 * time.Hour, "hourly": time.Hour, "weekly": 168 * time.Hour, "12h": 12 * time.Hour, "off": 0} {
		s, err := ParseSchedule(in, "daily")
		if err != nil || s.Period != want {
			t.Errorf("ParseSchedule(%q) = %v, %v; want %v", in, s.Period, err, want)
		}
	}
	for _, bad := range []string{"30m", "monthly", "1h30s", "-24h", "10000h"} {
		if _, err := ParseSchedule(bad, "daily"); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
}

// Sites get different slots, each its own every day, within the period.
func TestScheduleStaggered(t *testing.T) {
	daily := Schedule{24 * time.Hour}
	offsets := map[time.Duration]bool{}
	for _, name := range []string{"blog", "shop", "wiki", "club", "asso", "news", "docs", "mail"} {
		off := daily.Offset(name)
		if off < 0 || off >= 24*time.Hour || off%time.Minute != 0 {
			t.Fatalf("offset of %s: %v", name, off)
		}
		if off != daily.Offset(name) {
			t.Fatal("offset not stable")
		}
		offsets[off] = true
		now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
		slot := daily.Slot(name, now)
		if slot.After(now) || now.Sub(slot) >= 24*time.Hour {
			t.Errorf("slot of %s at %v: %v", name, now, slot)
		}
		if next := daily.Slot(name, now.Add(24*time.Hour)); next.Sub(slot) != 24*time.Hour {
			t.Errorf("next slot of %s: %v, after %v", name, next, slot)
		}
		h, m, _ := slot.Clock()
		if time.Duration(h)*time.Hour+time.Duration(m)*time.Minute != off {
			t.Errorf("%s runs at %02d:%02d, its offset is %v", name, h, m, off)
		}
	}
	if len(offsets) < 6 {
		t.Errorf("8 sites share %d slots", len(offsets))
	}
}

func TestScheduleDue(t *testing.T) {
	daily := Schedule{24 * time.Hour}
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	slot := daily.Slot("blog", now)
	if !daily.Due("blog", time.Time{}, now) {
		t.Error("never backed up: not due")
	}
	if !daily.Due("blog", slot.Add(-time.Minute), now) {
		t.Error("last run before its slot: not due")
	}
	if daily.Due("blog", slot.Add(time.Minute), now) {
		t.Error("run after its slot: due again")
	}
	if (Schedule{}).Due("blog", time.Time{}, now) {
		t.Error("off is due")
	}
	if !daily.Overdue(now.Add(-49*time.Hour), now) || daily.Overdue(now.Add(-47*time.Hour), now) {
		t.Error("overdue is not twice the period")
	}
}

// The scheduler runs each due site once, one at a time, the platform too,
// and a failure does not stop the others.
func TestSchedulerOnce(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	daily := Schedule{24 * time.Hour}
	last := map[string]time.Time{"fresh": now.Add(-time.Second)} // just done: not due
	var ran []string
	running := 0
	s := &Scheduler{Backups: daily, Check: Schedule{7 * 24 * time.Hour},
		Sites:     func(context.Context) ([]string, error) { return []string{"a", "b", "fresh"}, nil },
		Last:      func(context.Context) (map[string]time.Time, error) { return last, nil },
		LastCheck: func(context.Context) (time.Time, error) { return time.Time{}, nil },
		Backup: func(ctx context.Context, site string) error {
			running++
			defer func() { running-- }()
			if running > 1 {
				t.Error("two backups at once")
			}
			ran = append(ran, site)
			last[site] = now
			if site == "a" {
				return io.ErrUnexpectedEOF
			}
			return nil
		},
		RunCheck: func(context.Context) error { ran = append(ran, "check"); return nil },
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
	if err := s.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ran, []string{"a", "b", "", "check"}) {
		t.Errorf("ran %q", ran)
	}
	ran = nil
	s.LastCheck = func(context.Context) (time.Time, error) { return now, nil }
	if err := s.Once(context.Background()); err != nil || len(ran) != 0 {
		t.Errorf("second pass ran %q, %v", ran, err)
	}
}
