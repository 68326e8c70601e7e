package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/labels"
)

// ContainerInfo is one container as the admin pages show it, whoever
// created it.
type ContainerInfo struct {
	ID         string
	Name       string
	Project    string // compose project label; empty for a container outside any
	Site       string // darse.site label: the hosted site it belongs to, if any
	Service    string
	WorkingDir string // compose working dir label: tells /srv/core, /srv/apps, /srv/users apart
	Image      string
	State      string // running, exited, ...
	Status     string // the engine's words: "Up 3 minutes (healthy)"
	Health     string
	Created    time.Time
}

// Containers lists every container the engine has, running or not, by
// project then name.
func (e *Engine) Containers(ctx context.Context) ([]ContainerInfo, error) {
	cs, err := e.c.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]ContainerInfo, 0, len(cs.Items))
	for _, c := range cs.Items {
		info := ContainerInfo{
			ID:         c.ID,
			Project:    c.Labels[compose.LabelProject],
			Site:       c.Labels[labels.SiteLabel],
			Service:    c.Labels[compose.LabelService],
			WorkingDir: c.Labels[compose.LabelWorkingDir],
			Image:      c.Image,
			State:      string(c.State),
			Status:     c.Status,
			Health:     health(c),
			Created:    time.Unix(c.Created, 0),
		}
		if len(c.Names) > 0 {
			info.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Project != out[j].Project {
			return out[i].Project < out[j].Project
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
