package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darse/darse/internal/compose"
)

// routedProject is project() with web routed by Traefik.
func routedProject() *compose.Project {
	p := project()
	p.Services[1].Container.Labels = map[string]string{"traefik.enable": "true", compose.LabelNumber: "1"}
	return p
}

func TestRolloutPlans(t *testing.T) {
	stale := Observed{
		Containers: []Container{withImage(running("php", "h-php"), "sha256:php-old"), withImage(running("web", "h-web"), "sha256:web-old")},
		Networks:   []string{"blog_default"}, Volumes: []string{"blog_db"},
		Images: map[string]string{"darse/php-fpm:8.2-bookworm": "sha256:php-new", "darse/nginx:bookworm": "sha256:web-new"},
	}
	stopped := stale
	stopped.Containers = []Container{stale.Containers[0], {ID: "id-web", Name: "blog_web_1", Service: "web", Number: "1", Hash: "old", State: "exited"}}
	withPorts := routedProject()
	withPorts.Services[1].Container.Ports = []compose.Port{{HostPort: "8080", ContainerPort: 8080, Protocol: "tcp"}}
	second := stale
	second.Containers = []Container{stale.Containers[0], withImage(running("web", "h-web"), "sha256:web-old")}
	second.Containers[1].Name, second.Containers[1].Number = "blog_web_2", "2"

	for _, c := range []struct {
		name string
		plan Plan
	}{
		// php (not routed) is recreated in place; web blue/green.
		{"rollout-images-changed", Rollout(routedProject(), stale)},
		// After a rollout web runs as number 2: the next one goes back to 1.
		{"rollout-from-second", Rollout(routedProject(), second)},
		// Nothing runs to be kept serving, or two containers could not
		// bind the same host port: recreated in place.
		{"rollout-stopped-web", Rollout(routedProject(), stopped)},
		{"rollout-host-port", Rollout(withPorts, stale)},
	} {
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
	converged := stale
	converged.Images = nil
	converged.Containers = []Container{running("php", "h-php"), running("web", "h-web")}
	if p := Rollout(routedProject(), converged); len(p) != 0 {
		t.Errorf("rollout of a converged project:\n%s", p)
	}

}

// rollFake is an engine and a front door in memory. The front door routes
// what was running and not paused when it last read the engine, which it
// does on Refresh and when a container starts, as Traefik does.
type rollFake struct {
	mu      sync.Mutex
	calls   []string
	cs      map[string]*Container
	routed  map[string]bool
	paused  map[string]bool
	failNew bool // new containers exit at once
	next    int
	// rereadAt, when set, has the front door read the engine at that
	// InspectContainer call: another container started meanwhile.
	rereadAt, inspects int
}

func newRollFake(cs ...Container) *rollFake {
	f := &rollFake{cs: map[string]*Container{}, routed: map[string]bool{}, paused: map[string]bool{}}
	for i := range cs {
		c := cs[i]
		f.cs[c.ID] = &c
	}
	f.read()
	return f
}

func (f *rollFake) call(s string) { f.calls = append(f.calls, s) }

// read is the front door reading the engine.
func (f *rollFake) read() {
	f.routed = map[string]bool{}
	for id, c := range f.cs {
		f.routed[id] = c.Running() && !f.paused[id]
	}
}

func (f *rollFake) Observe(context.Context, Scope) (Observed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var obs Observed
	for _, c := range f.cs {
		obs.Containers = append(obs.Containers, *c)
	}
	slices.SortFunc(obs.Containers, func(a, b Container) int { return strings.Compare(a.Name, b.Name) })
	obs.Networks, obs.Volumes = []string{"blog_default"}, []string{"blog_db"}
	return obs, nil
}
func (f *rollFake) ImageIDs(context.Context, []string) (map[string]string, error) {
	return map[string]string{"darse/php-fpm:8.2-bookworm": "sha256:php", "darse/nginx:bookworm": "sha256:web-new"}, nil
}
func (f *rollFake) CreateNetwork(context.Context, compose.Network) error { return nil }
func (f *rollFake) CreateVolume(context.Context, compose.Volume) error   { return nil }
func (f *rollFake) RunContainer(_ context.Context, name string, c compose.Container) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("run " + name + " number " + c.Labels[compose.LabelNumber])
	f.next++
	id := fmt.Sprintf("new-%d", f.next)
	state := "running"
	if f.failNew {
		state = "exited"
	}
	f.cs[id] = &Container{ID: id, Name: name, Service: c.Labels[compose.LabelService], State: state, ImageID: "sha256:web-new"}
	f.read()
	return id, nil
}
func (f *rollFake) StartContainer(context.Context, string) error         { return nil }
func (f *rollFake) StopContainer(context.Context, string, *int) error    { return nil }
func (f *rollFake) RestartContainer(context.Context, string, *int) error { return nil }
func (f *rollFake) RemoveNetwork(context.Context, string) error          { return nil }
func (f *rollFake) RemoveVolume(context.Context, string) error           { return nil }
func (f *rollFake) InspectContainer(_ context.Context, id string) (Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inspects++; f.inspects == f.rereadAt {
		f.read()
	}
	c, ok := f.cs[id]
	if !ok {
		return Container{}, errors.New("no such container")
	}
	return *c, nil
}
func (f *rollFake) RemoveContainer(_ context.Context, id string, _ *int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.routed[id] {
		f.call("REFUSED: removed " + f.cs[id].Name + " while routed")
	}
	f.call("remove " + f.cs[id].Name)
	delete(f.cs, id)
	return nil
}
func (f *rollFake) DisconnectNetwork(_ context.Context, network, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("disconnect " + f.cs[id].Name + " from " + network)
	return nil
}
func (f *rollFake) PauseContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("pause " + f.cs[id].Name)
	f.paused[id] = true
	f.cs[id].State = "paused"
	return nil
}
func (f *rollFake) UnpauseContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("unpause " + f.cs[id].Name)
	f.paused[id] = false
	f.cs[id].State = "running"
	return nil
}
func (f *rollFake) Routes(_ context.Context, _ compose.Service, c Container) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.routed[c.ID], nil
}
func (f *rollFake) Refresh(context.Context, compose.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("refresh")
	f.read()
	return nil
}

