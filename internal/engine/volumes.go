package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/moby/moby/client"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/labels"
)

// SiteVolumeMounts returns, per site (darse.site label), where its named
// volumes live on the host: one listing for every site, for the disk
// walker. Volumes whose driver keeps no local folder are left out.
func (e *Engine) SiteVolumeMounts(ctx context.Context) (map[string][]string, error) {
	vs, err := e.c.VolumeList(ctx, client.VolumeListOptions{Filters: client.Filters{}.Add("label", labels.SiteLabel)})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := map[string][]string{}
	for _, v := range vs.Items {
		site := v.Labels[labels.SiteLabel]
		if site == "" || v.Driver != "local" || v.Mountpoint == "" {
			continue
		}
		out[site] = append(out[site], v.Mountpoint)
	}
	return out, nil
}

// SiteVolumes returns where the site's named volumes (its compose
// project's, carrying its darse.site label) live on the host, by volume
// name: what its backup reads and its restore fills. Volumes whose driver
// keeps no local folder are left out.
func (e *Engine) SiteVolumes(ctx context.Context, site string) (map[string]string, error) {
	f := client.Filters{}.Add("label", compose.LabelProject+"="+site).Add("label", labels.SiteLabel+"="+site)
	vs, err := e.c.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list volumes of %s: %w", site, err)
	}
	out := map[string]string{}
	for _, v := range vs.Items {
		if v.Driver == "local" && v.Mountpoint != "" {
			out[v.Name] = v.Mountpoint
		}
	}
	return out, nil
}

// VolumesDir is the folder of the host where the engine keeps its local
// volumes (<DockerRootDir>/volumes): the panel mounts it at the same
// path to back up and restore sites' named volumes.
func (e *Engine) VolumesDir(ctx context.Context) (string, error) {
	res, err := e.c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", fmt.Errorf("engine info: %w", err)
	}
	if res.Info.DockerRootDir == "" {
		return "", errors.New("engine info: no root dir")
	}
	return filepath.Join(res.Info.DockerRootDir, "volumes"), nil
}
