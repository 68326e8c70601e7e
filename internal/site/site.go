// Package site defines a hosted site's spec — the one place its facts live —
// and the rules every name, domain and owner must follow.
package site

import (
	"fmt"
	"regexp"
	"strings"
)

// Spec is everything darse stores about a site; its folder is rendered from it.
type Spec struct {
	Name     string            `json:"name"`
	Template string            `json:"template"`
	Owner    string            `json:"owner"`
	Domain   string            `json:"domain"`
	Params   map[string]string `json:"params"`
	Plan     Plan              `json:"plan"`
}

// Plan is a site's resource allowance, enforced as cgroup limits on each of
// its containers.
type Plan struct {
	CPUs   string `json:"cpus" yaml:"cpus"`     // decimal CPUs, e.g. "0.5"
	Memory string `json:"memory" yaml:"memory"` // e.g. "128m"
	Pids   int    `json:"pids" yaml:"pids"`
}

// FieldError is a rejected input: which field, the value given, the rule it breaks.
type FieldError struct {
	Field string
	Value string
	Rule  string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Rule)
}

// Reserved names are the platform's own host names and folders; no site may take them.
var reserved = map[string]bool{
	"admin": true, "api": true, "apps": true, "auth": true, "autoconfig": true,
	"autodiscover": true, "conf": true, "core": true, "darse": true, "dashboard": true,
	"dns": true, "docker": true, "front": true, "ftp": true, "imap": true,
	"localhost": true, "login": true, "mail": true, "ns1": true, "ns2": true,
	"panel": true, "pop": true, "pop3": true, "registry": true, "root": true,
	"smtp": true, "ssh": true, "status": true, "templates": true, "traefik": true,
	"webmail": true, "www": true,
}

var (
	labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	ownerRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
)

// IsDNSLabel reports whether s is a lowercase RFC 1123 label.
func IsDNSLabel(s string) bool { return labelRE.MatchString(s) }

// IsReserved reports whether name is kept for the platform itself.
func IsReserved(name string) bool { return reserved[name] }

// ValidateName checks a site name: a DNS label (it becomes NAME.<domain>, the
// compose project and the folder /srv/users/NAME) that is not reserved.
func ValidateName(name string) error {
	if !labelRE.MatchString(name) {
		return &FieldError{"site name", name, "must be 1-63 lowercase letters, digits or dashes, not starting or ending with a dash"}
	}
	if reserved[name] {
		return &FieldError{"site name", name, "is reserved for the platform"}
	}
	return nil
}

// ValidateDomain checks a fully qualified domain name: at least two labels,
// each a DNS label, 253 characters at most, no wildcard, no trailing dot.
func ValidateDomain(domain string) error {
	rule := "must be a fully qualified domain name: dot-separated labels of lowercase letters, digits or dashes, 253 characters at most, no wildcard"
	if len(domain) > 253 || strings.HasSuffix(domain, ".") {
		return &FieldError{"domain", domain, rule}
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return &FieldError{"domain", domain, rule}
	}
	for _, l := range labels {
		if !labelRE.MatchString(l) {
			return &FieldError{"domain", domain, rule}
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return &FieldError{"domain", domain, "must end in a name, not a number"}
	}
	return nil
}

// ValidateOwner checks a member's user name.
func ValidateOwner(owner string) error {
	if !ownerRE.MatchString(owner) {
		return &FieldError{"owner", owner, "must start with a lowercase letter and hold 1-32 lowercase letters, digits, '_' or '-'"}
	}
	return nil
}

// DefaultDomain is the name a site answers at when none is given.
func DefaultDomain(name, platformDomain string) string {
	return name + "." + platformDomain
}

// Validate checks the spec's own fields; template parameters are checked
// against the template (see package template).
func (s *Spec) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if err := ValidateOwner(s.Owner); err != nil {
		return err
	}
	if err := ValidateDomain(s.Domain); err != nil {
		return err
	}
	return s.Plan.Validate()
}

var (
	cpusRE   = regexp.MustCompile(`^[0-9]{1,2}(\.[0-9]{1,3})?$`)
	memoryRE = regexp.MustCompile(`^[1-9][0-9]{0,5}[mg]$`)
)

// Validate checks the plan's limits are well-formed and non-zero.
func (p Plan) Validate() error {
	if !cpusRE.MatchString(p.CPUs) || strings.Trim(p.CPUs, "0.") == "" {
		return &FieldError{"plan cpus", p.CPUs, "must be a positive decimal number of CPUs such as 0.5"}
	}
	if !memoryRE.MatchString(p.Memory) {
		return &FieldError{"plan memory", p.Memory, "must be a size in megabytes or gigabytes such as 128m or 1g"}
	}
	if p.Pids < 8 || p.Pids > 4096 {
		return &FieldError{"plan pids", fmt.Sprint(p.Pids), "must be between 8 and 4096"}
	}
	return nil
}
