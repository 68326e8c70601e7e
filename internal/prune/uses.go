package prune

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/darse/darse/internal/compose"
)

// Folder is a compose project folder and the policy it is loaded with.
type Folder struct {
	Dir    string
	Policy compose.Policy
}

// Folders are every project whose images must stay: each site folder
// under <srv>/users (tenant policy), whether it runs or not, and the
// platform's own (<srv>/core/front, <srv>/apps/panel).
func Folders(srv string) ([]Folder, error) {
	users := filepath.Join(srv, "users")
	ents, err := os.ReadDir(users)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	var out []Folder
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, Folder{filepath.Join(users, e.Name()), compose.TenantPolicy})
		}
	}
	for _, d := range []string{"core/front", "apps/panel"} {
		dir := filepath.Join(srv, d)
		if _, err := os.Stat(dir); err == nil {
			out = append(out, Folder{dir, compose.PlatformPolicy})
		}
	}
	return out, nil
}

// AddFolders records the images the folders' compose projects name. A
// folder that fails to load is recorded as unreadable, not an error:
// prune then keeps every darse image and says why. pinned is the Traefik
// image the front door names.
func AddFolders(ctx context.Context, u *Uses, folders []Folder) (pinned string) {
	for _, f := range folders {
		p, err := compose.Load(ctx, f.Dir, f.Policy)
		if err != nil {
			u.Unreadable = append(u.Unreadable, fmt.Sprintf("%s: %v", f.Dir, err))
			continue
		}
		for _, s := range p.Services {
			ref := Normalize(s.Container.Image)
			u.Refs[ref] = true
			if f.Policy.Name == compose.PlatformPolicy.Name && strings.HasPrefix(ref, "traefik:") {
				pinned = ref
			}
		}
	}
	return pinned
}

// AddTemplates records the images the templates in <srv>/templates run:
// the catalogue a member creates sites from, whose images must be there
// when one does (darse never pulls). Only old builds and images nothing
// names are pruned. A template file that does not parse is unreadable, as
// a site's is.
func AddTemplates(u *Uses, srv string) error {
	files, err := filepath.Glob(filepath.Join(srv, "templates", "*", "docker-compose.yml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			u.Unreadable = append(u.Unreadable, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		var doc struct {
			Services map[string]struct {
				Image string `yaml:"image"`
			} `yaml:"services"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			u.Unreadable = append(u.Unreadable, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		for _, s := range doc.Services {
			if s.Image != "" {
				u.Refs[Normalize(s.Image)] = true
			}
		}
	}
	return nil
}

// AddEnvImage records the darse image the top-level <srv>/.env names
// (DARSE_IMAGE), which the platform's docker-compose.yml runs.
func AddEnvImage(u *Uses, srv string) error {
	f, err := os.Open(filepath.Join(srv, ".env"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("platform .env: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "DARSE_IMAGE="); ok && v != "" {
			u.Refs[Normalize(strings.Trim(v, `"'`))] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("platform .env: %w", err)
	}
	return nil
}

// AddContainers records what every container in the engine runs, running
// or not, by image ID and by the reference it was created from.
func AddContainers(u *Uses, imageIDs, refs []string) {
	for _, id := range imageIDs {
		u.IDs[id] = true
	}
	for _, r := range refs {
		u.Refs[Normalize(r)] = true
	}
}

// Normalize gives a reference without a tag the tag the engine assumes,
// latest, so "darse/x" and "darse/x:latest" are one image.
func Normalize(ref string) string {
	if ref == "" || strings.HasPrefix(ref, "sha256:") || strings.Contains(ref, "@") {
		return ref
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	if !strings.Contains(last, ":") {
		return ref + ":latest"
	}
	return ref
}
