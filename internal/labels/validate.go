package labels

import (
	"strconv"
	"strings"
	"time"

	"github.com/darse/darse/internal/site"
)

// FieldError is site.FieldError: one type for every rejected input.
type FieldError = site.FieldError

// validate checks every field of r before anything is encoded. Values end up
// inside Traefik's rule language or comma-separated lists, so each is held to
// a character set that cannot carry that syntax.
func (r Route) validate() error {
	if err := validateSite(r.Site); err != nil {
		return err
	}
	if len(r.Domains) == 0 {
		return &FieldError{Field: "domains", Value: "", Rule: "must list at least one domain"}
	}
	seen := make(map[string]bool, len(r.Domains))
	for _, d := range r.Domains {
		if err := validateDomain(d); err != nil {
			return err
		}
		if seen[d] {
			return &FieldError{Field: "domain", Value: d, Rule: "is listed twice"}
		}
		seen[d] = true
	}
	if r.Port < 1 || r.Port > 65535 {
		return &FieldError{Field: "port", Value: strconv.Itoa(r.Port), Rule: "must be between 1 and 65535"}
	}
	for _, ep := range r.EntryPoints {
		if !isName(ep) {
			return &FieldError{Field: "entry point", Value: ep, Rule: "must be 1-63 letters, digits, '-' or '_'"}
		}
	}
	if r.CertResolver != "" && !isName(r.CertResolver) {
		return &FieldError{Field: "cert resolver", Value: r.CertResolver, Rule: "must be 1-63 letters, digits, '-' or '_'"}
	}
	if r.Wildcard != "" {
		if err := validateDomain(r.Wildcard); err != nil {
			return &FieldError{Field: "wildcard", Value: r.Wildcard, Rule: "must be a fully qualified domain name"}
		}
		if _, own := r.splitWildcard(); len(own) > 0 && r.CertResolver == "" {
			return &FieldError{Field: "cert resolver", Value: "", Rule: "is required for " + own[0] + ", which *." + r.Wildcard + " does not cover"}
		}
	}
	if h := r.Health; h != nil {
		if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " ,`\n?#") {
			return &FieldError{Field: "health path", Value: h.Path, Rule: "must be an absolute URL path without spaces, commas, '?' or '#'"}
		}
		if h.Hostname != "" && site.ValidateDomain(h.Hostname) != nil {
			return &FieldError{Field: "health hostname", Value: h.Hostname, Rule: "must be a fully qualified domain name"}
		}
		if d, err := time.ParseDuration(h.Interval); err != nil || d < time.Second {
			return &FieldError{Field: "health interval", Value: h.Interval, Rule: "must be a duration of at least 1s, such as 10s"}
		}
	}
	if r.Network != "" && !isNetwork(r.Network) {
		return &FieldError{Field: "network", Value: r.Network, Rule: "must be a Docker network name: a letter or digit, then letters, digits, '_', '.' or '-'"}
	}
	return nil
}

func validateSite(name string) error {
	if !site.IsDNSLabel(name) {
		return &FieldError{Field: "site name", Value: name, Rule: "must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'"}
	}
	return nil
}

// validateDomain runs before d is quoted into a Host rule: with only
// [a-z0-9.-] allowed, no backtick, parenthesis or operator can reach the rule.
func validateDomain(d string) error { return site.ValidateDomain(d) }

// isName reports whether s is a plausible Traefik entry point or resolver
// name. Traefik itself is laxer; ',' must be excluded since these travel in
// comma-separated label values.
func isName(s string) bool {
	if len(s) < 1 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isNetwork reports whether s matches Docker's network name pattern
// [a-zA-Z0-9][a-zA-Z0-9_.-]*.
func isNetwork(s string) bool {
	if len(s) < 1 || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}
