package labels

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/traefik/paerser/parser"
)

// Exposure labels: what a container opens to the outside, read by the
// firewall watcher (darse-fw). One exposure is a group of labels under a
// name:
//
//	darse.expose.<name>.port=22            container port (required)
//	darse.expose.<name>.hostport=40022     host port (required)
//	darse.expose.<name>.protocol=tcp       tcp (default) or udp
//	darse.expose.<name>.hostip=192.0.2.10  optional: one host address only
//
// Without hostip the exposure answers on every host address, IPv4 and
// IPv6; 0.0.0.0 or :: limit it to every address of that family.
//
// Members' port forwards use host ports MemberPortMin..MemberPortMax.
// Other host ports (80, 443, 22…) are honoured only for platform
// containers: those labelled PlatformLabel=true, carrying no SiteLabel, in
// a compose project under the platform's core/ or apps/ folder. The
// watcher checks the folder; the label alone proves nothing, since an
// operator could copy it anywhere.
const (
	// ExposePrefix starts every exposure label.
	ExposePrefix = "darse.expose."
	// PlatformLabel marks a platform container (Traefik, the panel):
	// "true" lets its exposures use host ports outside the member range.
	PlatformLabel = "darse.platform"

	// MemberPortMin and MemberPortMax bound the host ports of members'
	// port forwards (seed 000: SSH and friends on 40000-50000).
	MemberPortMin = 40000
	MemberPortMax = 50000
)

// Protocol is a transport protocol an exposure forwards.
type Protocol string

// The protocols an exposure can forward.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Exposure is one port a container opens on the host.
type Exposure struct {
	// Name identifies the exposure within its container (a DNS label,
	// e.g. "ssh"); it is the <name> in the label keys.
	Name string
	// Protocol is TCP or UDP; empty means TCP.
	Protocol Protocol
	// Port is the container port, 1-65535.
	Port int
	// HostPort is the port on the host, 1-65535; see CheckHostPort.
	HostPort int
	// HostIP limits the exposure to one host address. The zero Addr means
	// every host address, IPv4 and IPv6; 0.0.0.0 and :: mean every address
	// of that family.
	HostIP netip.Addr
}

// ExposureError reports a rejected exposure of a container's labels.
type ExposureError struct {
	Name string // the exposure's name
	Err  error
}

func (e *ExposureError) Error() string { return fmt.Sprintf("exposure %q: %v", e.Name, e.Err) }
func (e *ExposureError) Unwrap() error { return e.Err }

// exposeLabels and exposeFields are the label form, with paerser's field
// names: darse.expose.<name>.{port,hostport,protocol,hostip}.
type exposeLabels struct {
	Expose map[string]*exposeFields
}

type exposeFields struct {
	Protocol string
	Port     int
	HostPort int
	HostIP   string
}

const exposeRoot = "darse"

// Expose encodes members' port forwards as labels for the site's service.
// Every exposure must be valid, use a host port in the member range, and
// differ from the others by name and by host port/protocol.
func Expose(exposures []Exposure) (map[string]string, error) {
	root := exposeLabels{Expose: map[string]*exposeFields{}}
	claimed := map[string]string{}
	for _, e := range exposures {
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("expose labels: %w", &ExposureError{Name: e.Name, Err: err})
		}
		if err := e.CheckHostPort(false); err != nil {
			return nil, fmt.Errorf("expose labels: %w", &ExposureError{Name: e.Name, Err: err})
		}
		if _, dup := root.Expose[e.Name]; dup {
			return nil, fmt.Errorf("expose labels: %w", &FieldError{Field: "exposure name", Value: e.Name, Rule: "is used twice"})
		}
		key := fmt.Sprintf("%d/%s", e.HostPort, e.proto())
		if other, dup := claimed[key]; dup {
			return nil, fmt.Errorf("expose labels: %w", &ExposureError{Name: e.Name,
				Err: &FieldError{Field: "host port", Value: key, Rule: fmt.Sprintf("is already used by exposure %q", other)}})
		}
		claimed[key] = e.Name
		f := &exposeFields{Protocol: string(e.proto()), Port: e.Port, HostPort: e.HostPort}
		if e.HostIP.IsValid() {
			f.HostIP = e.HostIP.String()
		}
		root.Expose[e.Name] = f
	}
	if len(root.Expose) == 0 {
		return map[string]string{}, nil
	}
	encoded, err := parser.Encode(root, exposeRoot)
	if err != nil {
		return nil, fmt.Errorf("expose labels: %w", err)
	}
	// paerser writes Go field names; the documented keys are lowercase and
	// names are lowercase DNS labels already.
	out := make(map[string]string, len(encoded))
	for k, v := range encoded {
		out[strings.ToLower(k)] = v
	}
	return out, nil
}

