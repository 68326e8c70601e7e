package labels

import (
	"errors"
	"flag"
	"fmt"
	goparser "go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/traefik/paerser/parser"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// blog is a typical site; tests derive variants from it with options.
func blog(opts ...func(*Route)) Route {
	r := Route{
		Site:         "blog",
		Domains:      []string{"blog.example.org"},
		Port:         8080,
		EntryPoints:  []string{"websecure"},
		CertResolver: "le",
		Network:      "front",
	}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func withDomains(d ...string) func(*Route) { return func(r *Route) { r.Domains = d } }
func withEntryPoints(e ...string) func(*Route) {
	return func(r *Route) { r.EntryPoints = e }
}
func withoutTLS(r *Route)     { r.CertResolver = "" }
func withoutNetwork(r *Route) { r.Network = "" }
func withWildcard(w string) func(*Route) {
	return func(r *Route) { r.Wildcard = w }
}
func withSite(s string) func(*Route) {
	return func(r *Route) { r.Site = s }
}
func withPort(p int) func(*Route) { return func(r *Route) { r.Port = p } }
func withHealth(r *Route) {
	r.Health = &Health{Path: "/", Hostname: "healthcheck.darse.invalid", Interval: "10s"}
}

var roundTripCases = []struct {
	name  string
	route Route
}{
	{"one domain, TLS", blog()},
	{"many domains", blog(withDomains("blog.example.org", "www.blog.example.com", "my-blog.example.net"))},
	{"no TLS", blog(withoutTLS, withEntryPoints("web"))},
	{"TLS, two entry points", blog(withEntryPoints("web", "websecure"))},
	{"default entry points, no network", blog(withEntryPoints(), withoutNetwork)},
	{"health check", blog(withHealth)},
}

func TestRouteRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases {
		t.Run(tc.name, func(t *testing.T) {
			labels, err := Traefik(tc.route)
			if err != nil {
				t.Fatalf("Traefik: %v", err)
			}
			got, err := ParseTraefik(labels)
			if err != nil {
				t.Fatalf("ParseTraefik: %v\nlabels: %s", err, format(labels))
			}
			if !reflect.DeepEqual(got, tc.route) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, tc.route)
			}
		})
	}
}