var fastRoll = RollOptions{Ready: time.Second, Unroute: time.Second, Drain: time.Millisecond, Poll: time.Millisecond}

func TestRollReplacesWebWithoutGap(t *testing.T) {
	f := newRollFake(withImage(running("php", "h-php"), "sha256:php"), withImage(running("web", "h-web"), "sha256:web-old"))
	f.cs["id-web"].Number = "1"
	f.cs["id-web"].Addresses = []Address{{Network: "front", IPv4: "172.30.0.2"}, {Network: "blog_default", IPv4: "172.31.0.2"}}
	plan, err := Roll(context.Background(), slog.New(slog.DiscardHandler), f, f, Scope{Project: "blog"}, routedProject(), fastRoll)
	if err != nil {
		t.Fatal(err)
	}
	// Drained, then paused again and unrouted: it goes paused, with no
	// address the front door could route to as the engine kills it.
	want := []string{"run blog_web_2 number 2", "pause blog_web_1", "refresh", "unpause blog_web_1", "pause blog_web_1", "refresh",
		"disconnect blog_web_1 from front", "disconnect blog_web_1 from blog_default", "unpause blog_web_1", "remove blog_web_1"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s\nplan:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"), plan)
	}
	if len(f.cs) != 2 || !f.routed["new-1"] {
		t.Errorf("left %v, routed %v", f.cs, f.routed)
	}
}

func TestRollLeavesOldWhenNewFails(t *testing.T) {
	f := newRollFake(withImage(running("php", "h-php"), "sha256:php"), withImage(running("web", "h-web"), "sha256:web-old"))
	f.failNew = true
	_, err := Roll(context.Background(), slog.New(slog.DiscardHandler), f, f, Scope{Project: "blog"}, routedProject(), fastRoll)
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
	want := []string{"run blog_web_2 number 2", "remove blog_web_2"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls %q, want %q", f.calls, want)
	}
	if c := f.cs["id-web"]; c == nil || !c.Running() || !f.routed["id-web"] {
		t.Errorf("the old container does not serve any more: %+v", c)
	}
}

// cutShort is what a rollout killed during its drain leaves: the old web
// container paused (unrouted), the new one beside it, current.
func cutShort(newState string) *rollFake {
	old := withImage(running("web", "h-web"), "sha256:web-old")
	old.Number, old.State = "1", "paused"
	nw := withImage(running("web", "h-web"), "sha256:web-new")
	nw.ID, nw.Name, nw.Number, nw.State = "id-web2", "blog_web_2", "2", newState
	f := newRollFake(withImage(running("php", "h-php"), "sha256:php"), old, nw)
	f.paused["id-web"] = true
	f.read()
	return f
}

func TestSettleFinishesACutShortRollout(t *testing.T) {
	f := cutShort("running")
	plan, err := Settle(context.Background(), slog.New(slog.DiscardHandler), f, f, Scope{Project: "blog"}, routedProject(), fastRoll)
	if err != nil {
		t.Fatal(err)
	}
	// The old one answers what waited in it, unrouted, before it goes.
	want := []string{"unpause blog_web_1", "pause blog_web_1", "refresh", "unpause blog_web_1", "pause blog_web_1", "refresh", "unpause blog_web_1", "remove blog_web_1", "refresh"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s\nplan:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"), plan)
	}
	if _, old := f.cs["id-web"]; old || !f.routed["id-web2"] {
		t.Errorf("left %v, routed %v", f.cs, f.routed)
	}
	// Settled, Roll has nothing left to do.
	f.calls = nil
	if plan, err := Roll(context.Background(), slog.New(slog.DiscardHandler), f, f, Scope{Project: "blog"}, routedProject(), fastRoll); err != nil || len(plan) != 0 {
		t.Errorf("roll after settle: %v\n%s", err, plan)
	}
}