// ParseExposures decodes the exposure labels among a container's labels.
// Each exposure is decoded on its own: a malformed one is returned as an
// *ExposureError and the others are still returned, sorted by name. The
// host port range is not checked here (it depends on the container; see
// CheckHostPort).
func ParseExposures(labels map[string]string) ([]Exposure, []error) {
	groups := map[string]map[string]string{}
	for k, v := range labels {
		rest, ok := strings.CutPrefix(strings.ToLower(k), ExposePrefix)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, ".")
		if groups[name] == nil {
			groups[name] = map[string]string{}
		}
		groups[name][k] = v
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	var (
		out  []Exposure
		errs []error
	)
	for _, name := range names {
		e, err := parseExposure(name, groups[name])
		if err != nil {
			errs = append(errs, &ExposureError{Name: name, Err: err})
			continue
		}
		out = append(out, e)
	}
	return out, errs
}

func parseExposure(name string, labels map[string]string) (Exposure, error) {
	if !isExposureName(name) {
		return Exposure{}, &FieldError{Field: "exposure name", Value: name, Rule: "must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'"}
	}
	// Numbers are checked first: paerser's own error would not name the
	// field.
	for k, v := range labels {
		field := strings.ToLower(k[strings.LastIndexByte(k, '.')+1:])
		if field == "port" || field == "hostport" {
			if _, err := strconv.Atoi(v); err != nil {
				return Exposure{}, &FieldError{Field: field, Value: v, Rule: "must be a number"}
			}
		}
	}
	var root exposeLabels
	if err := parser.Decode(labels, &root, exposeRoot, ExposePrefix+name); err != nil {
		return Exposure{}, fmt.Errorf("decode: %w", err)
	}
	f := root.Expose[name]
	if f == nil {
		// Keys are matched case-insensitively: find the one paerser kept.
		for _, v := range root.Expose {
			f = v
		}
	}
	if f == nil {
		return Exposure{}, errors.New("no fields")
	}
	e := Exposure{Name: name, Protocol: Protocol(strings.ToLower(f.Protocol)), Port: f.Port, HostPort: f.HostPort}
	if e.Protocol == "" {
		e.Protocol = TCP
	}
	if f.HostIP != "" {
		ip, err := netip.ParseAddr(f.HostIP)
		if err != nil {
			return Exposure{}, &FieldError{Field: "hostip", Value: f.HostIP, Rule: "must be an IPv4 or IPv6 address"}
		}
		e.HostIP = ip
	}
	if e.Port == 0 {
		return Exposure{}, &FieldError{Field: "port", Value: "", Rule: "is required"}
	}
	if e.HostPort == 0 {
		return Exposure{}, &FieldError{Field: "hostport", Value: "", Rule: "is required"}
	}
	return e, e.Validate()
}

// Validate checks the exposure on its own: name, protocol, ports and host
// address. It does not check the host port range (see CheckHostPort).
func (e Exposure) Validate() error {
	if !isExposureName(e.Name) {
		return &FieldError{Field: "exposure name", Value: e.Name, Rule: "must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'"}
	}
	if p := e.proto(); p != TCP && p != UDP {
		return &FieldError{Field: "protocol", Value: string(e.Protocol), Rule: "must be tcp or udp"}
	}
	if e.Port < 1 || e.Port > 65535 {
		return &FieldError{Field: "port", Value: strconv.Itoa(e.Port), Rule: "must be between 1 and 65535"}
	}
	if e.HostPort < 1 || e.HostPort > 65535 {
		return &FieldError{Field: "hostport", Value: strconv.Itoa(e.HostPort), Rule: "must be between 1 and 65535"}
	}
	if ip := e.HostIP; ip.IsValid() {
		switch {
		case ip.Zone() != "":
			return &FieldError{Field: "hostip", Value: ip.String(), Rule: "must not carry a zone"}
		case ip.Is4In6():
			return &FieldError{Field: "hostip", Value: ip.String(), Rule: "must be a plain IPv4 or IPv6 address, not IPv4-mapped"}
		case ip.IsLoopback():
			// Forwarding from loopback to a container needs route_localnet
			// and hides the client; Docker's userland proxy does it.
			return &FieldError{Field: "hostip", Value: ip.String(), Rule: "must not be a loopback address"}
		case ip.IsMulticast(), ip.IsLinkLocalUnicast():
			return &FieldError{Field: "hostip", Value: ip.String(), Rule: "must be a unicast address of the host, not multicast or link-local"}
		}
	}
	return nil
}

// CheckHostPort applies the host port policy: members' forwards stay in
// MemberPortMin..MemberPortMax; platform containers may use any port.
func (e Exposure) CheckHostPort(platform bool) error {
	if platform {
		return nil
	}
	if e.HostPort < MemberPortMin || e.HostPort > MemberPortMax {
		return &FieldError{Field: "hostport", Value: strconv.Itoa(e.HostPort),
			Rule: fmt.Sprintf("must be between %d and %d (other ports are for platform containers only)", MemberPortMin, MemberPortMax)}
	}
	return nil
}

func (e Exposure) proto() Protocol {
	if e.Protocol == "" {
		return TCP
	}
	return e.Protocol
}

// isExposureName: a DNS label, so it is safe in label keys, nft comments
// and logs.
func isExposureName(s string) bool {
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
