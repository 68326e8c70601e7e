package engine

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ImageLabels returns the labels of the image ref (a tag or an ID); ok is
// false when the engine has no such image.
func (e *Engine) ImageLabels(ctx context.Context, ref string) (map[string]string, bool, error) {
	res, err := e.c.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	if res.Config == nil {
		return map[string]string{}, true, nil
	}
	return res.Config.Labels, true, nil
}

// ImageTag gives the image source (a tag or an ID) the tag target, moving
// target from whatever image had it.
func (e *Engine) ImageTag(ctx context.Context, source, target string) error {
	if _, err := e.c.ImageTag(ctx, client.ImageTagOptions{Source: source, Target: target}); err != nil {
		return fmt.Errorf("tag image %s as %s: %w", source, target, err)
	}
	return nil
}

// ImageIDs resolves image references (tags) to the IDs of the images the
// engine has under them now; a reference the engine does not have is
// left out.
func (e *Engine) ImageIDs(ctx context.Context, refs []string) (map[string]string, error) {
	out := make(map[string]string, len(refs))
	for _, ref := range refs {
		if _, done := out[ref]; done {
			continue
		}
		img, err := e.ImageInspect(ctx, ref)
		if errors.Is(err, ErrImageNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[ref] = img.ID
	}
	return out, nil
}
