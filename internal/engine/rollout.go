package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/reconcile"
)

// PauseContainer freezes a container's processes: what it was sent waits,
// nothing is lost, and Traefik no longer routes to it (it routes to
// running containers only) from its next reading of the engine on.
func (e *Engine) PauseContainer(ctx context.Context, id string) error {
	if _, err := e.c.ContainerPause(ctx, id, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("pause %s: %w", short(id), err)
	}
	return nil
}

// UnpauseContainer lets a paused container run again.
func (e *Engine) UnpauseContainer(ctx context.Context, id string) error {
	if _, err := e.c.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("unpause %s: %w", short(id), err)
	}
	return nil
}

// DisconnectNetwork takes a container off a network (paused or not): the
// front door then finds no address of it to route to.
func (e *Engine) DisconnectNetwork(ctx context.Context, network, id string) error {
	if _, err := e.c.NetworkDisconnect(ctx, network, client.NetworkDisconnectOptions{Container: id, Force: true}); err != nil {
		return fmt.Errorf("disconnect %s from %s: %w", short(id), network, err)
	}
	return nil
}

// InspectContainer reads one container's state, health, image and
// addresses as Observe lists them.
func (e *Engine) InspectContainer(ctx context.Context, id string) (reconcile.Container, error) {
	res, err := e.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return reconcile.Container{}, fmt.Errorf("inspect %s: %w", short(id), err)
	}
	r := res.Container
	c := reconcile.Container{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), ImageID: r.Image}
	if r.Config != nil {
		c.Service, c.Number = r.Config.Labels[compose.LabelService], r.Config.Labels[compose.LabelNumber]
		c.Hash, c.Image = r.Config.Labels[compose.LabelConfigHash], r.Config.Image
	}
	if s := r.State; s != nil {
		c.State = string(s.Status)
		if s.Health != nil {
			c.Health = string(s.Health.Status)
		}
	}
	if r.NetworkSettings != nil {
		c.Addresses = addresses(r.NetworkSettings.Networks)
	}
	return c, nil
}

// NudgeLabel marks the throwaway containers Nudge runs.
const NudgeLabel = "darse.nudge"

// Nudge runs and removes a throwaway container of image (cmd, `true` by
// default; no network, no capability): its start and die events make Traefik's Docker
// provider read the engine again, which it does on nothing else a rollout
// does (pausing a container is not such an event).
func (e *Engine) Nudge(ctx context.Context, image string, cmd ...string) error {
	if len(cmd) == 0 {
		cmd = []string{"true"}
	}
	cfg := &container.Config{Image: image, Entrypoint: cmd, Cmd: nil, User: "65534:65534",
		Labels: map[string]string{NudgeLabel: "true"}}
	hc := &container.HostConfig{NetworkMode: "none", ReadonlyRootfs: true, CapDrop: []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges:true"}, AutoRemove: true}
	hc.Memory = 16 << 20
	res, err := e.c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc})
	if err != nil {
		return fmt.Errorf("nudge: create from %s: %w", image, err)
	}
	// Waited on before it starts, as `docker run --rm` does: a wait asked
	// while the engine removes it may never return. Bounded all the same:
	// once started, its start and its die make the events wanted.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	wait := e.c.ContainerWait(wctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	if _, err := e.c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		e.c.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
		return fmt.Errorf("nudge: start: %w", err)
	}
	select {
	case <-wait.Result:
	case err := <-wait.Error:
		if err != nil && !errdefs.IsNotFound(err) && wctx.Err() == nil {
			return fmt.Errorf("nudge: wait: %w", err)
		}
	}
	return ctx.Err()
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

var _ reconcile.RollEngine = (*Engine)(nil)
