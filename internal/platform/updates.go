package platform

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Updates is darse.yml's updates: when the platform's images are rebuilt
// and rolled out to every site (`darse images update --rollout --if-due`,
// run hourly by the darse-updates timer), and how long ahead members are
// told.
//
//	updates:
//	  schedule: "sun 04:00"   # a weekday and a UTC time, or "daily 04:00"
//	  max_age: 15d            # an image older than this is rebuilt even if its packages did not move
//	  notice: 2d              # members see "maintenance on <date>" this long before
type Updates struct {
	Schedule string `yaml:"schedule"`
	MaxAge   string `yaml:"max_age"`
	Notice   string `yaml:"notice"`

	weekday time.Weekday // -1: every day
	minute  int          // of the day, UTC
	maxAge  time.Duration
	notice  time.Duration
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

func (u *Updates) validate() error {
	day, clock, ok := strings.Cut(strings.TrimSpace(u.Schedule), " ")
	if !ok {
		return fmt.Errorf("updates.schedule %q: must be a weekday (sun..sat) or daily, then a UTC time, such as \"sun 04:00\"", u.Schedule)
	}
	if day == "daily" {
		u.weekday = -1
	} else if wd, ok := weekdays[day]; ok {
		u.weekday = wd
	} else {
		return fmt.Errorf("updates.schedule %q: %q is not sun, mon, tue, wed, thu, fri, sat or daily", u.Schedule, day)
	}
	h, m, ok := strings.Cut(clock, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return fmt.Errorf("updates.schedule %q: %q is not a time of day such as 04:00", u.Schedule, clock)
	}
	u.minute = hh*60 + mm
	var ok2 bool
	if u.maxAge, ok2 = parseDays(orDefault(u.MaxAge, "15d")); !ok2 {
		return fmt.Errorf("updates.max_age %q: must be a positive number of days such as 15d", u.MaxAge)
	}
	if u.notice, ok2 = parseDays(orDefault(u.Notice, "2d")); !ok2 {
		return fmt.Errorf("updates.notice %q: must be a positive number of days such as 2d", u.Notice)
	}
	return nil
}

// MaxAge is how old an image may get before it is rebuilt anyway.
func (u *Updates) MaxAgeDuration() time.Duration { return u.maxAge }

// NoticeDuration is how long ahead of a run members are told.
func (u *Updates) NoticeDuration() time.Duration { return u.notice }

// Next is the first scheduled run strictly after t.
func (u *Updates) Next(t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	for i := 0; i <= 7; i++ {
		d := day.AddDate(0, 0, i)
		if u.weekday >= 0 && d.Weekday() != u.weekday {
			continue
		}
		if run := d.Add(time.Duration(u.minute) * time.Minute); run.After(t) {
			return run
		}
	}
	return day.AddDate(0, 0, 8) // not reached: every week has the day
}

// Due reports whether a run was scheduled since last (the previous run's
// start; zero: never ran, due at once).
func (u *Updates) Due(last, now time.Time) bool {
	return last.IsZero() || !u.Next(last).After(now)
}

// Maintenance is the next run when it is within the notice, for the
// members' dashboard.
func (u *Updates) Maintenance(now time.Time) (time.Time, bool) {
	next := u.Next(now)
	return next, next.Sub(now) <= u.notice
}
