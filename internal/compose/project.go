// Package compose loads a compose project folder with compose-go, refuses
// what darse does not implement or what a tenant may not do, and turns the
// rest into darse's own model of the networks, volumes and containers to
// run. It is pure apart from reading the folder.
package compose

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/darse/darse/internal/labels"
)

// Project is what darse converges: named resources with their labels.
type Project struct {
	Name       string
	WorkingDir string
	// Site is the site's name for a tenant project (Policy.Confined): every
	// container, network and volume carries it as darse.site, for other
	// packages to filter on. Empty for the platform's projects.
	Site     string
	Networks []Network
	Volumes  []Volume
	Services []Service // in dependency order: dependencies first
}

// Network is a network of the project.
type Network struct {
	Key        string // name in the compose file
	Name       string // name in the engine
	External   bool
	Driver     string
	Internal   bool
	EnableIPv6 bool
	Subnets    []string
	Options    map[string]string // driver options
	Labels     map[string]string
}

// Volume is a named volume of the project.
type Volume struct {
	Key      string
	Name     string
	External bool
	Labels   map[string]string
}

// Service is one service, run as one container.
type Service struct {
	Name      string
	DependsOn []string
	Hash      string
	Container Container
}

// ContainerName is the name darse gives the service's container; it
// follows docker-compose 1.29 (project_service_1).
func (p *Project) ContainerName(service string) string {
	return p.Name + "_" + service + "_1"
}

