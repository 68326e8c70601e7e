// Package firewall turns what the Docker engine runs into darse's
// nftables ruleset, and keeps it applied (the darse-fw daemon).
//
// The core is pure: Build takes the running containers and the networks
// (State) and returns the ruleset with the reasons any exposure was
// refused; it is tested with golden files. The Watcher is the daemon
// around it: it follows the engine's events, debounces them, resyncs
// fully at start, after every reconnect and periodically, and applies
// only a changed ruleset, retrying with backoff when the kernel refuses.
//
// A container exposes ports by darse.expose.* labels (see
// labels.Exposure) and, outside hosted sites, by the ports Docker
// publishes for it (compose `ports:`). A hosted site's containers
// (tenants) are also kept from the host and from link-local and
// management addresses (see egress.go).
package firewall

import (
	"net"
	"net/netip"
	"time"
)

// State is what the ruleset is computed from: running containers and the
// bridge networks they use.
type State struct {
	Containers []Container `json:"containers"`
	Networks   []Network   `json:"networks"`
}

// Container is a running container, as far as the firewall cares.
type Container struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Created orders claims on a host port: the earlier container keeps it.
	Created   time.Time         `json:"created"`
	Labels    map[string]string `json:"labels,omitempty"`
	Endpoints []Endpoint        `json:"endpoints,omitempty"`
	// Published lists the ports Docker publishes for the container
	// (compose `ports:`), one entry per host binding.
	Published []Published `json:"published,omitempty"`
}

// Endpoint is a container's attachment to a network.
type Endpoint struct {
	Network string     `json:"network"`
	IPv4    netip.Addr `json:"ipv4,omitzero"`
	IPv6    netip.Addr `json:"ipv6,omitzero"`
	// MAC is the endpoint's hardware address: its IPv6 link-local address
	// (EUI-64, as Docker's containers make it) is derived from it.
	MAC string `json:"mac,omitempty"`
}

// LinkLocal is the EUI-64 IPv6 link-local address of the endpoint's MAC,
// the source of its traffic to link-local destinations; invalid without a MAC.
func (e Endpoint) LinkLocal() netip.Addr {
	m, err := net.ParseMAC(e.MAC)
	if err != nil || len(m) != 6 {
		return netip.Addr{}
	}
	return netip.AddrFrom16([16]byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]})
}

// Published is one host binding Docker made for a container port.
type Published struct {
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
	// HostIP is the bound host address; 0.0.0.0 or :: for all addresses
	// of the family.
	HostIP   netip.Addr `json:"hostip,omitzero"`
	HostPort int        `json:"hostport"`
}

// Network is a bridge network of the engine.
type Network struct {
	Name string `json:"name"`
	// Bridge is the host interface of the network (br-<id>, docker0).
	Bridge  string         `json:"bridge"`
	Subnets []netip.Prefix `json:"subnets,omitempty"`
	// Isolated networks keep their containers from one another
	// (inter-container communication off, as darse's front network):
	// Docker enforces it for IPv4 only, the watcher for both families.
	Isolated bool `json:"isolated,omitempty"`
	// IsolationOnly: the watcher is limited to a label this isolated
	// network lacks (tests, benchmarks). It keeps the network's containers
	// apart and leaves the rest of its traffic to the watcher that owns it.
	IsolationOnly bool `json:"isolation_only,omitempty"`
}
