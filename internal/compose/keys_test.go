package compose

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/schema"
	"github.com/compose-spec/compose-go/v2/types"
)

// reflectedKeys lists the yaml keys of a compose-go struct as the policy
// walks them: inlined structs flattened, "-" fields (not compose keys) left out.
func reflectedKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, inline := yamlKey(f)
		if inline && f.Type.Kind() == reflect.Struct {
			keys = append(keys, reflectedKeys(f.Type)...)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
	}
	return keys
}

// field returns the field of struct v whose yaml key is key.
func field(v reflect.Value, key string) (reflect.Value, bool) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		name, inline := yamlKey(f)
		if inline && f.Type.Kind() == reflect.Struct {
			if fv, ok := field(v.Field(i), key); ok {
				return fv, true
			}
			continue
		}
		if name == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// setNonZero gives v some non-zero value of its type, as a compose file
// setting the key would.
func setNonZero(v reflect.Value) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		setNonZero(p.Elem())
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		setNonZero(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		setNonZero(k)
		setNonZero(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Interface:
		v.Set(reflect.ValueOf("x"))
	case reflect.Struct:
		for i := 0; i < v.NumField() && v.IsZero(); i++ {
			if v.Type().Field(i).IsExported() {
				setNonZero(v.Field(i))
			}
		}
	}
}

// validProject is a tenant project check accepts: one locked-down
// service binding a folder of its own and mounting its own volume.
func validProject(t *testing.T) *types.Project {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "site")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	web := types.ServiceConfig{Name: "web"}
	web.Image = "darse/nginx:bookworm"
	web.CapDrop = []string{"ALL"}
	web.SecurityOpt = []string{"no-new-privileges:true"}
	web.CPUS, web.MemLimit, web.PidsLimit = 0.5, 64<<20, 64
	web.Volumes = []types.ServiceVolumeConfig{
		{Type: types.VolumeTypeBind, Source: filepath.Join(dir, "data"), Target: "/srv/data"},
		{Type: types.VolumeTypeVolume, Source: "cache", Target: "/cache", Volume: &types.ServiceVolumeVolume{}},
	}
	p := &types.Project{Name: "site", WorkingDir: dir,
		Services: types.Services{"web": web},
		Networks: types.Networks{"default": {Name: "site_default"}},
		Volumes:  types.Volumes{"cache": {Name: "site_cache"}},
	}
	if err := check(p, TenantPolicy); err != nil {
		t.Fatalf("the valid project is refused: %v", err)
	}
	return p
}

// Every key compose-go knows, by reflection over its types, is either
// allowed or refused with a message naming it. A key a newer compose-go
// adds fails here until it is classified.
func TestEveryComposeKeyClassified(t *testing.T) {
	cases := []struct {
		what  string
		typ   reflect.Type
		rules keyRules
		path  string // how the key is named in messages: prefix + key
		set   func(p *types.Project, key string) bool
	}{
		{"project", reflect.TypeFor[types.Project](), projectKeys, "", func(p *types.Project, key string) bool {
			return setKey(reflect.ValueOf(p).Elem(), key)
		}},
		{"service", reflect.TypeFor[types.ServiceConfig](), serviceKeys, "", func(p *types.Project, key string) bool {
			s := p.Services["web"]
			ok := setKey(reflect.ValueOf(&s).Elem(), key)
			p.Services["web"] = s
			return ok
		}},
		{"service volume", reflect.TypeFor[types.ServiceVolumeConfig](), serviceKeys, "volumes.", func(p *types.Project, key string) bool {
			s := p.Services["web"]
			s.Volumes = slices.Clone(s.Volumes)
			ok := setKey(reflect.ValueOf(&s.Volumes[0]).Elem(), key)
			p.Services["web"] = s
			return ok
		}},
		{"network", reflect.TypeFor[types.NetworkConfig](), networkKeys, "", func(p *types.Project, key string) bool {
			n := p.Networks["default"]
			ok := setKey(reflect.ValueOf(&n).Elem(), key)
			p.Networks["default"] = n
			return ok
		}},
		{"volume", reflect.TypeFor[types.VolumeConfig](), volumeKeys, "", func(p *types.Project, key string) bool {
			v := p.Volumes["cache"]
			ok := setKey(reflect.ValueOf(&v).Elem(), key)
			p.Volumes["cache"] = v
			return ok
		}},
	}
	for _, c := range cases {
		keys := reflectedKeys(c.typ)
		if len(keys) < 5 {
			t.Fatalf("%s: only %d keys reflected: %v", c.what, len(keys), keys)
		}
		for _, key := range keys {
			path := c.path + key
			t.Run(c.what+"/"+key, func(t *testing.T) {
				allowed := c.rules.allowed[path] || c.rules.allowed[path+"."]
				_, refused := c.rules.refused[path]
				switch {
				case allowed && refused:
					t.Fatalf("%s key %q is both allowed and refused", c.what, path)
				case !allowed && !refused:
					t.Fatalf("%s key %q is not classified: add it to the allowed or the refused keys in check.go", c.what, path)
				}
				if strings.HasPrefix(key, "#") {
					return // x-* extensions: allowed, ignored, nothing to set
				}
				p := validProject(t)
				if !c.set(p, key) {
					t.Fatalf("cannot set %s key %q", c.what, key)
				}
				err := check(p, TenantPolicy)
				named := fmt.Sprintf("key %q is not supported", path)
				if refused && (err == nil || !strings.Contains(err.Error(), named)) {
					t.Fatalf("check = %v; want the refusal of %s key %q", err, c.what, path)
				}
				if allowed && err != nil && strings.Contains(err.Error(), named) {
					t.Fatalf("check = %v; %s key %q is allowed", err, c.what, path)
				}
			})
		}
		// No stale entry: every first-level key in the tables still exists.
		for _, table := range []map[string]bool{c.rules.allowed, boolKeys(c.rules.refused)} {
			for k := range table {
				rest, ok := strings.CutPrefix(k, c.path)
				rest = strings.TrimSuffix(rest, ".")
				if !ok || rest == "" || strings.Contains(rest, ".") {
					continue
				}
				if !slices.Contains(keys, rest) {
					t.Errorf("%s: table key %q is not a compose-go key any more", c.what, k)
				}
			}
		}
	}
}

