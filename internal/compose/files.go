package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/template"
	"go.yaml.in/yaml/v4"
)

// OverrideFile is the override darse renders in a site folder: the only
// file of a confined project allowed to set reserved labels.
const OverrideFile = "docker-compose.override.yml"

// confine holds a confined project to the files inside its folder. It
// checks every file reference before compose-go reads it, so that nothing
// outside (another site's .env) is read, not even into an error message.
type confine struct {
	root string // the project folder, symlinks resolved
	name string // the project name the files may state
}

func newConfine(dir, name string) (confine, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return confine{}, err
	}
	return confine{root: root, name: name}, nil
}

// file checks that path, symlinks followed, is inside the folder and, if
// it exists, a regular file. A missing file is fine: nothing is read.
func (f confine) file(what, path string) error {
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		real, err = f.missing(path)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, f.rel(path), err)
	}
	if !within(f.root, real) {
		return fmt.Errorf("%s %s: files must stay inside the project folder", what, f.rel(path))
	}
	if st, err := os.Stat(real); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("%s %s: must be a regular file", what, f.rel(path))
	}
	return nil
}

// missing resolves the deepest existing parent of a missing path (a
// dangling symlink counts as existing: its target is what would be read).
func (f confine) missing(path string) (string, error) {
	if _, err := os.Lstat(path); err == nil {
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		return filepath.Clean(target), nil
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		dir, err = f.missing(filepath.Dir(path))
	}
	return filepath.Join(dir, filepath.Base(path)), err
}

func (f confine) rel(path string) string {
	if r, err := filepath.Rel(f.root, path); err == nil && filepath.IsLocal(r) {
		return r
	}
	return path
}

// within reports whether path is root or below it.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && filepath.IsLocal(rel)
}

