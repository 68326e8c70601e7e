package auth

import (
	"strings"
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
		if d := l.RetryAfter("ip"); d != 0 {
			t.Fatalf("attempt %d limited: %v", i+1, d)
		}
		l.Fail("ip")
		now = now.Add(time.Second)
	}
	if d := l.RetryAfter("ip"); d != 55*time.Second {
		t.Fatalf("6th attempt: retry after %v, want 55s", d)
	}
	if d := l.RetryAfter("other"); d != 0 {
		t.Fatal("another key is limited")
	}
	now = now.Add(55 * time.Second)
	if d := l.RetryAfter("ip"); d != 0 {
		t.Fatalf("after the window: %v", d)
	}
	l.Reset("ip")
	if len(l.failures) != 0 {
		t.Fatal("reset kept failures")
	}
}
