package firewall

import (
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/labels"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// testOptions is a case's options.json.
type testOptions struct {
	Input             InputPolicy `json:"input"`
	InputAllow        []string    `json:"inputAllow"`
	DockerForwardDrop bool        `json:"dockerForwardDrop"`
	// TenantHostAllow is nil for the default, [] for none.
	TenantHostAllow []string       `json:"tenantHostAllow"`
	EgressDeny      []netip.Prefix `json:"egressDeny"`
}

// loadCase reads testdata/<name>/containers.json and options.json.
func loadCase(t testing.TB, dir string) (State, Options) {
	t.Helper()
	var s State
	b, err := os.ReadFile(filepath.Join(dir, "containers.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	o := Options{Srv: "/srv"}
	b, err = os.ReadFile(filepath.Join(dir, "options.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err == nil {
		var to testOptions
		if err := json.Unmarshal(b, &to); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		o.Input, o.DockerForwardDrop, o.EgressDeny = to.Input, to.DockerForwardDrop, to.EgressDeny
		o.InputAllow = parsePorts(t, to.InputAllow)
		o.TenantHostAllow = parsePorts(t, to.TenantHostAllow)
	}
	return s, o
}

// parsePorts keeps nil as nil (the default) and [] as none.
func parsePorts(t testing.TB, ps []string) []Port {
	t.Helper()
	if ps == nil {
		return nil
	}
	out := []Port{}
	for _, p := range ps {
		port, err := ParsePort(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, port)
	}
	return out
}

func cases(t testing.TB) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", "*", "containers.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for i := range dirs {
		dirs[i] = filepath.Dir(dirs[i])
	}
	return dirs
}

// Each case's containers give exactly its ruleset.golden.
func TestBuildGolden(t *testing.T) {
	for _, dir := range cases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			s, o := loadCase(t, dir)
			got := Build(s, o).Text()
			path := filepath.Join(dir, "ruleset.golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test ./internal/firewall -update to accept):\n%s", path, diff(string(want), got))
			}
		})
	}
}

// Build is deterministic: the order containers and networks are listed in
// does not change the ruleset.
func TestBuildIgnoresListingOrder(t *testing.T) {
	for _, dir := range cases(t) {
		s, o := loadCase(t, dir)
		want := Build(s, o).Text()
		for i, j := 0, len(s.Containers)-1; i < j; i, j = i+1, j-1 {
			s.Containers[i], s.Containers[j] = s.Containers[j], s.Containers[i]
		}
		for i, j := 0, len(s.Networks)-1; i < j; i, j = i+1, j-1 {
			s.Networks[i], s.Networks[j] = s.Networks[j], s.Networks[i]
		}
		if got := Build(s, o).Text(); got != want {
			t.Errorf("%s: reversed listing gives another ruleset:\n%s", dir, diff(want, got))
		}
	}
}

// A malformed exposure is refused by name; the container's other
// exposures and other containers are unaffected.
func TestBuildMalformedIsolated(t *testing.T) {
	s, o := loadCase(t, filepath.Join("testdata", "malformed"))
	r := Build(s, o)
	refused := map[string]bool{}
	for _, p := range r.Problems {
		if p.Refused {
			refused[p.Container+" "+p.Exposure] = true
		}
	}
	for _, want := range []string{"broken_web_1 badport", "broken_web_1 proto", "broken_web_1 range", "broken_web_1 huge"} {
		if !refused[want] {
			t.Errorf("%s not refused; problems: %v", want, r.Problems)
		}
	}
	var exposed []string
	for _, e := range r.Exposures {
		exposed = append(exposed, e.Container+" "+e.Name)
	}
	if got := strings.Join(exposed, ", "); got != "broken_web_1 good, fine_web_1 ssh" {
		t.Errorf("exposed %s", got)
	}
}