func TestSettleKeepsTheOldWhenTheNewIsNotReady(t *testing.T) {
	f := cutShort("created") // killed between its creation and its start
	plan, err := Settle(context.Background(), slog.New(slog.DiscardHandler), f, f, Scope{Project: "blog"}, routedProject(), fastRoll)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"unpause blog_web_1", "remove blog_web_2", "refresh"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls %q, want %q\nplan:\n%s", f.calls, want, plan)
	}
	if c := f.cs["id-web"]; c == nil || !c.Running() || !f.routed["id-web"] {
		t.Fatalf("the old container does not serve: %+v", c)
	}
	// Then Roll replaces it again, blue/green.
	f.calls = nil
	if _, err := Roll(context.Background(), slog.New(slog.DiscardHandler), f, f, Scope{Project: "blog"}, routedProject(), fastRoll); err != nil {
		t.Fatal(err)
	}
	want = []string{"run blog_web_2 number 2", "pause blog_web_1", "refresh", "unpause blog_web_1", "pause blog_web_1", "refresh", "unpause blog_web_1", "remove blog_web_1"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("roll after settle: calls %q, want %q", f.calls, want)
	}
}

func TestDrainAgainWhenRoutedAgain(t *testing.T) {
	f := newRollFake(withImage(running("php", "h-php"), "sha256:php"), withImage(running("web", "h-web"), "sha256:web-old"))
	f.cs["id-web"].Number = "1"
	// Inspections: the new one ready (1), the old one unrouted (2), then
	// watched while it drains (3): the front door routes it again there.
	f.rereadAt = 3
	plan, err := Roll(context.Background(), slog.New(slog.DiscardHandler), f, f, Scope{Project: "blog"}, routedProject(), fastRoll)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"run blog_web_2 number 2", "pause blog_web_1", "refresh", "unpause blog_web_1",
		"pause blog_web_1", "refresh", "unpause blog_web_1", // it may have been sent requests: it answers them
		"pause blog_web_1", "refresh", "unpause blog_web_1", "remove blog_web_1"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s\nplan:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"), plan)
	}
}

func TestARoundDrainsTogether(t *testing.T) {
	a, b := running("a", "h-a"), running("b", "h-b")
	f := newRollFake(a, b)
	ro := roller{e: f, r: f, log: slog.New(slog.DiscardHandler), opts: fastRoll.withDefaults()}
	batch := []*drainReq{
		{step: Step{Kind: DrainContainer, Target: a.Name, ID: a.ID}, done: make(chan error, 1), sent: true},
		{step: Step{Kind: DrainContainer, Target: b.Name, ID: b.ID}, done: make(chan error, 1), sent: true},
	}
	ro.round(context.Background(), batch)
	for _, q := range batch {
		if err := <-q.done; err != nil {
			t.Errorf("%s: %v", q.step.Target, err)
		}
	}
	// One refresh unroutes both, each time.
	want := []string{"pause blog_a_1", "pause blog_b_1", "refresh", "unpause blog_a_1", "unpause blog_b_1",
		"pause blog_a_1", "pause blog_b_1", "refresh", "unpause blog_a_1", "remove blog_a_1", "unpause blog_b_1", "remove blog_b_1"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	if len(f.cs) != 0 {
		t.Errorf("left %v", f.cs)
	}
}

func TestRollLeavesAStoppedSiteStopped(t *testing.T) {
	php, web := withImage(running("php", "h-php"), "sha256:php"), withImage(running("web", "h-web"), "sha256:web-old")
	php.State, web.State = "exited", "exited"
	f := newRollFake(php, web)
	opts := fastRoll
	opts.LeaveStopped = true
	if plan, err := Roll(context.Background(), slog.New(slog.DiscardHandler), f, f, Scope{Project: "blog"}, routedProject(), opts); err != nil || len(plan) != 0 || len(f.calls) != 0 {
		t.Errorf("rollout of a stopped site: %v, calls %q\n%s", err, f.calls, plan)
	}
	// Without it (the platform's panel), what is stopped is brought up.
	if plan := Rollout(routedProject(), Observed{Containers: []Container{php, web}}); len(plan) == 0 {
		t.Error("rollout plans nothing for a stopped project")
	}
}
