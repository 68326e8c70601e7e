package labels

import (
	"fmt"
	"strconv"
	"strings"
)

// FieldError is a rejected input: which field, the value given, the rule it
// breaks. Check for it with errors.As.
type FieldError struct {
	Field string
	Value string
	Rule  string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Rule)
}

// validate checks every field of r before anything is encoded. Values end up
// inside Traefik's rule language or comma-separated lists, so each is held to
// a character set that cannot carry that syntax.
func (r Route) validate() error {
	if err := validateSite(r.Site); err != nil {
		return err
	}
	if len(r.Domains) == 0 {
		return &FieldError{"domains", "", "must list at least one domain"}
	}
	seen := make(map[string]bool, len(r.Domains))
	for _, d := range r.Domains {
		if err := validateDomain(d); err != nil {
			return err
		}
		if seen[d] {
			return &FieldError{"domain", d, "is listed twice"}
		}
		seen[d] = true
	}
	if r.Port < 1 || r.Port > 65535 {
		return &FieldError{"port", strconv.Itoa(r.Port), "must be between 1 and 65535"}
	}
	for _, ep := range r.EntryPoints {
		if !isName(ep) {
			return &FieldError{"entry point", ep, "must be 1-63 letters, digits, '-' or '_'"}
		}
	}
	if r.CertResolver != "" && !isName(r.CertResolver) {
		return &FieldError{"cert resolver", r.CertResolver, "must be 1-63 letters, digits, '-' or '_'"}
	}
	if r.Network != "" && !isNetwork(r.Network) {
		return &FieldError{"network", r.Network, "must be a Docker network name: a letter or digit, then letters, digits, '_', '.' or '-'"}
	}
	return nil
}

func validateSite(site string) error {
	if !isDNSLabel(site) {
		return &FieldError{"site name", site, "must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'"}
	}
	return nil
}

// validateDomain checks d is a fully qualified domain name as darse accepts
// it. This runs before d is quoted into a Host rule: with only [a-z0-9.-]
// allowed, no backtick, parenthesis or operator can reach the rule.
func validateDomain(d string) error {
	const rule = "must be a fully qualified domain name: at least two dot-separated labels of 1-63 lowercase letters, digits or '-' (not at either end), 253 characters at most, no wildcard, no trailing dot"
	if len(d) > 253 {
		return &FieldError{"domain", d, rule}
	}
	parts := strings.Split(d, ".")
	if len(parts) < 2 {
		return &FieldError{"domain", d, rule}
	}
	for _, p := range parts {
		if !isDNSLabel(p) {
			return &FieldError{"domain", d, rule}
		}
	}
	if tld := parts[len(parts)-1]; strings.Trim(tld, "0123456789") == "" {
		return &FieldError{"domain", d, "must end in a name, not a number"}
	}
	return nil
}

// isDNSLabel reports whether s is an RFC 1123 label in lowercase.
func isDNSLabel(s string) bool {
	if len(s) < 1 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

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
