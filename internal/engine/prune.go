package engine

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"
)

// ImageSummary is one image as the engine lists it.
type ImageSummary struct {
	ID     string
	Tags   []string
	Size   int64
	Labels map[string]string
}

// ImageList lists every tagged or top-level image (not intermediate layers).
func (e *Engine) ImageList(ctx context.Context) ([]ImageSummary, error) {
	res, err := e.c.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]ImageSummary, 0, len(res.Items))
	for _, s := range res.Items {
		var tags []string
		for _, t := range s.RepoTags {
			if t != "<none>:<none>" {
				tags = append(tags, t)
			}
		}
		out = append(out, ImageSummary{ID: s.ID, Tags: tags, Size: s.Size, Labels: s.Labels})
	}
	return out, nil
}

// ImageRemove removes ref (a tag, or an ID), never by force: the engine
// refuses an image a container still uses.
func (e *Engine) ImageRemove(ctx context.Context, ref string) error {
	if _, err := e.c.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}

// ContainerImages are the image IDs and the image references of every
// container, running or not.
func (e *Engine) ContainerImages(ctx context.Context) (ids, refs []string, err error) {
	cs, err := e.c.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.Items {
		ids, refs = append(ids, c.ImageID), append(refs, c.Image)
	}
	return ids, refs, nil
}
