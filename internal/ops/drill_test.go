package ops

import (
	"slices"
	"strings"
	"testing"

	"github.com/darse/darse/internal/compose"
)

// A drill's project keeps no route, no port and no network but its own
// internal one, where services find each other by name.
func TestIsolate(t *testing.T) {
	p := &compose.Project{Name: "drill-0123456789ab", Site: "drill-0123456789ab",
		Networks: []compose.Network{{Key: "default", Name: "drill-0123456789ab_default", Labels: map[string]string{"darse.site": "drill-0123456789ab"}},
			{Key: "front", Name: "front", External: true}},
		Services: []compose.Service{
			{Name: "web", Container: compose.Container{Image: "darse/nginx:bookworm", Restart: "unless-stopped",
				Labels: map[string]string{"traefik.enable": "true", "traefik.http.routers.blog.rule": "Host(`blog.example.org`)",
					"darse.expose.fwd40001.hostport": "40001", "darse.site": "drill-0123456789ab", "darse.owner": "alice"},
				Networks: []compose.Attachment{{Network: "front"}, {Network: "drill-0123456789ab_default", Aliases: []string{"web"}}},
				Ports:    []compose.Port{{HostPort: "40001", ContainerPort: 22, Protocol: "tcp"}}, ExposedPorts: []string{"8080/tcp"}}},
			{Name: "db", Container: compose.Container{Image: "darse/mariadb:10.11-bookworm", Labels: map[string]string{"darse.site": "drill-0123456789ab"},
				Networks: []compose.Attachment{{Network: "drill-0123456789ab_default"}}}},
		}}
	isolate(p)
	if len(p.Networks) != 1 || !p.Networks[0].Internal || p.Networks[0].External || p.Networks[0].Labels["darse.site"] != "drill-0123456789ab" {
		t.Fatalf("networks: %+v", p.Networks)
	}
	for _, s := range p.Services {
		c := s.Container
		for k := range c.Labels {
			if strings.HasPrefix(k, "traefik.") && k != "traefik.enable" || strings.HasPrefix(k, "darse.expose") {
				t.Errorf("%s keeps label %s", s.Name, k)
			}
		}
		if c.Labels["traefik.enable"] != "false" || len(c.Ports) != 0 || len(c.ExposedPorts) != 0 || c.Restart != "no" {
			t.Errorf("%s: %+v", s.Name, c)
		}
		if len(c.Networks) != 1 || c.Networks[0].Network != p.Networks[0].Name || !slices.Equal(c.Networks[0].Aliases, []string{s.Name}) {
			t.Errorf("%s networks: %+v", s.Name, c.Networks)
		}
	}
}

// Rounds rotate through every site, n at a time.
func TestDrillSample(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e"}
	seen := map[string]int{}
	for round := range 5 {
		got := DrillSample(names, 2, round)
		if len(got) != 2 {
			t.Fatalf("round %d: %v", round, got)
		}
		for _, n := range got {
			seen[n]++
		}
	}
	for _, n := range names {
		if seen[n] != 2 {
			t.Errorf("over 5 rounds of 2, %s drilled %d times: %v", n, seen[n], seen)
		}
	}
	if got := DrillSample(names, 9, 1); len(got) != 5 {
		t.Errorf("a sample larger than the sites: %v", got)
	}
	if DrillSample(nil, 3, 0) != nil || DrillSample(names, 0, 0) != nil {
		t.Error("an empty sample drills something")
	}
	if p := DrillProject("a-very-long-site-name-of-sixty-three-characters-at-most-abcdefg", "run"); len(p) != len("drill-")+12 {
		t.Errorf("project %q", p)
	}
}
