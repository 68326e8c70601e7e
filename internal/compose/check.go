package compose

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// Policy says what a project may ask of the engine beyond the keys darse
// implements. Tenant sites get TenantPolicy; the platform's own projects
// (core/, apps/) get PlatformPolicy.
type Policy struct {
	Name string
	// Host-level powers: host network, published ports, binds outside the
	// project folder, any capability.
	HostAccess bool
	// LockedDown requires cap_drop ALL, no-new-privileges and CPU, memory
	// and pids limits on every service.
	LockedDown bool
	// CapAdd lists the capabilities a service may add back when HostAccess is false.
	CapAdd []string
	// ExternalNetworks lists the external networks a service may join
	// when HostAccess is false.
	ExternalNetworks []string
}

// FrontNetwork is the shared network Traefik reaches every site's web
// service on; containers on it cannot reach each other.
const FrontNetwork = "front"

var (
	// TenantPolicy is for members' sites: locked down, only their own folder mounted.
	TenantPolicy = Policy{Name: "tenant", LockedDown: true,
		CapAdd:           []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID", "NET_BIND_SERVICE"},
		ExternalNetworks: []string{FrontNetwork}}
	// PlatformPolicy is for darse's own projects, which need the host (Traefik, the firewall).
	PlatformPolicy = Policy{Name: "platform", HostAccess: true}
)

// supported lists the compose keys darse implements, as paths: a key
// followed by "." may hold the sub-keys listed under it. Anything else set
// in a project is refused, never silently ignored.
var supported = map[string]bool{
	"name": true, "image": true, "command": true, "entrypoint": true, "environment": true,
	"labels": true, "user": true, "working_dir": true, "hostname": true, "read_only": true,
	"cap_add": true, "cap_drop": true, "security_opt": true, "cpus": true, "mem_limit": true,
	"pids_limit": true, "restart": true, "init": true, "tmpfs": true, "stop_signal": true,
	"stop_grace_period": true, "depends_on": true, "expose": true, "env_file": true, "network_mode": true,
	"healthcheck.": true, "healthcheck.test": true, "healthcheck.interval": true, "healthcheck.timeout": true,
	"healthcheck.retries": true, "healthcheck.start_period": true, "healthcheck.disable": true,
	"volumes.": true, "volumes.type": true, "volumes.source": true, "volumes.target": true, "volumes.read_only": true,
	"volumes.bind.": true, "volumes.bind.create_host_path": true,
	"networks.": true, "networks.aliases": true,
	"ports.": true, "ports.target": true, "ports.published": true, "ports.host_ip": true, "ports.protocol": true, "ports.mode": true,
	"profiles":             true,
	"depends_on.condition": true, "depends_on.required": true, "depends_on.restart": true,
}

var supportedNetwork = map[string]bool{
	"name": true, "driver": true, "driver_opts": true, "external": true, "internal": true, "enable_ipv6": true, "labels": true,
	"ipam.": true, "ipam.config.": true, "ipam.config.subnet": true, "ipam.config.gateway": true,
}

var supportedVolume = map[string]bool{"name": true, "external": true, "labels": true}

// Check refuses keys darse does not implement and what the policy forbids.
func Check(p *types.Project, pol Policy) error {
	for _, key := range []struct {
		name string
		set  bool
	}{{"secrets", len(p.Secrets) > 0}, {"configs", len(p.Configs) > 0}, {"models", len(p.Models) > 0}} {
		if key.set {
			return fmt.Errorf("top-level key %q is not supported by darse", key.name)
		}
	}
	for _, name := range sortedKeys(p.Networks) {
		if bad := unsupported(reflect.ValueOf(p.Networks[name]), "", supportedNetwork); len(bad) > 0 {
			return fmt.Errorf("network %s: key %q is not supported by darse", name, bad[0])
		}
		if d := p.Networks[name].Driver; d != "" && d != "bridge" {
			return fmt.Errorf("network %s: driver %q is not supported by darse (only bridge)", name, d)
		}
	}
	for _, name := range sortedKeys(p.Volumes) {
		if bad := unsupported(reflect.ValueOf(p.Volumes[name]), "", supportedVolume); len(bad) > 0 {
			return fmt.Errorf("volume %s: key %q is not supported by darse", name, bad[0])
		}
	}
	for _, name := range sortedKeys(p.Services) {
		s := p.Services[name]
		if bad := unsupported(reflect.ValueOf(s), "", supported); len(bad) > 0 {
			return fmt.Errorf("service %s: key %q is not supported by darse", name, bad[0])
		}
		if err := checkPolicy(p, s, pol); err != nil {
			return fmt.Errorf("service %s: %w (%s policy)", name, err, pol.Name)
		}
	}
	return nil
}

