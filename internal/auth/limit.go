package auth

import (
	"sync"
	"time"
)

// Limiter counts login attempts per key (client address, member name) in a
// sliding window: after Max attempts within Window, the key is refused
// until the oldest leaves the window. An attempt is counted before its
// password is checked, in the same step as the check (Try), so parallel
// attempts cannot all pass the check before any is counted; a success
// then takes its count back (Forgive). Kept in memory: a restart forgets
// it, which only gives an attacker one more window.
type Limiter struct {
	Max    int
	Window time.Duration
	Now    func() time.Time

	mu       sync.Mutex
	attempts map[string][]time.Time
}

// NewLimiter allows max attempts per window and key.
func NewLimiter(max int, window time.Duration) *Limiter {
	return &Limiter{Max: max, Window: window, Now: time.Now, attempts: map[string][]time.Time{}}
}

// Attempt is one attempt Try counted, to Forgive if it succeeds.
type Attempt struct {
	keys []string
	at   time.Time
}

// Try counts an attempt against every key, or, when any key has used up
// its attempts in the window, counts nothing and returns how long to wait.
func (l *Limiter) Try(keys ...string) (Attempt, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	var wait time.Duration
	for _, k := range keys {
		if fs := l.prune(k, now); len(fs) >= l.Max {
			wait = max(wait, fs[len(fs)-l.Max].Add(l.Window).Sub(now))
		}
	}
	if wait > 0 {
		return Attempt{}, wait
	}
	for _, k := range keys {
		l.attempts[k] = append(l.attempts[k], now)
	}
	l.bound(now)
	return Attempt{keys: keys, at: now}, 0
}

// Forgive takes back the count of an attempt that succeeded.
func (l *Limiter) Forgive(a Attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range a.keys {
		fs := l.attempts[k]
		for i, t := range fs {
			if t.Equal(a.at) {
				fs = append(fs[:i:i], fs[i+1:]...)
				break
			}
		}
		if len(fs) == 0 {
			delete(l.attempts, k)
		} else {
			l.attempts[k] = fs
		}
	}
}

// Reset forgets key's attempts (a member who logged in).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.attempts, key)
}

// bound keeps memory bounded under a spray of keys.
func (l *Limiter) bound(now time.Time) {
	if len(l.attempts) <= 10000 {
		return
	}
	for k := range l.attempts {
		l.prune(k, now)
	}
}

func (l *Limiter) prune(key string, now time.Time) []time.Time {
	fs := l.attempts[key]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= l.Window {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(l.attempts, key)
		return nil
	}
	l.attempts[key] = fs
	return fs
}
