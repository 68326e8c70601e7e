package engine

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/labels"
	"github.com/darse/darse/internal/reconcile"
)

// Observe lists the containers, networks and volumes of the scope (its
// compose project label, and its darse.site label for a site), one-off
// containers (docker-compose run) aside.
func (e *Engine) Observe(ctx context.Context, s reconcile.Scope) (reconcile.Observed, error) {
	var obs reconcile.Observed
	project := s.Project
	f := client.Filters{}.Add("label", compose.LabelProject+"="+project)
	if s.Site != "" {
		f = f.Add("label", labels.SiteLabel+"="+s.Site)
	}
	cs, err := e.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return obs, fmt.Errorf("list containers of %s: %w", project, err)
	}
	for _, c := range cs.Items {
		if c.Labels[compose.LabelOneOff] == "True" {
			continue
		}
		obs.Containers = append(obs.Containers, observed(c))
	}
	sort.Slice(obs.Containers, func(i, j int) bool { return obs.Containers[i].Name < obs.Containers[j].Name })
	ns, err := e.c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return obs, fmt.Errorf("list networks of %s: %w", project, err)
	}
	for _, n := range ns.Items {
		obs.Networks = append(obs.Networks, n.Name)
	}
	sort.Strings(obs.Networks)
	vs, err := e.c.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return obs, fmt.Errorf("list volumes of %s: %w", project, err)
	}
	for _, v := range vs.Items {
		obs.Volumes = append(obs.Volumes, v.Name)
	}
	sort.Strings(obs.Volumes)
	return obs, nil
}

// ForeignObjects names the containers, networks and volumes carrying the
// compose project label project but not darse.site=project.
func (e *Engine) ForeignObjects(ctx context.Context, project string) ([]string, error) {
	f := client.Filters{}.Add("label", compose.LabelProject+"="+project)
	var out []string
	foreign := func(kind, name string, l map[string]string) {
		if l[labels.SiteLabel] != project {
			out = append(out, kind+" "+strings.TrimPrefix(name, "/"))
		}
	}
	cs, err := e.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers of %s: %w", project, err)
	}
	for _, c := range cs.Items {
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = c.Names[0]
		}
		foreign("container", name, c.Labels)
	}
	ns, err := e.c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks of %s: %w", project, err)
	}
	for _, n := range ns.Items {
		foreign("network", n.Name, n.Labels)
	}
	vs, err := e.c.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list volumes of %s: %w", project, err)
	}
	for _, v := range vs.Items {
		foreign("volume", v.Name, v.Labels)
	}
	return out, nil
}

func observed(c container.Summary) reconcile.Container {
	o := reconcile.Container{
		ID:      c.ID,
		Service: c.Labels[compose.LabelService],
		Number:  c.Labels[compose.LabelNumber],
		Hash:    c.Labels[compose.LabelConfigHash],
		Image:   c.Image,
		ImageID: c.ImageID,
		State:   string(c.State),
		Health:  health(c),
	}
	if len(c.Names) > 0 {
		o.Name = strings.TrimPrefix(c.Names[0], "/")
	}
	if c.NetworkSettings != nil {
		o.Addresses = addresses(c.NetworkSettings.Networks)
	}
	return o
}

// addresses lists a container's addresses, one per network, by network.
func addresses(nets map[string]*network.EndpointSettings) []reconcile.Address {
	var out []reconcile.Address
	for name, ep := range nets {
		if ep == nil {
			continue
		}
		a := reconcile.Address{Network: name}
		if ep.IPAddress.IsValid() {
			a.IPv4 = ep.IPAddress.String()
		}
		if ep.GlobalIPv6Address.IsValid() {
			a.IPv6 = ep.GlobalIPv6Address.String()
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Network < out[j].Network })
	return out
}

// health reads the health state; API 1.41 only has it in the status text.
func health(c container.Summary) string {
	if c.Health != nil && c.Health.Status != "" {
		return string(c.Health.Status)
	}
	switch {
	case strings.Contains(c.Status, "(healthy)"):
		return "healthy"
	case strings.Contains(c.Status, "(unhealthy)"):
		return "unhealthy"
	case strings.Contains(c.Status, "(health: starting)"):
		return "starting"
	}
	return ""
}

