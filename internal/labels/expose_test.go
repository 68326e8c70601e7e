package labels

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestExposeRoundTrip(t *testing.T) {
	in := []Exposure{
		{Name: "ssh", Port: 22, HostPort: 40022},
		{Name: "game", Protocol: UDP, Port: 27015, HostPort: 40100, HostIP: netip.MustParseAddr("2001:db8::10")},
	}
	got, err := Expose(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"darse.expose.ssh.port":      "22",
		"darse.expose.ssh.hostport":  "40022",
		"darse.expose.ssh.protocol":  "tcp",
		"darse.expose.game.port":     "27015",
		"darse.expose.game.hostport": "40100",
		"darse.expose.game.protocol": "udp",
		"darse.expose.game.hostip":   "2001:db8::10",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Expose:\n got %v\nwant %v", got, want)
	}
	// Other labels beside them are ignored.
	got["darse.site"] = "blog"
	got["traefik.enable"] = "true"
	back, errs := ParseExposures(got)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	in[0].Protocol = TCP
	wantBack := []Exposure{in[1], in[0]} // sorted by name
	if !reflect.DeepEqual(back, wantBack) {
		t.Errorf("ParseExposures:\n got %+v\nwant %+v", back, wantBack)
	}
}

func TestExposeNone(t *testing.T) {
	got, err := Expose(nil)
	if err != nil || len(got) != 0 {
		t.Errorf("Expose(nil) = %v, %v; want no labels", got, err)
	}
	if e, errs := ParseExposures(map[string]string{"darse.site": "x"}); len(e)+len(errs) != 0 {
		t.Errorf("ParseExposures without exposure labels = %v, %v", e, errs)
	}
}

func TestExposeRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []Exposure
		field string
	}{
		{"name", []Exposure{{Name: "SSH", Port: 22, HostPort: 40022}}, "exposure name"},
		{"name-dot", []Exposure{{Name: "a.b", Port: 22, HostPort: 40022}}, "exposure name"},
		{"protocol", []Exposure{{Name: "ssh", Protocol: "sctp", Port: 22, HostPort: 40022}}, "protocol"},
		{"port", []Exposure{{Name: "ssh", Port: 0, HostPort: 40022}}, "port"},
		{"port-high", []Exposure{{Name: "ssh", Port: 70000, HostPort: 40022}}, "port"},
		{"member-range-low", []Exposure{{Name: "ssh", Port: 22, HostPort: 22}}, "hostport"},
		{"member-range-high", []Exposure{{Name: "ssh", Port: 22, HostPort: 50001}}, "hostport"},
		{"loopback", []Exposure{{Name: "ssh", Port: 22, HostPort: 40022, HostIP: netip.MustParseAddr("127.0.0.1")}}, "hostip"},
		{"mapped", []Exposure{{Name: "ssh", Port: 22, HostPort: 40022, HostIP: netip.MustParseAddr("::ffff:192.0.2.1")}}, "hostip"},
		{"dup-name", []Exposure{{Name: "ssh", Port: 22, HostPort: 40022}, {Name: "ssh", Port: 23, HostPort: 40023}}, "exposure name"},
		{"dup-port", []Exposure{{Name: "a", Port: 22, HostPort: 40022}, {Name: "b", Port: 23, HostPort: 40022}}, "host port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Expose(tc.in)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("Expose = %v, want a %q FieldError", err, tc.field)
			}
		})
	}
	// Same host port over two protocols is fine.
	if _, err := Expose([]Exposure{{Name: "a", Port: 53, HostPort: 40053}, {Name: "b", Protocol: UDP, Port: 53, HostPort: 40053}}); err != nil {
		t.Errorf("tcp and udp on one host port: %v", err)
	}
}

// A malformed exposure is reported by name and the others survive.
func TestParseExposuresMalformed(t *testing.T) {
	labels := map[string]string{
		"darse.expose.ok.port":          "80",
		"darse.expose.ok.hostport":      "40080",
		"darse.expose.badport.port":     "eighty",
		"darse.expose.badport.hostport": "40081",
		"darse.expose.range.port":       "80",
		"darse.expose.range.hostport":   "65536",
		"darse.expose.proto.port":       "80",
		"darse.expose.proto.hostport":   "40082",
		"darse.expose.proto.protocol":   "icmp",
		"darse.expose.nohost.port":      "80",
		"darse.expose.typo.port":        "80",
		"darse.expose.typo.hostprot":    "40083",
		"darse.expose.ip.port":          "80",
		"darse.expose.ip.hostport":      "40084",
		"darse.expose.ip.hostip":        "300.1.1.1",
		"darse.expose.Bad_Name.port":    "80",
		"darse.expose.bare":             "yes",
	}
	got, errs := ParseExposures(labels)
	want := []Exposure{{Name: "ok", Protocol: TCP, Port: 80, HostPort: 40080}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("valid exposures = %+v, want %+v", got, want)
	}
	names := map[string]bool{}
	for _, err := range errs {
		var ee *ExposureError
		if !errors.As(err, &ee) {
			t.Errorf("error %v is not an *ExposureError", err)
			continue
		}
		names[ee.Name] = true
	}
	for _, n := range []string{"badport", "range", "proto", "nohost", "typo", "ip", "bad_name", "bare"} {
		if !names[n] {
			t.Errorf("no error for exposure %q; errors: %v", n, errs)
		}
	}
	if len(errs) != 8 {
		t.Errorf("%d errors, want 8: %v", len(errs), errs)
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error spans lines: %q", err)
		}
	}
}

func TestCheckHostPort(t *testing.T) {
	e := Exposure{Name: "https", Port: 443, HostPort: 443}
	if err := e.CheckHostPort(false); err == nil {
		t.Error("member exposure on 443 accepted")
	}
	if err := e.CheckHostPort(true); err != nil {
		t.Errorf("platform exposure on 443: %v", err)
	}
	for _, p := range []int{MemberPortMin, MemberPortMax} {
		if err := (Exposure{Name: "x", Port: 1, HostPort: p}).CheckHostPort(false); err != nil {
			t.Errorf("member host port %d: %v", p, err)
		}
	}
}
