package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// Image is what darse reads about an image.
type Image struct {
	ID      string
	Tags    []string
	Size    int64
	Created time.Time

	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	// ExposedPorts are "8080/tcp" style, sorted.
	ExposedPorts []string
	StopSignal   string
}

// ErrImageNotFound is returned (wrapped) by ImageInspect for an unknown ref.
var ErrImageNotFound = errors.New("image not found")

// ImageInspect describes the image ref (a tag or an ID).
func (e *Engine) ImageInspect(ctx context.Context, ref string) (Image, error) {
	res, err := e.c.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return Image{}, fmt.Errorf("inspect image %s: %w", ref, ErrImageNotFound)
	}
	if err != nil {
		return Image{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	img := Image{
		ID:   res.ID,
		Tags: res.RepoTags,
		Size: res.Size,
	}
	if t, err := time.Parse(time.RFC3339Nano, res.Created); err == nil {
		img.Created = t
	}
	if c := res.Config; c != nil {
		img.Entrypoint, img.Cmd, img.Env = c.Entrypoint, c.Cmd, c.Env
		img.User, img.WorkingDir, img.StopSignal = c.User, c.WorkingDir, c.StopSignal
		for p := range c.ExposedPorts {
			img.ExposedPorts = append(img.ExposedPorts, p)
		}
		slices.Sort(img.ExposedPorts)
	}
	return img, nil
}

// ImageExists reports whether ref names an image in the engine.
func (e *Engine) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := e.ImageInspect(ctx, ref)
	if errors.Is(err, ErrImageNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ImageImport creates the image ref from a tar stream of a root filesystem,
// as `docker import -c CHANGE - REF` does, and returns the new image's ID.
// changes are Dockerfile instructions (CMD, ENV, EXPOSE, USER, WORKDIR…).
func (e *Engine) ImageImport(ctx context.Context, ref string, changes []string, rootfs io.Reader) (string, error) {
	res, err := e.c.ImageImport(ctx,
		client.ImageImportSource{Source: rootfs, SourceName: "-"},
		ref,
		client.ImageImportOptions{Changes: changes})
	if err != nil {
		return "", fmt.Errorf("import image %s: %w", ref, err)
	}
	defer res.Close()
	// The engine answers 200 at once and reports the outcome in a JSON
	// message stream: an errorDetail, or a status holding the new ID.
	var id string
	dec := json.NewDecoder(res)
	for {
		var m jsonstream.Message
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("import image %s: read progress: %w", ref, err)
		}
		if m.Error != nil {
			return "", fmt.Errorf("import image %s: %s", ref, m.Error.Message)
		}
		if strings.HasPrefix(m.Status, "sha256:") {
			id = strings.TrimSpace(m.Status)
		}
	}
	if id == "" {
		return "", fmt.Errorf("import image %s: the engine reported no image ID", ref)
	}
	return id, nil
}