// Container is the effective configuration of a service's container.
type Container struct {
	Image        string            `json:"image"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	User         string            `json:"user,omitempty"`
	WorkingDir   string            `json:"working_dir,omitempty"`
	Hostname     string            `json:"hostname,omitempty"`
	ExtraHosts   []string          `json:"extra_hosts,omitempty"` // "name:address", sorted
	Healthcheck  *Healthcheck      `json:"healthcheck,omitempty"`
	StopSignal   string            `json:"stop_signal,omitempty"`
	StopTimeout  *int              `json:"stop_timeout,omitempty"`
	Mounts       []Mount           `json:"mounts,omitempty"`
	Tmpfs        map[string]string `json:"tmpfs,omitempty"`
	ReadOnly     bool              `json:"read_only,omitempty"`
	CapAdd       []string          `json:"cap_add,omitempty"`
	CapDrop      []string          `json:"cap_drop,omitempty"`
	SecurityOpt  []string          `json:"security_opt,omitempty"`
	NanoCPUs     int64             `json:"nano_cpus,omitempty"`
	Memory       int64             `json:"memory,omitempty"`
	PidsLimit    int64             `json:"pids_limit,omitempty"`
	Restart      string            `json:"restart,omitempty"`
	NetworkMode  string            `json:"network_mode,omitempty"` // "host"; empty: the networks below
	Init         *bool             `json:"init,omitempty"`
	Networks     []Attachment      `json:"networks,omitempty"`
	Ports        []Port            `json:"ports,omitempty"`
	ExposedPorts []string          `json:"exposed_ports,omitempty"` // "8080/tcp"
}

// Healthcheck is the container's health test.
type Healthcheck struct {
	Test        []string      `json:"test"`
	Interval    time.Duration `json:"interval,omitempty"`
	Timeout     time.Duration `json:"timeout,omitempty"`
	StartPeriod time.Duration `json:"start_period,omitempty"`
	Retries     int           `json:"retries,omitempty"`
}

// Mount is a bind mount or a named volume.
type Mount struct {
	Type     string `json:"type"` // "bind" or "volume"
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Attachment joins the container to a network.
type Attachment struct {
	Network string   `json:"network"` // engine name
	Aliases []string `json:"aliases,omitempty"`
}

// Port publishes a container port on the host.
type Port struct {
	HostIP        string `json:"host_ip,omitempty"`
	HostPort      string `json:"host_port,omitempty"`
	ContainerPort uint32 `json:"container_port"`
	Protocol      string `json:"protocol"`
}

// Load reads the compose project in dir (docker-compose.yml, its override
// and .env, as docker-compose would) and checks it against the policy.
// Only the folder's .env is used for interpolation, never darse's own
// environment, so the same folder always gives the same project.
//
// A confined project is checked in three steps: its files before
// compose-go reads them (nothing outside the folder is read), the loaded
// project, then its own files without the override for reserved labels;
// env_file is read only once all of that passed.
func Load(ctx context.Context, dir string, pol Policy) (*Project, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	tp, files, err := load(ctx, abs, pol)
	if err != nil {
		return nil, fmt.Errorf("load project %s: %w", abs, err)
	}
	if err := check(tp, pol); err != nil {
		return nil, fmt.Errorf("project %s: %w", tp.Name, err)
	}
	if pol.Confined {
		if err := checkOwn(ctx, abs, pol, files); err != nil {
			return nil, fmt.Errorf("project %s: %w", tp.Name, err)
		}
		if tp, err = tp.WithServicesEnvironmentResolved(false); err != nil {
			return nil, fmt.Errorf("project %s: %w", tp.Name, err)
		}
	}
	site := ""
	if pol.Confined {
		site = tp.Name
	}
	return convert(tp, files, site)
}

// load reads the project with compose-go; for a confined project, only
// after every file it names was checked.
func load(ctx context.Context, abs string, pol Policy) (*types.Project, []string, error) {
	var conf *confine
	if pol.Confined {
		c, err := newConfine(abs, filepath.Base(abs))
		if err != nil {
			return nil, nil, err
		}
		if err := c.file("env file", filepath.Join(abs, ".env")); err != nil {
			return nil, nil, err // read by the options, for interpolation
		}
		conf = &c
	}
	opts, err := projectOptions(abs, conf)
	if err != nil {
		return nil, nil, err
	}
	if len(opts.ConfigPaths) == 0 || filepath.Dir(opts.ConfigPaths[0]) != abs {
		return nil, nil, fmt.Errorf("no docker-compose.yml in the folder")
	}
	if name := opts.Environment["COMPOSE_PROJECT_NAME"]; name != "" {
		if pol.Confined && name != opts.Name {
			return nil, nil, fmt.Errorf("COMPOSE_PROJECT_NAME %q in .env is not allowed: a site's project is named after its folder (%q)", name, opts.Name)
		}
		opts.Name = name
	}
	if conf != nil {
		if err := conf.references(opts.ConfigPaths, opts.Environment); err != nil {
			return nil, nil, err
		}
	}
	tp, err := opts.LoadProject(ctx)
	return tp, opts.ConfigPaths, err
}

// projectOptions are compose-go's options for the folder abs. A confined
// project is read from docker-compose.yml and the override only (no
// discovery of other names or parent folders), through the jail, and
// its env_file are left unread.
func projectOptions(abs string, conf *confine, extra ...cli.ProjectOptionsFn) (*cli.ProjectOptions, error) {
	fns := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(abs),
		cli.WithDefaultConfigPath,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(), // COMPOSE_PROFILES, from .env
		cli.WithName(filepath.Base(abs)),
		cli.WithResolvedPaths(true),
	}
	if conf != nil {
		files := []string{filepath.Join(abs, "docker-compose.yml")}
		if _, err := os.Lstat(filepath.Join(abs, OverrideFile)); err == nil {
			files = append(files, filepath.Join(abs, OverrideFile))
		}
		// Set first, so that WithDefaultConfigPath finds nothing to do.
		fns = append([]cli.ProjectOptionsFn{func(o *cli.ProjectOptions) error {
			o.ConfigPaths = files
			return nil
		}}, fns...)
		fns = append(fns, cli.WithResourceLoader(jail{*conf}), cli.WithoutEnvironmentResolution, cli.WithoutLabelsResolution)
	}
	return cli.NewProjectOptions(nil, append(fns, extra...)...)
}

// checkOwn loads a confined project's own files, without the override
// darse renders and with every profile, and refuses reserved labels there.
func checkOwn(ctx context.Context, abs string, pol Policy, files []string) error {
	var own []string
	for _, f := range files {
		if filepath.Base(f) != OverrideFile {
			own = append(own, f)
		}
	}
	conf, err := newConfine(abs, filepath.Base(abs))
	if err != nil {
		return err
	}
	opts, err := projectOptions(abs, &conf, cli.WithProfiles([]string{"*"}),
		cli.WithLoadOptions(func(o *loader.Options) { o.SkipConsistencyCheck = true }))
	if err != nil {
		return err
	}
	opts.ConfigPaths = own
	tp, err := opts.LoadProject(ctx)
	if err != nil {
		return fmt.Errorf("load without %s: %w", OverrideFile, err)
	}
	return checkOwnFiles(tp)
}

func convert(tp *types.Project, configFiles []string, site string) (*Project, error) {
	p := &Project{Name: tp.Name, WorkingDir: tp.WorkingDir, Site: site}
	netKeys := sortedKeys(tp.Networks)
	for _, k := range netKeys {
		n := tp.Networks[k]
		net := Network{Key: k, Name: n.Name, External: bool(n.External), Driver: n.Driver, Internal: n.Internal,
			Labels: p.labels(map[string]string{LabelNetwork: k}, n.Labels)}
		if net.Name == "" {
			net.Name = p.Name + "_" + k
		}
		if n.EnableIPv6 != nil {
			net.EnableIPv6 = *n.EnableIPv6
		}
		if len(n.DriverOpts) > 0 {
			net.Options = map[string]string(n.DriverOpts)
		}
		for _, c := range n.Ipam.Config {
			net.Subnets = append(net.Subnets, c.Subnet)
		}
		p.Networks = append(p.Networks, net)
	}
	for _, k := range sortedKeys(tp.Volumes) {
		v := tp.Volumes[k]
		vol := Volume{Key: k, Name: v.Name, External: bool(v.External), Labels: p.labels(map[string]string{LabelVolume: k}, v.Labels)}
		if vol.Name == "" {
			vol.Name = p.Name + "_" + k
		}
		p.Volumes = append(p.Volumes, vol)
	}
	names, err := dependencyOrder(tp)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		s := tp.Services[name]
		c, err := container(p, tp, s)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		svc := Service{Name: name, DependsOn: sortedKeys(s.DependsOn), Container: c}
		svc.Hash = hash(c)
		c.Labels[LabelConfigHash] = svc.Hash
		c.Labels[LabelWorkingDir] = p.WorkingDir
		c.Labels[LabelConfigFiles] = strings.Join(configFiles, ",")
		c.Labels[LabelEnvironmentFile] = filepath.Join(p.WorkingDir, ".env")
		c.Labels[LabelNumber] = "1"
		svc.Container = c
		p.Services = append(p.Services, svc)
	}
	return p, nil
}

// labels are the labels of an engine object of the project: the user's,
// then compose's, then darse.site for a site; darse's own win.
func (p *Project) labels(extra map[string]string, user types.Labels) map[string]string {
	l := map[string]string{}
	for k, v := range user {
		l[k] = v
	}
	l[LabelProject] = p.Name
	l[LabelVersion] = Version
	for k, v := range extra {
		l[k] = v
	}
	if p.Site != "" {
		l[labels.SiteLabel] = p.Site
	}
	return l
}

func container(p *Project, tp *types.Project, s types.ServiceConfig) (Container, error) {
	c := Container{
		Image:       s.Image,
		Entrypoint:  s.Entrypoint,
		Cmd:         s.Command,
		User:        s.User,
		WorkingDir:  s.WorkingDir,
		Hostname:    s.Hostname,
		StopSignal:  s.StopSignal,
		ReadOnly:    s.ReadOnly,
		CapAdd:      s.CapAdd,
		CapDrop:     s.CapDrop,
		SecurityOpt: s.SecurityOpt,
		NanoCPUs:    int64(float64(s.CPUS) * 1e9),
		Memory:      int64(s.MemLimit),
		PidsLimit:   s.PidsLimit,
		Restart:     s.Restart,
		// ":" as the engine (20.10 included) splits it; sorted, for the hash.
		ExtraHosts:  slices.Sorted(slices.Values(s.ExtraHosts.AsList(":"))),
		Init:        s.Init,
		NetworkMode: s.NetworkMode,
		Labels: p.labels(map[string]string{
			LabelService: s.Name,
			LabelOneOff:  "False",
		}, s.Labels),
	}
	if c.Image == "" {
		return c, fmt.Errorf("image is required (darse does not build images from compose)")
	}
	for _, k := range sortedKeys(s.Environment) {
		if v := s.Environment[k]; v != nil {
			c.Env = append(c.Env, k+"="+*v)
		}
	}
	if s.StopGracePeriod != nil {
		t := int(time.Duration(*s.StopGracePeriod).Seconds())
		c.StopTimeout = &t
	}
	if h := s.HealthCheck; h != nil && !h.Disable {
		hc := &Healthcheck{Test: h.Test}
		if h.Interval != nil {
			hc.Interval = time.Duration(*h.Interval)
		}
		if h.Timeout != nil {
			hc.Timeout = time.Duration(*h.Timeout)
		}
		if h.StartPeriod != nil {
			hc.StartPeriod = time.Duration(*h.StartPeriod)
		}
		if h.Retries != nil {
			hc.Retries = int(*h.Retries)
		}
		c.Healthcheck = hc
	}
	for _, v := range s.Volumes {
		m := Mount{Type: v.Type, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		if v.Type == types.VolumeTypeVolume {
			vol, ok := tp.Volumes[v.Source]
			if !ok {
				return c, fmt.Errorf("volume %q is not declared", v.Source)
			}
			m.Source = vol.Name
			if m.Source == "" {
				m.Source = p.Name + "_" + v.Source
			}
		}
		c.Mounts = append(c.Mounts, m)
	}
	if len(s.Tmpfs) > 0 {
		c.Tmpfs = map[string]string{}
		for _, t := range s.Tmpfs {
			path, opts, _ := strings.Cut(t, ":")
			c.Tmpfs[path] = opts
		}
	}
	for _, k := range sortedKeys(s.Networks) {
		n, ok := tp.Networks[k]
		if !ok {
			return c, fmt.Errorf("network %q is not declared", k)
		}
		name := n.Name
		if name == "" {
			name = p.Name + "_" + k
		}
		a := Attachment{Network: name, Aliases: []string{s.Name}}
		if sn := s.Networks[k]; sn != nil {
			a.Aliases = append(a.Aliases, sn.Aliases...)
		}
		c.Networks = append(c.Networks, a)
	}
	for _, pc := range s.Ports {
		c.Ports = append(c.Ports, Port{HostIP: pc.HostIP, HostPort: pc.Published, ContainerPort: pc.Target, Protocol: pc.Protocol})
	}
	for _, e := range s.Expose {
		if !strings.Contains(e, "/") {
			e += "/tcp"
		}
		c.ExposedPorts = append(c.ExposedPorts, e)
	}
	return c, nil
}

// hash is the config hash: any change to the effective container
// configuration, and only such a change, recreates the container.
func hash(c Container) string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func dependencyOrder(tp *types.Project) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string, []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("dependency cycle: %s", strings.Join(append(path, n), " -> "))
		case 2:
			return nil
		}
		s, ok := tp.Services[n]
		if !ok {
			return fmt.Errorf("service %q depends on unknown service %q", path[len(path)-1], n)
		}
		state[n] = 1
		for _, d := range sortedKeys(s.DependsOn) {
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range sortedKeys(tp.Services) {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