// The typed config itself survives paerser's Encode and Decode unchanged,
// so no field is lost to a tag or a name paerser reads differently.
func TestConfigRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.route.config()
			labels, err := parser.Encode(want, rootName)
			if err != nil {
				t.Fatal(err)
			}
			got := &config{}
			if err := parser.Decode(labels, got, rootName); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, want)
			}
		})
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route Route
	}{
		{"blog", blog()},
		{"blog-health", blog(withHealth)},
		{"blog-wildcard", blog(withWildcard("example.org"))},
		{"blog-wildcard-custom-domains", blog(withWildcard("example.org"), withDomains("blog.example.org", "www.blog.net", "a.b.example.org"))},
		{"shop-many-domains-no-tls", Route{
			Site:    "shop",
			Domains: []string{"shop.example.org", "example.com", "www.example.com"},
			Port:    3000,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			labels, err := Traefik(tc.route)
			if err != nil {
				t.Fatal(err)
			}
			got := format(labels)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("labels differ from %s (go test -update to accept):\n got:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// format prints labels as sorted key=value lines, as docker inspect lists them.
func format(labels map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(&b, "%s=%s\n", k, labels[k])
	}
	return b.String()
}

func TestTraefikOmitsUnsetFields(t *testing.T) {
	labels, err := Traefik(blog(withoutTLS, withoutNetwork, withEntryPoints()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"traefik.enable":                                           "true",
		"traefik.http.routers.site-blog.rule":                      "Host(`blog.example.org`)",
		"traefik.http.routers.site-blog.service":                   "site-blog",
		"traefik.http.services.site-blog.loadbalancer.server.port": "8080",
	}
	if !reflect.DeepEqual(labels, want) {
		t.Errorf("got:\n%swant:\n%s", format(labels), format(want))
	}
}

func TestTraefikRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route Route
		field string // FieldError.Field
		value string // FieldError.Value
	}{
		{"empty site", blog(withSite("")), "site name", ""},
		{"upper-case site", blog(withSite("Blog")), "site name", "Blog"},
		{"site with dot", blog(withSite("a.b")), "site name", "a.b"},
		{"site ending in dash", blog(withSite("blog-")), "site name", "blog-"},
		{"site too long", blog(withSite(strings.Repeat("a", 64))), "site name", strings.Repeat("a", 64)},
		{"no domain", blog(withDomains()), "domains", ""},
		{"backtick injection", blog(withDomains("a.org`) || PathPrefix(`/")), "domain", "a.org`) || PathPrefix(`/"},
		{"backtick", blog(withDomains("a`b.org")), "domain", "a`b.org"},
		{"space", blog(withDomains("a b.org")), "domain", "a b.org"},
		{"parenthesis", blog(withDomains("a(b).org")), "domain", "a(b).org"},
		{"wildcard", blog(withDomains("*.example.org")), "domain", "*.example.org"},
		{"upper case", blog(withDomains("Blog.example.org")), "domain", "Blog.example.org"},
		{"single label", blog(withDomains("localhost")), "domain", "localhost"},
		{"trailing dot", blog(withDomains("blog.example.org.")), "domain", "blog.example.org."},
		{"empty label", blog(withDomains("blog..org")), "domain", "blog..org"},
		{"label starts with dash", blog(withDomains("-blog.example.org")), "domain", "-blog.example.org"},
		{"label too long", blog(withDomains(strings.Repeat("a", 64) + ".org")), "domain", strings.Repeat("a", 64) + ".org"},
		{"name too long", blog(withDomains(strings.Repeat("a.", 127) + "org")), "domain", strings.Repeat("a.", 127) + "org"},
		{"IP address", blog(withDomains("10.0.0.1")), "domain", "10.0.0.1"},
		{"bad second domain", blog(withDomains("blog.example.org", "b_d.example.org")), "domain", "b_d.example.org"},
		{"duplicate domain", blog(withDomains("blog.example.org", "blog.example.org")), "domain", "blog.example.org"},
		{"port zero", blog(withPort(0)), "port", "0"},
		{"port too big", blog(withPort(65536)), "port", "65536"},
		{"entry point with comma", blog(withEntryPoints("web,websecure")), "entry point", "web,websecure"},
		{"empty entry point", blog(withEntryPoints("")), "entry point", ""},
		{"bad resolver", blog(func(r *Route) { r.CertResolver = "le`" }), "cert resolver", "le`"},
		{"bad wildcard", blog(withWildcard("*.example.org")), "wildcard", "*.example.org"},
		{"custom domain beside a wildcard, no resolver", blog(withWildcard("example.org"), withoutTLS, withDomains("blog.example.org", "www.blog.net")), "cert resolver", ""},
		{"bad network", blog(func(r *Route) { r.Network = "-front" }), "network", "-front"},
		{"bad health path", blog(withHealth, func(r *Route) { r.Health.Path = "x`y" }), "health path", "x`y"},
		{"bad health interval", blog(withHealth, func(r *Route) { r.Health.Interval = "5ms" }), "health interval", "5ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			labels, err := Traefik(tc.route)
			if err == nil {
				t.Fatalf("no error; labels:\n%s", format(labels))
			}
			t.Log(err)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			if fe.Field != tc.field || fe.Value != tc.value {
				t.Errorf("FieldError{%q, %q}, want {%q, %q}", fe.Field, fe.Value, tc.field, tc.value)
			}
			if fe.Rule == "" || !strings.Contains(err.Error(), fe.Rule) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.value)) {
				t.Errorf("error %q should name the value and the rule", err)
			}
		})
	}
}

// The lowercase keys Traefik writes and the Go-cased ones paerser writes
// are the same labels to Traefik; ParseTraefik must read both.
func TestParseTraefikIgnoresKeyCase(t *testing.T) {
	raw, err := parser.Encode(blog().config(), rootName)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["traefik.HTTP.Routers.site-blog.Rule"]; !ok {
		t.Fatalf("paerser no longer writes Go field names; keys: %v", raw)
	}
	got, err := ParseTraefik(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, blog()) {
		t.Errorf("got %#v, want %#v", got, blog())
	}
}

func TestParseTraefikIgnoresOtherLabels(t *testing.T) {
	labels, err := Traefik(blog())
	if err != nil {
		t.Fatal(err)
	}
	labels["darse.site"] = "blog"
	labels["com.docker.compose.project"] = "blog"
	labels["traefikish"] = "x"
	got, err := ParseTraefik(labels)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, blog()) {
		t.Errorf("got %#v, want %#v", got, blog())
	}
}