func TestBuildConflictKeepsEarlier(t *testing.T) {
	early := Container{ID: "1", Name: "early", Created: time.Unix(100, 0),
		Endpoints: []Endpoint{{Network: "n", IPv4: netip.MustParseAddr("10.9.0.2")}}}
	late := early
	late.ID, late.Name, late.Created = "2", "late", time.Unix(200, 0)
	l, err := labels.Expose([]labels.Exposure{{Name: "ssh", Port: 22, HostPort: 40022}})
	if err != nil {
		t.Fatal(err)
	}
	early.Labels, late.Labels = l, l
	r := Build(State{Containers: []Container{late, early}}, Options{})
	if len(r.Exposures) != 1 || r.Exposures[0].Container != "early" {
		t.Fatalf("exposures %v, want early's only", r.Exposures)
	}
	var refused []string
	for _, p := range r.Problems {
		if p.Refused {
			refused = append(refused, p.Container+" "+p.Exposure)
		}
	}
	if len(refused) != 1 || refused[0] != "late ssh" {
		t.Fatalf("refused %v, want late's ssh; problems: %v", refused, r.Problems)
	}
}

func TestIsPlatform(t *testing.T) {
	for _, tc := range []struct {
		dir      string
		platform string
		site     string
		want     bool
	}{
		{"/srv/core/front", "true", "", true},
		{"/srv/apps/panel", "true", "", true},
		{"/srv/apps/panel", "", "", false},
		{"/srv/apps/panel", "yes", "", false},
		{"/srv/users/blog", "true", "", false},
		{"/srv/core/front", "true", "blog", false},
		{"/srv/core", "true", "", false},
		{"/srv/core/../users/x", "true", "", false},
		{"/srv/coreutils/x", "true", "", false},
		{"srv/core/front", "true", "", false},
		{"", "true", "", false},
	} {
		l := map[string]string{labelWorkingDir: tc.dir, labels.PlatformLabel: tc.platform, labels.SiteLabel: tc.site}
		if got := IsPlatform(l, "/srv"); got != tc.want {
			t.Errorf("IsPlatform(dir %q, platform %q, site %q) = %v, want %v", tc.dir, tc.platform, tc.site, got, tc.want)
		}
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]string{"22": "tcp/22", "tcp/80": "tcp/80", "udp/443": "udp/443"} {
		p, err := ParsePort(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePort(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "0", "65536", "sctp/1", "tcp/x", "tcp/"} {
		if _, err := ParsePort(in); err == nil {
			t.Errorf("ParsePort(%q) accepted", in)
		}
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes(" 10.1.2.3/8, fd00:ec2::254 ,192.0.2.7,,::ffff:198.51.100.1")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00:ec2::254/128"),
		netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("198.51.100.1/32")}
	if len(got) != len(want) {
		t.Fatalf("ParsePrefixes = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ParsePrefixes[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	for _, in := range []string{"10.0.0.0/33", "host", "fe80::1%eth0", "10.0.0.0/8,x"} {
		if _, err := ParsePrefixes(in); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", in)
		}
	}
	if ps, err := ParsePorts(""); err != nil || ps == nil || len(ps) != 0 {
		t.Errorf(`ParsePorts("") = %v, %v; want none, not the default`, ps, err)
	}
}

// diff shows the first differing lines of two texts.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want " + wl + "\n  got  " + gl + "\n")
			if shown++; shown == 8 {
				break
			}
		}
	}
	return b.String()
}

// A container's link-local address is its MAC's EUI-64, as seen on a
// container of the real engine (02:42:ac:10:05:02 → fe80::42:acff:fe10:502).
func TestEndpointLinkLocal(t *testing.T) {
	if got := (Endpoint{MAC: "02:42:ac:10:05:02"}).LinkLocal().String(); got != "fe80::42:acff:fe10:502" {
		t.Fatalf("link-local = %s", got)
	}
	if (Endpoint{}).LinkLocal().IsValid() {
		t.Fatal("an endpoint without MAC has a link-local address")
	}
}
