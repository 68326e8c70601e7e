// Package enginetest provides Fake, an in-memory Docker engine for the
// tests of packages that converge projects (hosting, ops, panel,
// platform): containers it is asked to run are kept with their labels and
// observed again, so plans converge as on the real engine, and every call
// is recorded.
package enginetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/reconcile"
)

// Fake is an engine that runs nothing. The zero value is ready to use.
type Fake struct {
	mu         sync.Mutex
	calls      []string
	containers []fakeContainer
	networks   map[string]map[string]string // name → labels
	volumes    map[string]map[string]string
	next       int
	// Fail, when set, is asked before each call ("RunContainer blog_web_1",
	// "CreateNetwork front", ...): a non-nil error fails that call.
	Fail func(call string) error
}

type fakeContainer struct {
	id, name string
	labels   map[string]string
	image    string
	running  bool
}

var _ reconcile.Engine = (*Fake)(nil)

func (f *Fake) record(call string) error {
	f.calls = append(f.calls, call)
	if f.Fail != nil {
		return f.Fail(call)
	}
	return nil
}

// Calls returns the calls made so far, one line each ("RunContainer blog_web_1").
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Count returns how many calls began with prefix ("RunContainer").
func (f *Fake) Count(prefix string) int {
	n := 0
	for _, c := range f.Calls() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// Observe returns what carries the scope's labels.
func (f *Fake) Observe(ctx context.Context, s reconcile.Scope) (reconcile.Observed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := func(l map[string]string) bool {
		return l[compose.LabelProject] == s.Project && (s.Site == "" || l[labels.SiteLabel] == s.Site)
	}
	var obs reconcile.Observed
	for _, c := range f.containers {
		if !in(c.labels) {
			continue
		}
		state := "exited"
		if c.running {
			state = "running"
		}
		obs.Containers = append(obs.Containers, reconcile.Container{ID: c.id, Name: c.name, Service: c.labels[compose.LabelService],
			Number: c.labels[compose.LabelNumber], Hash: c.labels[compose.LabelConfigHash], Image: c.image, State: state})
	}
	for _, names := range []struct {
		m   map[string]map[string]string
		out *[]string
	}{{f.networks, &obs.Networks}, {f.volumes, &obs.Volumes}} {
		for n, l := range names.m {
			if in(l) {
				*names.out = append(*names.out, n)
			}
		}
		slices.Sort(*names.out)
	}
	return obs, nil
}

// ForeignObjects names what carries the project label but not darse.site=project.
func (f *Fake) ForeignObjects(ctx context.Context, project string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.containers {
		if c.labels[compose.LabelProject] == project && c.labels[labels.SiteLabel] != project {
			out = append(out, "container "+c.name)
		}
	}
	for kind, m := range map[string]map[string]map[string]string{"network": f.networks, "volume": f.volumes} {
		for n, l := range m {
			if l[compose.LabelProject] == project && l[labels.SiteLabel] != project {
				out = append(out, kind+" "+n)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// CreateNetwork keeps the network.
func (f *Fake) CreateNetwork(ctx context.Context, n compose.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("CreateNetwork " + n.Name); err != nil {
		return err
	}
	if f.networks == nil {
		f.networks = map[string]map[string]string{}
	}
	f.networks[n.Name] = n.Labels
	return nil
}

// CreateVolume keeps the volume.
func (f *Fake) CreateVolume(ctx context.Context, v compose.Volume) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("CreateVolume " + v.Name); err != nil {
		return err
	}
	if f.volumes == nil {
		f.volumes = map[string]map[string]string{}
	}
	f.volumes[v.Name] = v.Labels
	return nil
}

// RunContainer keeps a running container with the service's labels.
func (f *Fake) RunContainer(ctx context.Context, name string, c compose.Container) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("RunContainer " + name); err != nil {
		return "", err
	}
	f.next++
	id := fmt.Sprintf("%064x", f.next)
	f.containers = append(f.containers, fakeContainer{id: id, name: name, labels: c.Labels, image: c.Image, running: true})
	return id, nil
}

func (f *Fake) container(call, id string, fn func(*fakeContainer)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.containers {
		if f.containers[i].id == id {
			if err := f.record(call + " " + f.containers[i].name); err != nil {
				return err
			}
			fn(&f.containers[i])
			return nil
		}
	}
	f.record(call + " " + id)
	return fmt.Errorf("no such container: %s", id)
}

// StartContainer marks the container running.
func (f *Fake) StartContainer(ctx context.Context, id string) error {
	return f.container("StartContainer", id, func(c *fakeContainer) { c.running = true })
}

// StopContainer marks the container stopped.
func (f *Fake) StopContainer(ctx context.Context, id string, timeout *int) error {
	return f.container("StopContainer", id, func(c *fakeContainer) { c.running = false })
}

// RestartContainer marks the container running.
func (f *Fake) RestartContainer(ctx context.Context, id string, timeout *int) error {
	return f.container("RestartContainer", id, func(c *fakeContainer) { c.running = true })
}

// RemoveContainer forgets the container.
func (f *Fake) RemoveContainer(ctx context.Context, id string, timeout *int) error {
	err := f.container("RemoveContainer", id, func(*fakeContainer) {})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers = slices.DeleteFunc(f.containers, func(c fakeContainer) bool { return c.id == id })
	return nil
}

// RemoveNetwork forgets the network.
func (f *Fake) RemoveNetwork(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("RemoveNetwork " + name); err != nil {
		return err
	}
	delete(f.networks, name)
	return nil
}

// RemoveVolume forgets the volume.
func (f *Fake) RemoveVolume(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("RemoveVolume " + name); err != nil {
		return err
	}
	delete(f.volumes, name)
	return nil
}

// Containers lists every container, as the panel's admin pages read them.
func (f *Fake) Containers(ctx context.Context) ([]engine.ContainerInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]engine.ContainerInfo, 0, len(f.containers))
	for _, c := range f.containers {
		state := "exited"
		if c.running {
			state = "running"
		}
		out = append(out, engine.ContainerInfo{ID: c.id, Name: c.name, Project: c.labels[compose.LabelProject], Site: c.labels[labels.SiteLabel],
			Service: c.labels[compose.LabelService], WorkingDir: c.labels[compose.LabelWorkingDir], Image: c.image, State: state})
	}
	return out, nil
}

// Logs returns one line naming the container.
func (f *Fake) Logs(ctx context.Context, id string, tail int) (string, error) {
	return "log of " + id + "\n", nil
}

// Usage reports nothing used.
func (f *Fake) Usage(ctx context.Context, id string) (engine.Usage, error) {
	return engine.Usage{}, nil
}