func TestParseTraefikRejects(t *testing.T) {
	valid := func() map[string]string {
		l, err := Traefik(blog())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	const (
		router  = "traefik.http.routers.site-blog."
		service = "traefik.http.services.site-blog."
	)
	for _, tc := range []struct {
		name string
		edit func(map[string]string)
		want string // in the error
	}{
		{"no labels", func(l map[string]string) { clear(l) }, "traefik.enable"},
		{"disabled", func(l map[string]string) { l["traefik.enable"] = "false" }, "traefik.enable"},
		{"unknown router field", func(l map[string]string) { l[router+"middlewares"] = "auth" }, "middlewares"},
		{"tcp router", func(l map[string]string) { l["traefik.tcp.routers.x.rule"] = "HostSNI(`*`)" }, "tcp"},
		{"second router", func(l map[string]string) {
			l["traefik.http.routers.other.rule"] = "Host(`other.example.org`)"
		}, "exactly one"},
		{"router not named after a site", func(l map[string]string) {
			for k, v := range l {
				if after, ok := strings.CutPrefix(k, router); ok {
					delete(l, k)
					l["traefik.http.routers.blog."+after] = v
				}
			}
		}, `"blog"`},
		{"service mismatch", func(l map[string]string) { l[router+"service"] = "site-shop" }, "site-shop"},
		{"rule with path", func(l map[string]string) {
			l[router+"rule"] = "Host(`blog.example.org`) && PathPrefix(`/`)"
		}, "rule"},
		{"rule with HostRegexp", func(l map[string]string) {
			l[router+"rule"] = "HostRegexp(`.+`)"
		}, "rule"},
		{"rule with bad domain", func(l map[string]string) {
			l[router+"rule"] = "Host(`blog.example.org`) || Host(`x`)"
		}, `"x"`},
		{"tls domains without resolver", func(l map[string]string) {
			delete(l, router+"tls.certresolver")
			l[router+"tls.domains[0].main"] = "blog.example.org"
		}, "certResolver"},
		{"tls domain not in the rule", func(l map[string]string) {
			l[router+"tls.domains[0].main"] = "shop.example.org"
		}, "shop.example.org"},
		{"tls domains listing every host", func(l map[string]string) {
			l[router+"tls.domains[0].main"] = "blog.example.org"
		}, "every host"},
		{"port not a number", func(l map[string]string) { l[service+"loadbalancer.server.port"] = "http" }, "port"},
		{"no service", func(l map[string]string) { delete(l, service+"loadbalancer.server.port") }, "exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := valid()
			tc.edit(l)
			r, err := ParseTraefik(l)
			if err == nil {
				t.Fatalf("no error; got %#v", r)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// Traefik's packages pull in hundreds of modules; this package copies the
// few field names it needs instead.
func TestImportsNoTraefik(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		ast, err := goparser.ParseFile(fset, f, nil, goparser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/traefik/") && !strings.HasPrefix(path, "github.com/traefik/paerser/") {
				t.Errorf("%s imports %s; copy the field names instead", f, path)
			}
		}
	}
}

// Under a wildcard the front door holds, a router orders nothing for the
// hosts it covers: tls=true alone when it covers them all, else one
// certificate per other host (custom domains) from the resolver.
func TestWildcardTLS(t *testing.T) {
	const router = "traefik.http.routers.site-blog."
	for _, tc := range []struct {
		name    string
		route   Route
		want    map[string]string // TLS labels, exactly
		reparse Route             // what ParseTraefik reads back
	}{
		{"platform host only", blog(withWildcard("example.org")),
			map[string]string{router + "tls": "true"},
			blog(withWildcard("example.org"), withoutTLS)},
		{"custom domains", blog(withWildcard("example.org"), withDomains("blog.example.org", "www.blog.net", "shop.example.com")),
			map[string]string{router + "tls.certresolver": "le", router + "tls.domains[0].main": "www.blog.net", router + "tls.domains[1].main": "shop.example.com"},
			blog(withWildcard("example.org"), withDomains("blog.example.org", "www.blog.net", "shop.example.com"))},
		// *.example.org does not match two labels more, nor another domain:
		// the resolver orders for the rule's hosts, as without a wildcard.
		{"nothing covered", blog(withWildcard("example.org"), withDomains("a.blog.example.org", "panel.example.net")),
			map[string]string{router + "tls.certresolver": "le"},
			blog(withDomains("a.blog.example.org", "panel.example.net"))},
		{"no wildcard", blog(), map[string]string{router + "tls.certresolver": "le"}, blog()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			labels, err := Traefik(tc.route)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for k, v := range labels {
				if strings.HasPrefix(k, router+"tls") {
					got[k] = v
				}
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("tls labels:\n%s\nwant:\n%s", format(got), format(tc.want))
			}
			back, err := ParseTraefik(labels)
			if err != nil {
				t.Fatalf("ParseTraefik: %v\n%s", err, format(labels))
			}
			if !reflect.DeepEqual(back, tc.reparse) {
				t.Errorf("read back %#v\nwant %#v", back, tc.reparse)
			}
			again, err := Traefik(back)
			if err != nil || !maps.Equal(again, labels) {
				t.Errorf("labels of the route read back differ (%v):\n%s\nwant:\n%s", err, format(again), format(labels))
			}
		})
	}
}