func boolKeys(m map[string]string) map[string]bool {
	b := map[string]bool{}
	for k := range m {
		b[k] = true
	}
	return b
}

func setKey(v reflect.Value, key string) bool {
	f, ok := field(v, key)
	if !ok || !f.CanSet() {
		return false
	}
	f.Set(reflect.Zero(f.Type()))
	setNonZero(f)
	return !f.IsZero()
}

// Every mount type in compose-go's schema is classified, and each but a
// checked bind and a declared volume is refused by name: the engine side
// mounts anything else as a bind of its source.
func TestEveryMountTypeClassified(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(schema.Schema), &doc); err != nil {
		t.Fatal(err)
	}
	mountTypesInSchema := volumeTypeEnum(doc)
	if len(mountTypesInSchema) < 2 {
		t.Fatalf("mount types found in compose-go's schema: %v", mountTypesInSchema)
	}
	for _, mt := range mountTypesInSchema {
		t.Run(mt, func(t *testing.T) {
			why, known := mountTypes[mt]
			if !known {
				t.Fatalf("mount type %q is not classified: add it to mountTypes in check.go", mt)
			}
			p := validProject(t)
			s := p.Services["web"]
			v := types.ServiceVolumeConfig{Type: mt, Source: "/", Target: "/host"}
			switch mt {
			case types.VolumeTypeBind:
				v.Source = filepath.Join(p.WorkingDir, "data")
			case types.VolumeTypeVolume:
				v.Source = "cache"
			}
			s.Volumes = []types.ServiceVolumeConfig{v}
			p.Services["web"] = s
			err := check(p, TenantPolicy)
			if why == "" && err != nil {
				t.Fatalf("check = %v; want mount type %q allowed", err, mt)
			}
			if why != "" && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("mount type %q", mt))) {
				t.Fatalf("check = %v; want mount type %q refused by name", err, mt)
			}
			if why != "" {
				if err := check(p, PlatformPolicy); err == nil {
					t.Fatalf("the platform policy takes mount type %q", mt)
				}
			}
		})
	}
}

// volumeTypeEnum finds the enum of a service volume's "type" in the
// schema: the object whose properties hold both "type" (an enum with
// bind) and "source".
func volumeTypeEnum(n any) []string {
	switch x := n.(type) {
	case map[string]any:
		if props, ok := x["properties"].(map[string]any); ok && props["source"] != nil {
			if typ, ok := props["type"].(map[string]any); ok {
				if enum, ok := typ["enum"].([]any); ok && slices.Contains(enum, any("bind")) {
					var out []string
					for _, e := range enum {
						out = append(out, fmt.Sprint(e))
					}
					return out
				}
			}
		}
		for _, v := range x {
			if out := volumeTypeEnum(v); out != nil {
				return out
			}
		}
	case []any:
		for _, v := range x {
			if out := volumeTypeEnum(v); out != nil {
				return out
			}
		}
	}
	return nil
}