// CreateNetwork creates a bridge network with the project's labels, unless
// one of that name exists. API 1.41 does not refuse duplicate names, and a
// create still in flight in the engine (its client killed) is not visible
// yet: duplicates found before or after are removed, the oldest kept.
func (e *Engine) CreateNetwork(ctx context.Context, n compose.Network) error {
	if found, err := e.dedupeNetwork(ctx, n.Name); err != nil || found {
		return err
	}
	opts := client.NetworkCreateOptions{Driver: "bridge", Internal: n.Internal, Labels: n.Labels, Options: n.Options}
	if n.EnableIPv6 {
		opts.EnableIPv6 = &n.EnableIPv6
	}
	if len(n.Subnets) > 0 {
		opts.IPAM = &network.IPAM{Driver: "default"}
		for _, s := range n.Subnets {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return fmt.Errorf("network %s: subnet %q: %w", n.Name, s, err)
			}
			opts.IPAM.Config = append(opts.IPAM.Config, network.IPAMConfig{Subnet: p})
		}
	}
	if _, err := e.c.NetworkCreate(ctx, n.Name, opts); err != nil && !errdefs.IsConflict(err) {
		// Another process (a site created at the same time) is making
		// it: with its fixed subnets, the engine answers that the pool
		// overlaps rather than that the name is taken, and may answer so
		// before that network is listed. Its creation is waited for.
		for deadline := time.Now().Add(10 * time.Second); ; {
			if found, ferr := e.dedupeNetwork(ctx, n.Name); ferr == nil && found {
				return nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	_, err := e.dedupeNetwork(ctx, n.Name)
	return err
}

// dedupeNetwork reports whether a network called name exists, removing
// all but the oldest when there are several.
func (e *Engine) dedupeNetwork(ctx context.Context, name string) (bool, error) {
	res, err := e.c.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", name)})
	if err != nil {
		return false, err
	}
	var same []network.Summary
	for _, n := range res.Items {
		if n.Name == name { // the filter matches substrings
			same = append(same, n)
		}
	}
	sort.Slice(same, func(i, j int) bool { return same[i].Created.Before(same[j].Created) })
	for _, dup := range same[min(1, len(same)):] {
		if _, err := e.c.NetworkRemove(ctx, dup.ID, client.NetworkRemoveOptions{}); err != nil && !errdefs.IsNotFound(err) {
			return true, fmt.Errorf("remove duplicate network %s (%s): %w", name, dup.ID[:12], err)
		}
	}
	return len(same) > 0, nil
}

// CreateVolume creates a named volume with the project's labels.
func (e *Engine) CreateVolume(ctx context.Context, v compose.Volume) error {
	_, err := e.c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: v.Name, Labels: v.Labels})
	return err
}

// RunContainer creates the container on its first network, attaches the
// others (API 1.41 takes one network at create), and starts it.
func (e *Engine) RunContainer(ctx context.Context, name string, c compose.Container) (string, error) {
	cfg, hc, nc, err := apiConfig(c)
	if err != nil {
		return "", err
	}
	res, err := e.c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc, NetworkingConfig: nc})
	if errdefs.IsNotFound(err) {
		return "", fmt.Errorf("image %s is not present in the engine (build it with `darse images build`): %w", c.Image, err)
	}
	if err != nil {
		return "", err
	}
	for _, a := range c.Networks[min(1, len(c.Networks)):] { // none with NetworkMode
		_, err := e.c.NetworkConnect(ctx, a.Network, client.NetworkConnectOptions{Container: res.ID,
			EndpointConfig: &network.EndpointSettings{Aliases: a.Aliases}})
		if err != nil {
			return res.ID, fmt.Errorf("attach to network %s: %w", a.Network, err)
		}
	}
	if _, err := e.c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return res.ID, fmt.Errorf("start: %w", err)
	}
	return res.ID, nil
}