// ref resolves a reference written in a compose file in dir: interpolated
// with env, relative to dir; "~" (compose-go expands it to darse's home)
// is refused.
func (f confine) ref(what, dir, raw string, env map[string]string) (string, error) {
	p, err := template.Substitute(raw, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", what, raw, err)
	}
	if p == "" || strings.HasPrefix(p, "~") || strings.Contains(p, "://") {
		return "", fmt.Errorf("%s %q: files must stay inside the project folder", what, raw)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return p, f.file(what, p)
}

// references checks the project's own files: the fixed ones of the
// folder, then every include, extends and env_file they name, recursively.
func (f confine) references(configFiles []string, env map[string]string) error {
	if err := f.file("env file", filepath.Join(f.root, ".env")); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, c := range configFiles {
		override := filepath.Base(c) == OverrideFile
		if err := f.composeFile(c, filepath.Dir(c), env, override, seen); err != nil {
			return err
		}
	}
	return nil
}

// composeFile checks one compose file, whose relative references resolve
// from dir. The override darse renders names no other file.
func (f confine) composeFile(path, dir string, env map[string]string, override bool, seen map[string]bool) error {
	if err := f.file("compose file", path); err != nil {
		return err
	}
	key := path + "\x00" + dir
	if seen[key] {
		return nil // a diamond or a cycle, which compose-go reports itself
	}
	seen[key] = true
	docs, err := yamlDocs(path)
	if err != nil {
		return fmt.Errorf("compose file %s: %w", f.rel(path), err)
	}
	for _, doc := range docs {
		if err := f.document(path, dir, doc, env, override, seen); err != nil {
			return err
		}
	}
	return nil
}

func (f confine) document(path, dir string, doc map[string]any, env map[string]string, override bool, seen map[string]bool) error {
	in := f.rel(path)
	if n, ok := doc["name"].(string); ok {
		name, err := template.Substitute(n, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil || name != f.name {
			return fmt.Errorf("%s: top-level key \"name\": project name %q is not allowed: a site's project is named after its folder (%q)", in, n, f.name)
		}
	}
	if inc, ok := doc["include"]; ok {
		if override {
			return fmt.Errorf("%s: key \"include\" is not allowed in the override darse renders", in)
		}
		if err := f.includes(in, dir, inc, env, seen); err != nil {
			return err
		}
	}
	services, _ := doc["services"].(map[string]any)
	for name, s := range services {
		svc, _ := s.(map[string]any)
		if err := f.service(in, dir, name, svc, env, override, seen); err != nil {
			return err
		}
	}
	return nil
}

func (f confine) includes(in, dir string, inc any, env map[string]string, seen map[string]bool) error {
	list, ok := inc.([]any)
	if !ok {
		return fmt.Errorf("%s: key \"include\" must be a list", in)
	}
	for _, e := range list {
		entry, ok := e.(map[string]any)
		if !ok {
			entry = map[string]any{"path": e}
		}
		for k := range entry {
			if k != "path" && k != "env_file" {
				return fmt.Errorf("%s: key \"include.%s\" is not allowed: included files are read from their own folder", in, k)
			}
		}
		incEnv := env
		envFiles, err := f.refs(in+": include.env_file", dir, entry["env_file"], env)
		if err != nil {
			return err
		}
		paths, err := f.refs(in+": include.path", dir, entry["path"], env)
		if err != nil {
			return err
		}
		if len(paths) == 0 {
			return fmt.Errorf("%s: include.path must be set", in)
		}
		incDir := filepath.Dir(paths[0])
		if len(envFiles) == 0 {
			// compose-go reads the included project's own .env.
			if err := f.file(in+": include .env", filepath.Join(incDir, ".env")); err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(incDir, ".env")); err == nil {
				envFiles = []string{filepath.Join(incDir, ".env")}
			}
		}
		if len(envFiles) > 0 {
			extra, err := dotenv.GetEnvFromFile(env, envFiles)
			if err != nil {
				return fmt.Errorf("%s: include.env_file: %w", in, err)
			}
			incEnv = mergeEnv(env, extra)
		}
		for _, p := range paths {
			if err := f.composeFile(p, incDir, incEnv, false, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f confine) service(in, dir, name string, svc map[string]any, env map[string]string, override bool, seen map[string]bool) error {
	at := fmt.Sprintf("%s: service %s:", in, name)
	if ext, ok := svc["extends"]; ok {
		if override {
			return fmt.Errorf("%s key \"extends\" is not allowed in the override darse renders", at)
		}
		if m, ok := ext.(map[string]any); ok && m["file"] != nil {
			files, err := f.refs(at+" extends.file", dir, m["file"], env)
			if err != nil {
				return err
			}
			for _, p := range files {
				// An extended file's references resolve from its own folder.
				if err := f.composeFile(p, filepath.Dir(p), env, false, seen); err != nil {
					return err
				}
			}
		}
	}
	var envFiles []any
	switch e := svc["env_file"].(type) {
	case nil:
	case []any:
		envFiles = e
	default:
		envFiles = []any{e}
	}
	for _, e := range envFiles {
		if m, ok := e.(map[string]any); ok {
			e = m["path"]
		}
		if _, err := f.refs(at+" env_file", dir, e, env); err != nil {
			return err
		}
	}
	return nil
}

// refs resolves a string or a list of strings naming files.
func (f confine) refs(what, dir string, v any, env map[string]string) ([]string, error) {
	var raw []any
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		raw = x
	default:
		raw = []any{x}
	}
	var out []string
	for _, r := range raw {
		s, ok := r.(string)
		if !ok {
			return nil, fmt.Errorf("%s: %v is not a path", what, r)
		}
		p, err := f.ref(what, dir, s, env)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func yamlDocs(path string) ([]map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
}

func mergeEnv(a, b map[string]string) map[string]string {
	m := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// jail is a compose-go resource loader for confined projects: it takes
// every reference that is not a plain relative path (absolute, "..", "~",
// remote) and lets through only absolute paths inside the folder. It
// backs the check of references, in case compose-go resolves a path the
// check did not foresee.
type jail struct{ f confine }

func (j jail) Accept(p string) bool {
	return !filepath.IsLocal(p) || strings.HasPrefix(p, "~") || strings.Contains(p, "://")
}

func (j jail) Load(_ context.Context, p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s: files must stay inside the project folder", p)
	}
	if err := j.f.file("file", p); err != nil {
		return "", err
	}
	return p, nil
}

func (j jail) Dir(p string) string { return filepath.Dir(p) }
