package auth

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var fast = Params{Time: 1, Memory: 64, Threads: 1}

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse battery", fast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("encoding %q", h)
	}
	if ok, err := Verify("correct horse battery", h); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, _ := Verify("correct horse batterz", h); ok {
		t.Fatal("wrong password accepted")
	}
	h2, _ := Hash("correct horse battery", fast)
	if h == h2 {
		t.Fatal("same salt twice")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=64,t=0,p=1$AAAA$AAAA", "plain"} {
		if _, err := Verify("x", bad); err != ErrBadHash {
			t.Errorf("Verify(%q) err = %v", bad, err)
		}
	}
}

func TestDefaultParamsEncoded(t *testing.T) {
	if testing.Short() {
		t.Skip("19 MiB hash")
	}
	h, _ := Hash("a long enough password", DefaultParams)
	if !strings.Contains(h, "$m=19456,t=2,p=1$") {
		t.Fatal(h)
	}
}

func TestValidatePassword(t *testing.T) {
	if err := ValidatePassword("short"); err == nil || !strings.Contains(err.Error(), "10 to 256") {
		t.Fatalf("short password: %v", err)
	}
	if err := ValidatePassword("long enough password"); err != nil {
		t.Fatal(err)
	}
}

func TestTokens(t *testing.T) {
	a, _ := Token()
	b, _ := Token()
	if a == b || len(a) != 43 || TokenHash(a) == a || len(TokenHash(a)) != 64 {
		t.Fatalf("tokens %q %q hash %q", a, b, TokenHash(a))
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(5, time.Minute)
	l.Now = func() time.Time { return now }
	for i := 0; i < 5; i++ {
		if _, d := l.Try("ip"); d != 0 {
			t.Fatalf("attempt %d limited: %v", i+1, d)
		}
		now = now.Add(time.Second)
	}
	if _, d := l.Try("ip"); d != 55*time.Second {
		t.Fatalf("6th attempt: retry after %v, want 55s", d)
	}
	if _, d := l.Try("other"); d != 0 {
		t.Fatal("another key is limited")
	}
	// Any limited key refuses the attempt, and it is counted on none.
	if _, d := l.Try("fresh", "ip"); d != 55*time.Second {
		t.Fatalf("attempt with one limited key: %v", d)
	}
	if len(l.attempts["fresh"]) != 0 {
		t.Fatal("a refused attempt was counted")
	}
	now = now.Add(55 * time.Second)
	a, d := l.Try("ip", "member")
	if d != 0 {
		t.Fatalf("after the window: %v", d)
	}
	if len(l.attempts["ip"]) != 5 || len(l.attempts["member"]) != 1 {
		t.Fatalf("attempts %v", l.attempts)
	}
	// A success takes back its own count, not the others'.
	l.Forgive(a)
	if len(l.attempts["ip"]) != 4 || l.attempts["member"] != nil {
		t.Fatalf("after forgiving: %v", l.attempts)
	}
	l.Reset("ip")
	if _, ok := l.attempts["ip"]; ok {
		t.Fatal("reset kept attempts")
	}
}

// Parallel attempts cannot all pass the check before any is counted.
func TestLimiterParallel(t *testing.T) {
	l := NewLimiter(5, time.Minute)
	var passed atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, d := l.Try("addr", "member"); d == 0 {
				passed.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := passed.Load(); n != 5 {
		t.Fatalf("%d of 100 parallel attempts passed, want 5", n)
	}
}
