package reconcile

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/darse/darse/internal/compose"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func project() *compose.Project {
	return &compose.Project{
		Name:     "blog",
		Networks: []compose.Network{{Key: "default", Name: "blog_default"}, {Key: "front", Name: "front", External: true}},
		Volumes:  []compose.Volume{{Key: "db", Name: "blog_db"}},
		Services: []compose.Service{
			{Name: "php", Hash: "h-php", Container: compose.Container{Image: "darse/php-fpm:8.2-bookworm"}},
			{Name: "web", Hash: "h-web", DependsOn: []string{"php"}, Container: compose.Container{Image: "darse/nginx:bookworm"}},
		},
	}
}

func running(service, hash string) Container {
	return Container{ID: "id-" + service, Name: "blog_" + service + "_1", Service: service, Hash: hash, State: "running"}
}

// images are the IDs the engine has now under the project's references:
// php-fpm was rebuilt, nginx was not.
var images = map[string]string{"darse/php-fpm:8.2-bookworm": "sha256:php-new", "darse/nginx:bookworm": "sha256:web"}

func withImage(c Container, id string) Container {
	c.ImageID = id
	return c
}

func TestPlans(t *testing.T) {
	converged := Observed{
		Containers: []Container{running("php", "h-php"), running("web", "h-web")},
		Networks:   []string{"blog_default"},
		Volumes:    []string{"blog_db"},
	}
	cases := []struct {
		name string
		plan Plan
	}{
		{"up-fresh", Up(project(), Observed{})},
		{"up-converged", Up(project(), converged)},
		{"up-php-changed", Up(project(), Observed{
			Containers: []Container{running("php", "old"), running("web", "h-web")},
			Networks:   []string{"blog_default"}, Volumes: []string{"blog_db"}})},
		{"up-killed-and-removed", Up(project(), Observed{
			Containers: []Container{{ID: "id-web", Name: "blog_web_1", Service: "web", Hash: "h-web", State: "exited"}},
			Networks:   []string{"blog_default"}, Volumes: []string{"blog_db"}})},
		{"up-orphan-and-extra", Up(project(), Observed{
			Containers: []Container{running("php", "h-php"), running("web", "h-web"), running("cron", "x"),
				{ID: "id-web2", Name: "blog_web_2", Service: "web", Hash: "h-web", State: "running"}},
			Networks: []string{"blog_default"}, Volumes: []string{"blog_db"}})},
		{"up-duplicate-network", Up(project(), Observed{
			Containers: []Container{running("php", "h-php"), running("web", "h-web")},
			Networks:   []string{"blog_default", "blog_default"}, Volumes: []string{"blog_db"}})},
		{"up-image-changed", Up(project(), Observed{
			Containers: []Container{withImage(running("php", "h-php"), "sha256:php-old"), withImage(running("web", "h-web"), "sha256:web")},
			Networks:   []string{"blog_default"}, Volumes: []string{"blog_db"}, Images: images})},
		{"stop", Stop(project(), converged)},
		{"restart", Restart(project(), converged)},
		{"down", Down(project(), converged, false)},
		{"down-purge", Down(project(), converged, true)},
		{"down-no-folder", Down(nil, converged, false)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			golden := filepath.Join("testdata", c.name+".golden")
			got := c.plan.String()
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("plan:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestUpOnConvergedIsEmpty(t *testing.T) {
	obs := Observed{Containers: []Container{running("php", "h-php"), running("web", "h-web")},
		Networks: []string{"blog_default"}, Volumes: []string{"blog_db"}}
	if p := Up(project(), obs); len(p) != 0 {
		t.Fatalf("Up on a converged project planned:\n%s", p)
	}
}

func TestImagesCompareOnlyWhenKnown(t *testing.T) {
	base := Observed{Networks: []string{"blog_default"}, Volumes: []string{"blog_db"}}
	for _, c := range []struct {
		name   string
		php    Container
		images map[string]string
		steps  int
	}{
		{"same image", withImage(running("php", "h-php"), "sha256:php-new"), images, 0},
		{"rebuilt", withImage(running("php", "h-php"), "sha256:php-old"), images, 2},
		{"engine resolves no image", withImage(running("php", "h-php"), "sha256:php-old"), nil, 0},
		{"container's image unknown", running("php", "h-php"), images, 0},
	} {
		obs := base
		obs.Containers = []Container{c.php, withImage(running("web", "h-web"), "sha256:web")}
		obs.Images = c.images
		if p := Up(project(), obs); len(p) != c.steps {
			t.Errorf("%s: planned %d steps, want %d:\n%s", c.name, len(p), c.steps, p)
		}
	}
}
