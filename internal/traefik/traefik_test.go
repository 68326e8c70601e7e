package traefik

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/reconcile"
)

func TestRoutes(t *testing.T) {
	// What Traefik v3.6's API answers for a service with two servers, one
	// of them down.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/http/services/site-blog@docker" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"loadBalancer":{"servers":[{"url":"http://172.18.0.5:8080"},{"url":"http://172.18.0.6:8080"}],"passHostHeader":true},
			"status":"enabled","serverStatus":{"http://172.18.0.5:8080":"UP","http://172.18.0.6:8080":"DOWN"},"provider":"docker","type":"loadbalancer"}`))
	}))
	defer api.Close()
	l, err := labels.Traefik(labels.Route{Site: "blog", Domains: []string{"blog.example.org"}, Port: 8080, Network: "front", EntryPoints: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	svc := compose.Service{Name: "web", Container: compose.Container{Image: "darse/nginx:bookworm", Labels: l}}
	r := &Router{API: strings.TrimPrefix(api.URL, "http://")}
	at := func(net, ip string) reconcile.Container {
		return reconcile.Container{Addresses: []reconcile.Address{{Network: "blog_default", IPv4: "172.19.0.2"}, {Network: net, IPv4: ip}}}
	}
	for _, c := range []struct {
		name string
		c    reconcile.Container
		want bool
	}{
		{"server, up", at("front", "172.18.0.5"), true},
		{"server, down", at("front", "172.18.0.6"), false},
		{"not a server", at("front", "172.18.0.7"), false},
		{"same address on another network", at("other", "172.18.0.5"), false},
		{"no address", reconcile.Container{}, false},
	} {
		got, err := r.Routes(context.Background(), svc, c.c)
		if err != nil || got != c.want {
			t.Errorf("%s: routed %v (%v), want %v", c.name, got, err, c.want)
		}
	}
	other := svc
	other.Container.Labels, _ = labels.Traefik(labels.Route{Site: "gone", Domains: []string{"gone.example.org"}, Port: 8080, Network: "front"})
	if got, err := r.Routes(context.Background(), other, at("front", "172.18.0.5")); err != nil || got {
		t.Errorf("service unknown to traefik: %v %v", got, err)
	}
	if _, err := r.Routes(context.Background(), compose.Service{Name: "db"}, at("front", "172.18.0.5")); err == nil {
		t.Error("a service without traefik labels: no error")
	}
}