// unsupported walks a compose-go struct and returns the yaml paths of the
// fields that are set but not allowed.
func unsupported(v reflect.Value, prefix string, allowed map[string]bool) []string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	var bad []string
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			bad = append(bad, unsupported(fv, prefix, allowed)...)
			continue
		}
		if name == "" || name == "-" || strings.HasPrefix(name, "#") || fv.IsZero() {
			continue
		}
		path := prefix + name
		if allowed[path] {
			continue
		}
		if !allowed[path+"."] {
			bad = append(bad, path)
			continue
		}
		// A nested key: check each element's fields.
		switch fv.Kind() {
		case reflect.Slice, reflect.Array:
			for j := 0; j < fv.Len(); j++ {
				bad = append(bad, nested(fv.Index(j), path+".", allowed)...)
			}
		case reflect.Map:
			for _, k := range fv.MapKeys() {
				bad = append(bad, nested(fv.MapIndex(k), path+".", allowed)...)
			}
		default:
			bad = append(bad, nested(fv, path+".", allowed)...)
		}
	}
	sort.Strings(bad)
	return bad
}

func nested(v reflect.Value, prefix string, allowed map[string]bool) []string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	return unsupported(v, prefix, allowed)
}

func checkPolicy(p *types.Project, s types.ServiceConfig, pol Policy) error {
	if pol.LockedDown {
		if !contains(s.CapDrop, "ALL") {
			return fmt.Errorf("cap_drop must include ALL")
		}
		if !contains(s.SecurityOpt, "no-new-privileges:true") && !contains(s.SecurityOpt, "no-new-privileges") {
			return fmt.Errorf("security_opt must include no-new-privileges:true")
		}
		if s.CPUS <= 0 || s.MemLimit <= 0 || s.PidsLimit <= 0 {
			return fmt.Errorf("cpus, mem_limit and pids_limit must all be set")
		}
	}
	if pol.HostAccess {
		if s.NetworkMode != "" && s.NetworkMode != "host" {
			return fmt.Errorf("network_mode %q is not supported by darse (only host)", s.NetworkMode)
		}
		return nil
	}
	for _, c := range s.CapAdd {
		if !contains(pol.CapAdd, strings.TrimPrefix(strings.ToUpper(c), "CAP_")) {
			return fmt.Errorf("cap_add %s is not allowed", c)
		}
	}
	for _, o := range s.SecurityOpt {
		if !strings.HasPrefix(o, "no-new-privileges") {
			return fmt.Errorf("security_opt %q is not allowed", o)
		}
	}
	if s.NetworkMode != "" {
		return fmt.Errorf("network_mode %q is not allowed", s.NetworkMode)
	}
	if len(s.Ports) > 0 {
		return fmt.Errorf("ports are not allowed: sites are reached through the front door and declared exposures")
	}
	for _, n := range sortedKeys(s.Networks) {
		if net, ok := p.Networks[n]; ok && bool(net.External) && !(contains(pol.ExternalNetworks, net.Name) && net.Name == n) {
			return fmt.Errorf("external network %q is not allowed", n)
		}
	}
	root, err := filepath.EvalSymlinks(p.WorkingDir)
	if err != nil {
		return err
	}
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if err := inside(root, v.Source); err != nil {
			return fmt.Errorf("volume %s: %w", v.Source, err)
		}
	}
	return nil
}

// inside checks that source, symlinks resolved, stays within root.
func inside(root, source string) error {
	real, err := filepath.EvalSymlinks(source)
	if err != nil {
		if os.IsNotExist(err) {
			real = filepath.Clean(source)
		} else {
			return err
		}
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return fmt.Errorf("bind mounts must stay inside the project folder")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The front network's subnets: IPv4, and a private IPv6 prefix (the
// firewall watcher masquerades containers' outgoing IPv6 from it, and
// drops IPv6 between them, which Docker does not).
const (
	FrontSubnet  = "172.24.0.0/16"
	FrontSubnet6 = "fd64:6172:7365::/64" // fd + "darse"
)

// Front is the shared front network: a bridge whose containers cannot
// reach one another (inter-container communication off), with a fixed
// bridge name that firewall rules can refer to.
func Front() Network {
	return Network{
		Key:  FrontNetwork,
		Name: FrontNetwork,
		// Room for every site's web service: a subnet from the engine's
		// pool may be a /24 (scripts/host.sh's pool leaves this one out).
		Subnets:    []string{FrontSubnet, FrontSubnet6},
		EnableIPv6: true,
		Options: map[string]string{
			"com.docker.network.bridge.enable_icc": "false",
			"com.docker.network.bridge.name":       "br-darse-front",
		},
		Labels: map[string]string{"darse.managed": "true"},
	}
}
