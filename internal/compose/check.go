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
// (core/, apps/) get PlatformPolicy. Load applies it to every project it
// loads: there is no other way to get a Project.
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
	// Confined is for projects a member controls: every file the project
	// reads stays inside its folder, its name is the folder's, its
	// networks and volumes are its own, reserved labels come only from
	// the override darse renders, and its engine objects carry darse.site.
	Confined bool
}

// FrontNetwork is the shared network Traefik reaches every site's web
// service on; containers on it cannot reach each other.
const FrontNetwork = "front"

var (
	// TenantPolicy is for members' sites: locked down, only their own folder mounted.
	TenantPolicy = Policy{Name: "tenant", LockedDown: true, Confined: true,
		CapAdd:           []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID", "NET_BIND_SERVICE"},
		ExternalNetworks: FrontNetworks()}
	// PlatformPolicy is for darse's own projects, which need the host (Traefik, the firewall).
	PlatformPolicy = Policy{Name: "platform", HostAccess: true}
)

// ReservedLabels are the label namespaces darse, Traefik and docker-compose
// act on. A confined project's own files may not set them: darse writes
// its own in the override it renders.
var ReservedLabels = []string{"traefik.", "darse.", "com.docker.compose."}

func reservedLabel(key string) bool {
	k := strings.ToLower(key)
	for _, p := range ReservedLabels {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// keyRules classify the yaml keys of one compose-go struct, as paths: a
// key followed by "." may hold the sub-keys listed under it. A key set in
// a project is refused unless allowed, never silently ignored; refused
// says why, and a key in neither (one a newer compose-go added) is
// refused as not classified.
type keyRules struct {
	allowed map[string]bool
	refused map[string]string
}

func (r keyRules) refusal(path string) string {
	if why, ok := r.refused[path]; ok {
		return fmt.Sprintf("key %q is not supported by darse: %s", path, why)
	}
	return fmt.Sprintf("key %q is not supported by darse (not classified)", path)
}

const (
	hostPower   = "it gives the container a power over the host or the engine"
	unused      = "darse does not implement it"
	swarmOnly   = "it is for swarm or another runtime"
	noBuild     = "darse does not build images from compose"
	extFiles    = "it reads files darse does not confine"
	limitsOwned = "resource limits are the plan's cpus, mem_limit and pids_limit"
	lifeCycle   = "darse runs one container per service, without hooks"
	netOwned    = "networking is darse's: networks and aliases only"
	// x-* extension keys are ignored by compose and by darse.
	extensions = "#extensions"
)

var serviceKeys = keyRules{
	allowed: map[string]bool{
		"name": true, "image": true, "command": true, "entrypoint": true, "environment": true,
		"labels": true, "user": true, "working_dir": true, "hostname": true, "read_only": true,
		"cap_add": true, "cap_drop": true, "security_opt": true, "cpus": true, "mem_limit": true,
		"pids_limit": true, "restart": true, "init": true, "tmpfs": true, "stop_signal": true,
		"stop_grace_period": true, "depends_on": true, "expose": true, "network_mode": true,
		// Both read files: Load checks them before compose-go reads them.
		"env_file": true, "extends": true,
		"healthcheck.": true, "healthcheck.test": true, "healthcheck.interval": true, "healthcheck.timeout": true,
		"healthcheck.retries": true, "healthcheck.start_period": true, "healthcheck.disable": true,
		"volumes.": true, "volumes.type": true, "volumes.source": true, "volumes.target": true, "volumes.read_only": true,
		"volumes.bind.": true, "volumes.bind.create_host_path": true,
		"volumes.volume.":       true, // the empty options compose-go sets on a named volume
		"volumes." + extensions: true,
		"networks.":             true, "networks.aliases": true,
		"ports.": true, "ports.target": true, "ports.published": true, "ports.host_ip": true, "ports.protocol": true, "ports.mode": true,
		"profiles": true,
		// Only the site's own domain to the front door, in the override
		// darse renders (checkService, checkOwnFiles).
		"extra_hosts":          true,
		"depends_on.condition": true, "depends_on.required": true, "depends_on.restart": true,
		extensions: true,
	},
	refused: map[string]string{
		"annotations": unused, "attach": unused, "blkio_config": limitsOwned, "build": noBuild, "dockerfile": noBuild,
		"cgroup": hostPower, "cgroup_parent": hostPower, "configs": unused, "container_name": "darse names containers project_service_1",
		"cpu_count": limitsOwned, "cpu_percent": limitsOwned, "cpu_period": limitsOwned, "cpu_quota": limitsOwned,
		"cpu_rt_period": limitsOwned, "cpu_rt_runtime": limitsOwned, "cpu_shares": limitsOwned, "cpuset": limitsOwned,
		"credential_spec": swarmOnly, "deploy": swarmOnly, "develop": unused, "device_cgroup_rules": hostPower, "devices": hostPower,
		"dns": netOwned, "dns_opt": netOwned, "dns_search": netOwned, "domainname": netOwned,
		"external_links": netOwned, "links": netOwned, "net": netOwned, "mac_address": netOwned,
		"gpus": hostPower, "group_add": hostPower, "ipc": hostPower, "isolation": swarmOnly, "label_file": extFiles,
		"logging": unused, "log_driver": unused, "log_opt": unused,
		"mem_reservation": limitsOwned, "memswap_limit": limitsOwned, "mem_swappiness": limitsOwned, "shm_size": limitsOwned,
		"models": unused, "oom_kill_disable": hostPower, "oom_score_adj": hostPower, "pid": hostPower, "platform": unused,
		"privileged": hostPower, "provider": unused, "pull_policy": "darse never pulls images", "pull_refresh_after": "darse never pulls images",
		"runtime": hostPower, "scale": "darse runs one container per service", "secrets": unused,
		"stdin_open": unused, "tty": unused, "storage_opt": hostPower, "sysctls": hostPower, "ulimits": hostPower, "umask": unused,
		"use_api_socket": hostPower, "userns_mode": hostPower, "uts": hostPower,
		"volume_driver": "darse creates local volumes only", "volumes_from": "it mounts another container's volumes",
		"pre_start": lifeCycle, "post_start": lifeCycle, "pre_stop": lifeCycle,
		"volumes.consistency": unused, "volumes.tmpfs": "use the service's tmpfs key", "volumes.image": unused,
		"volumes.bind.propagation": hostPower, "volumes.bind.selinux": hostPower, "volumes.bind.recursive": unused,
		"volumes.volume.nocopy": unused, "volumes.volume.subpath": unused,
	},
}

var networkKeys = keyRules{
	allowed: map[string]bool{
		"name": true, "driver": true, "driver_opts": true, "external": true, "internal": true, "enable_ipv6": true, "labels": true,
		"ipam.": true, "ipam.config.": true, "ipam.config.subnet": true, "ipam.config.gateway": true, extensions: true,
	},
	refused: map[string]string{"attachable": swarmOnly, "enable_ipv4": unused},
}

var volumeKeys = keyRules{
	allowed: map[string]bool{"name": true, "external": true, "labels": true, extensions: true},
	refused: map[string]string{
		"driver":      "darse creates local volumes only",
		"driver_opts": "the local driver's options mount any host path (o: bind, device:)",
	},
}

// projectKeys are the top-level keys; services, networks and volumes are
// checked item by item.
var projectKeys = keyRules{
	allowed: map[string]bool{"name": true, "services": true, "networks": true, "volumes": true, extensions: true},
	refused: map[string]string{"jobs": unused, "secrets": unused, "configs": unused, "models": unused},
}

// mountTypes classifies compose's mount types: the engine side of darse
// mounts anything but a volume as a bind of its source, so only bind
// (checked against the policy) and volume (a declared one) are allowed.
var mountTypes = map[string]string{
	types.VolumeTypeBind:      "",
	types.VolumeTypeVolume:    "",
	types.VolumeTypeTmpfs:     "use the service's tmpfs key",
	types.VolumeTypeNamedPipe: "a Windows named pipe, not a Linux mount",
	types.VolumeTypeCluster:   swarmOnly,
	types.VolumeTypeImage:     unused,
}

// check refuses keys darse does not implement and what the policy forbids.
func check(p *types.Project, pol Policy) error {
	if bad := unsupported(reflect.ValueOf(p), "", projectKeys.allowed); len(bad) > 0 {
		return fmt.Errorf("top-level %s", projectKeys.refusal(bad[0]))
	}
	if pol.Confined && p.Name != filepath.Base(p.WorkingDir) {
		return fmt.Errorf("project name %q is not allowed: a site's project is named after its folder (%q)", p.Name, filepath.Base(p.WorkingDir))
	}
	for _, name := range sortedKeys(p.Networks) {
		if err := checkNetwork(p, name, pol); err != nil {
			return fmt.Errorf("network %s: %w", name, err)
		}
	}
	for _, name := range sortedKeys(p.Volumes) {
		if err := checkVolume(p, name, pol); err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
	}
	for _, name := range sortedKeys(p.Services) {
		s := p.Services[name]
		if bad := unsupported(reflect.ValueOf(s), "", serviceKeys.allowed); len(bad) > 0 {
			return fmt.Errorf("service %s: %s", name, serviceKeys.refusal(bad[0]))
		}
		if err := checkService(p, s, pol); err != nil {
			return fmt.Errorf("service %s: %w (%s policy)", name, err, pol.Name)
		}
	}
	return nil
}

func checkNetwork(p *types.Project, key string, pol Policy) error {
	n := p.Networks[key]
	if bad := unsupported(reflect.ValueOf(n), "", networkKeys.allowed); len(bad) > 0 {
		return fmt.Errorf("%s", networkKeys.refusal(bad[0]))
	}
	if n.Driver != "" && n.Driver != "bridge" {
		return fmt.Errorf("driver %q is not supported by darse (only bridge)", n.Driver)
	}
	if pol.HostAccess {
		return nil
	}
	if n.External {
		if !contains(pol.ExternalNetworks, n.Name) || n.Name != key {
			return fmt.Errorf("external network %q (name %q) is not allowed (%s policy)", key, n.Name, pol.Name)
		}
		return nil
	}
	if !pol.Confined {
		return nil
	}
	if own := p.Name + "_" + key; n.Name != "" && n.Name != own {
		return fmt.Errorf("name %q is not allowed: a site's networks are its own (%q) (%s policy)", n.Name, own, pol.Name)
	}
	if len(n.DriverOpts) > 0 {
		return fmt.Errorf("key \"driver_opts\" is not allowed: bridge options are darse's (%s policy)", pol.Name)
	}
	if len(n.Ipam.Config) > 0 || n.Ipam.Driver != "" {
		return fmt.Errorf("key \"ipam\" is not allowed: addresses are the engine's to choose (%s policy)", pol.Name)
	}
	return reservedLabels(n.Labels)
}

func checkVolume(p *types.Project, key string, pol Policy) error {
	v := p.Volumes[key]
	if bad := unsupported(reflect.ValueOf(v), "", volumeKeys.allowed); len(bad) > 0 {
		return fmt.Errorf("%s", volumeKeys.refusal(bad[0]))
	}
	if !pol.Confined {
		return nil
	}
	own := p.Name + "_" + key
	if v.External {
		return fmt.Errorf("key \"external\" is not allowed: a site's volumes are its own (%q) (%s policy)", own, pol.Name)
	}
	if v.Name != "" && v.Name != own {
		return fmt.Errorf("name %q is not allowed: a site's volumes are its own (%q) (%s policy)", v.Name, own, pol.Name)
	}
	return reservedLabels(v.Labels)
}

func reservedLabels(l types.Labels) error {
	for _, k := range sortedKeys(l) {
		if reservedLabel(k) {
			return fmt.Errorf("label %q is reserved: darse writes the %s labels itself", k, strings.Join(ReservedLabels, "*, ")+"*")
		}
	}
	return nil
}

// checkOwnFiles refuses, in a confined project's own files (loaded
// without the override darse renders), what only darse may set: reserved
// labels and extra_hosts.
func checkOwnFiles(own *types.Project) error {
	for _, svcs := range []types.Services{own.Services, own.DisabledServices} {
		for _, name := range sortedKeys(svcs) {
			if err := reservedLabels(svcs[name].Labels); err != nil {
				return fmt.Errorf("service %s: %w, in %s only", name, err, OverrideFile)
			}
			if len(svcs[name].ExtraHosts) > 0 {
				return fmt.Errorf("service %s: extra_hosts is darse's (the site's own domain to the front door), in %s only", name, OverrideFile)
			}
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
		name, inline := yamlKey(f)
		fv := v.Field(i)
		if inline && f.Type.Kind() == reflect.Struct {
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

// yamlKey is a field's yaml key, and whether its fields are inlined.
func yamlKey(f reflect.StructField) (string, bool) {
	name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name, strings.Contains(opts, "inline")
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

func checkService(p *types.Project, s types.ServiceConfig, pol Policy) error {
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
	if err := checkMounts(p, s, pol); err != nil {
		return err
	}
	for _, h := range sortedKeys(s.ExtraHosts) {
		for _, a := range s.ExtraHosts[h] {
			if a != FrontGateway {
				return fmt.Errorf("extra_hosts %s=%s: a name may only resolve to the front door (%s)", h, a, FrontGateway)
			}
		}
	}
	if pol.Confined {
		for _, e := range s.EnvFiles {
			// Checked before loading; compose-go has resolved them since.
			if !filepath.IsAbs(e.Path) {
				return fmt.Errorf("env_file %s: files must stay inside the project folder", e.Path)
			}
			if err := inside(p.WorkingDir, e.Path); err != nil {
				return fmt.Errorf("env_file %s: %w", e.Path, err)
			}
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
	return nil
}

// checkMounts resolves each mount to what the engine will do with it: a
// named volume of the project, or a bind of a host path.
func checkMounts(p *types.Project, s types.ServiceConfig, pol Policy) error {
	for i, v := range s.Volumes {
		at := fmt.Sprintf("volumes[%d] (target %s)", i, v.Target)
		why, known := mountTypes[v.Type]
		switch {
		case !known:
			return fmt.Errorf("%s: mount type %q is not supported by darse (not classified)", at, v.Type)
		case why != "":
			return fmt.Errorf("%s: mount type %q is not supported by darse: %s", at, v.Type, why)
		}
		switch v.Type {
		case types.VolumeTypeVolume:
			if v.Source == "" {
				return fmt.Errorf("%s: anonymous volumes are not supported by darse: declare a named volume", at)
			}
			if _, ok := p.Volumes[v.Source]; !ok {
				return fmt.Errorf("%s: volume %q is not declared", at, v.Source)
			}
		case types.VolumeTypeBind:
			if pol.HostAccess {
				continue
			}
			if !filepath.IsAbs(v.Source) {
				return fmt.Errorf("%s: bind source %q: bind mounts must stay inside the project folder", at, v.Source)
			}
			if err := inside(p.WorkingDir, v.Source); err != nil {
				return fmt.Errorf("%s: volume %s: %w", at, v.Source, err)
			}
		}
	}
	return nil
}

// inside checks that source, symlinks resolved, stays within the folder
// dir (symlinks resolved too).
func inside(dir, source string) error {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(source)
	if err != nil {
		if os.IsNotExist(err) {
			real = filepath.Clean(source)
		} else {
			return err
		}
	}
	if !within(root, real) {
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
	// FrontGateway is the host's address on the front network (the
	// engine's first one): Traefik listens on every host address, and
	// tenants may reach the host's front door ports, so a site's own
	// domain resolves to it from inside the site (extra_hosts).
	FrontGateway = "172.24.0.1"
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
