package site

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	good := []string{"blog", "a", "my-site-2", "0day", strings.Repeat("a", 63)}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
	bad := map[string]string{
		"":                      "lowercase",
		"Bad;Name":              "lowercase",
		"Blog":                  "lowercase",
		"-blog":                 "dash",
		"blog-":                 "dash",
		"my_site":               "lowercase",
		"a.b":                   "lowercase",
		strings.Repeat("a", 64): "1-63",
		"traefik":               "reserved",
		"www":                   "reserved",
		"admin":                 "reserved",
		"panel":                 "reserved",
	}
	for n, want := range bad {
		err := ValidateName(n)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "site name" {
			t.Errorf("ValidateName(%q) = %v, want a site name FieldError", n, err)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateName(%q) = %q, want it to mention %q", n, err, want)
		}
	}
}

func TestValidateDomain(t *testing.T) {
	for _, d := range []string{"blog.example.org", "a.b", "x-1.sub.example.co.uk"} {
		if err := ValidateDomain(d); err != nil {
			t.Errorf("ValidateDomain(%q) = %v", d, err)
		}
	}
	for _, d := range []string{"", "example", "*.example.org", "blog.example.org.", "a..b", "Blog.example.org",
		"a`) || Host(`evil.org", "a b.org", "-a.org", "1.2.3.4", strings.Repeat("a.", 127) + "org"} {
		if err := ValidateDomain(d); err == nil {
			t.Errorf("ValidateDomain(%q) = nil, want error", d)
		}
	}
}

func TestPlanValidate(t *testing.T) {
	if err := (Plan{CPUs: "0.5", Memory: "128m", Pids: 64}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Plan{
		{CPUs: "0", Memory: "128m", Pids: 64},
		{CPUs: "abc", Memory: "128m", Pids: 64},
		{CPUs: "1", Memory: "128", Pids: 64},
		{CPUs: "1", Memory: "0m", Pids: 64},
		{CPUs: "1", Memory: "128m", Pids: 0},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v.Validate() = nil, want error", p)
		}
	}
}

func TestValidateOwner(t *testing.T) {
	if err := ValidateOwner("alice"); err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"", "Alice", "1alice", "a;b", strings.Repeat("a", 33)} {
		if ValidateOwner(o) == nil {
			t.Errorf("ValidateOwner(%q) = nil, want error", o)
		}
	}
}