func apiConfig(c compose.Container) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	cfg := &container.Config{
		Image:       c.Image,
		Entrypoint:  c.Entrypoint,
		Cmd:         c.Cmd,
		Env:         c.Env,
		Labels:      c.Labels,
		User:        c.User,
		WorkingDir:  c.WorkingDir,
		Hostname:    c.Hostname,
		StopSignal:  c.StopSignal,
		StopTimeout: c.StopTimeout,
	}
	if h := c.Healthcheck; h != nil {
		cfg.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
	hc := &container.HostConfig{
		ReadonlyRootfs: c.ReadOnly,
		CapAdd:         c.CapAdd,
		CapDrop:        c.CapDrop,
		SecurityOpt:    c.SecurityOpt,
		Tmpfs:          c.Tmpfs,
		Init:           c.Init,
		RestartPolicy:  restartPolicy(c.Restart),
		ExtraHosts:     c.ExtraHosts,
	}
	hc.NanoCPUs = c.NanoCPUs
	hc.Memory = c.Memory
	if c.PidsLimit != 0 {
		hc.PidsLimit = &c.PidsLimit
	}
	for _, m := range c.Mounts {
		var mt mount.Type
		switch m.Type {
		case "bind":
			mt = mount.TypeBind
		case "volume":
			mt = mount.TypeVolume
		default: // compose loads only these two; anything else is not guessed at
			return nil, nil, nil, fmt.Errorf("mount %s: type %q is not supported", m.Target, m.Type)
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mt, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	if len(c.ExposedPorts)+len(c.Ports) > 0 {
		cfg.ExposedPorts = network.PortSet{}
	}
	for _, p := range c.ExposedPorts {
		port, err := network.ParsePort(p)
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.ExposedPorts[port] = struct{}{}
	}
	for _, p := range c.Ports {
		port, err := network.ParsePort(fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol))
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.ExposedPorts[port] = struct{}{}
		b := network.PortBinding{HostPort: p.HostPort}
		if p.HostIP != "" {
			ip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("port host ip %q: %w", p.HostIP, err)
			}
			b.HostIP = ip
		}
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], b)
	}
	nc := &network.NetworkingConfig{}
	if c.NetworkMode != "" {
		hc.NetworkMode = container.NetworkMode(c.NetworkMode)
	} else if len(c.Networks) > 0 {
		a := c.Networks[0]
		hc.NetworkMode = container.NetworkMode(a.Network)
		nc.EndpointsConfig = map[string]*network.EndpointSettings{a.Network: {Aliases: a.Aliases}}
	}
	return cfg, hc, nc, nil
}

func restartPolicy(s string) container.RestartPolicy {
	name, count, _ := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if count != "" {
		fmt.Sscan(count, &p.MaximumRetryCount)
	}
	return p
}

// StartContainer starts an existing container.
func (e *Engine) StartContainer(ctx context.Context, id string) error {
	_, err := e.c.ContainerStart(ctx, id, client.ContainerStartOptions{})
	return err
}

// StopContainer stops a container, waiting timeout seconds (nil: its own
// default) before killing it.
func (e *Engine) StopContainer(ctx context.Context, id string, timeout *int) error {
	_, err := e.c.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: timeout})
	return err
}

// RestartContainer restarts a container.
func (e *Engine) RestartContainer(ctx context.Context, id string, timeout *int) error {
	_, err := e.c.ContainerRestart(ctx, id, client.ContainerRestartOptions{Timeout: timeout})
	return err
}

// RemoveContainer stops a container gracefully, then removes it; one
// already gone is fine.
func (e *Engine) RemoveContainer(ctx context.Context, id string, timeout *int) error {
	if _, err := e.c.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: timeout}); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	_, err := e.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// RemoveNetwork removes a network; one already gone is fine.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	_, err := e.c.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// RemoveVolume removes a volume; one already gone is fine.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	_, err := e.c.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// ContainerPID returns the host PID of a running container's process, or 0
// when the container is missing or not running.
func (e *Engine) ContainerPID(ctx context.Context, name string) (int, error) {
	res, err := e.c.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if errdefs.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if res.Container.State == nil || !res.Container.State.Running {
		return 0, nil
	}
	return res.Container.State.Pid, nil
}

// NetworkSubnets returns the subnets of a network, IPv4 and IPv6.
func (e *Engine) NetworkSubnets(ctx context.Context, name string) ([]string, error) {
	res, err := e.c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range res.Network.IPAM.Config {
		if c.Subnet.IsValid() {
			out = append(out, c.Subnet.String())
		}
	}
	return out, nil
}
