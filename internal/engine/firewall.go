package engine

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/darse/darse/internal/firewall"
)

// FirewallSource is what the firewall watcher reads from the engine:
// running containers, bridge networks and their events. With a label
// (KEY or KEY=VALUE) it only sees containers and networks carrying it, so
// that tests and benchmarks can run a watcher beside others on one engine.
type FirewallSource struct {
	e     *Engine
	label string
}

// Firewall returns the watcher's view of the engine, limited to label
// when it is not empty.
func (e *Engine) Firewall(label string) *FirewallSource {
	return &FirewallSource{e: e, label: label}
}

func (s *FirewallSource) filters() client.Filters {
	f := client.Filters{}
	if s.label != "" {
		f = f.Add("label", s.label)
	}
	return f
}

// Snapshot lists the running (or paused) containers and the bridge
// networks.
func (s *FirewallSource) Snapshot(ctx context.Context) (firewall.State, error) {
	var st firewall.State
	cs, err := s.e.c.ContainerList(ctx, client.ContainerListOptions{Filters: s.filters().Add("status", "running", "paused")})
	if err != nil {
		return st, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.Items {
		st.Containers = append(st.Containers, fwContainerFromSummary(c))
	}
	sort.Slice(st.Containers, func(i, j int) bool { return st.Containers[i].ID < st.Containers[j].ID })
	st.Networks, err = s.Networks(ctx)
	return st, err
}

// Networks lists the bridge networks: with a label, those carrying it, and
// every isolated one marked IsolationOnly (a watcher limited to some
// containers still keeps the tenants of a shared network apart, over IPv6
// too, and leaves that network's other traffic to its own watcher).
func (s *FirewallSource) Networks(ctx context.Context) ([]firewall.Network, error) {
	ns, err := s.e.c.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("driver", "bridge")})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []firewall.Network
	for _, n := range ns.Items {
		fn := fwNetwork(n.Network)
		if !hasLabel(n.Labels, s.label) {
			if !fn.Isolated {
				continue
			}
			fn.IsolationOnly = true
		}
		out = append(out, fn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Container inspects one container. ok is false when it is gone, stopped
// or outside the source's label.
func (s *FirewallSource) Container(ctx context.Context, id string) (c firewall.Container, ok bool, err error) {
	res, err := s.e.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if errdefs.IsNotFound(err) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("inspect container %s: %w", id, err)
	}
	r := res.Container
	if r.State == nil || !r.State.Running || r.Config == nil || !hasLabel(r.Config.Labels, s.label) {
		return c, false, nil
	}
	return fwContainerFromInspect(r), true, nil
}

func hasLabel(l map[string]string, filter string) bool {
	if filter == "" {
		return true
	}
	k, v, withValue := strings.Cut(filter, "=")
	got, ok := l[k]
	return ok && (!withValue || got == v)
}

func fwContainerFromSummary(c container.Summary) firewall.Container {
	fc := firewall.Container{ID: c.ID, Labels: c.Labels, Created: time.Unix(c.Created, 0).UTC()}
	if len(c.Names) > 0 {
		fc.Name = strings.TrimPrefix(c.Names[0], "/")
	}
	if c.HostConfig.NetworkMode == "host" {
		fc.Endpoints = []firewall.Endpoint{{Network: "host"}}
	} else if c.NetworkSettings != nil {
		fc.Endpoints = fwEndpoints(c.NetworkSettings.Networks)
	}
	for _, p := range c.Ports {
		if p.PublicPort == 0 {
			continue
		}
		fc.Published = append(fc.Published, firewall.Published{Protocol: string(p.Type), Port: int(p.PrivatePort), HostIP: p.IP, HostPort: int(p.PublicPort)})
	}
	sortPublished(fc.Published)
	return fc
}

func fwContainerFromInspect(r container.InspectResponse) firewall.Container {
	fc := firewall.Container{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), Labels: r.Config.Labels}
	// Seconds, as the container list gives them: both views order claims
	// alike.
	if t, err := time.Parse(time.RFC3339Nano, r.Created); err == nil {
		fc.Created = t.Truncate(time.Second).UTC()
	}
	if r.HostConfig != nil && r.HostConfig.NetworkMode == "host" {
		fc.Endpoints = []firewall.Endpoint{{Network: "host"}}
	} else if r.NetworkSettings != nil {
		fc.Endpoints = fwEndpoints(r.NetworkSettings.Networks)
	}
	if r.NetworkSettings != nil {
		for port, bindings := range r.NetworkSettings.Ports {
			for _, b := range bindings {
				var hp int
				if _, err := fmt.Sscan(b.HostPort, &hp); err != nil || hp == 0 {
					continue
				}
				fc.Published = append(fc.Published, firewall.Published{Protocol: string(port.Proto()), Port: int(port.Num()), HostIP: b.HostIP, HostPort: hp})
			}
		}
	}
	sortPublished(fc.Published)
	return fc
}

func fwEndpoints(nets map[string]*network.EndpointSettings) []firewall.Endpoint {
	var out []firewall.Endpoint
	for name, ep := range nets {
		if ep == nil {
			continue
		}
		out = append(out, firewall.Endpoint{Network: name, IPv4: ep.IPAddress, IPv6: ep.GlobalIPv6Address, MAC: net.HardwareAddr(ep.MacAddress).String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Network < out[j].Network })
	return out
}

func sortPublished(ps []firewall.Published) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if a.HostPort != b.HostPort {
			return a.HostPort < b.HostPort
		}
		return a.HostIP.Less(b.HostIP)
	})
}

func fwNetwork(n network.Network) firewall.Network {
	fn := firewall.Network{Name: n.Name, Bridge: n.Options["com.docker.network.bridge.name"],
		Isolated: n.Options["com.docker.network.bridge.enable_icc"] == "false"}
	if fn.Bridge == "" && len(n.ID) >= 12 {
		fn.Bridge = "br-" + n.ID[:12]
	}
	for _, c := range n.IPAM.Config {
		if c.Subnet.IsValid() {
			fn.Subnets = append(fn.Subnets, c.Subnet)
		}
	}
	sort.Slice(fn.Subnets, func(i, j int) bool { return fn.Subnets[i].Addr().Less(fn.Subnets[j].Addr()) })
	return fn
}
