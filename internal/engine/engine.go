// Package engine is darse's only door to the Docker Engine API. Other
// packages declare the few methods they need as interfaces; *Engine
// implements them on top of github.com/moby/moby/client.
package engine

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"
)

// Engine talks to one Docker engine.
type Engine struct {
	c *client.Client
}

// New connects to the engine named by DOCKER_HOST (default: the local
// socket) and negotiates the API version (1.41 on Debian's docker.io 20.10).
func New(ctx context.Context) (*Engine, error) {
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		c.Close()
		return nil, fmt.Errorf("docker engine: %w", err)
	}
	return &Engine{c: c}, nil
}

// Close releases the connection.
func (e *Engine) Close() error { return e.c.Close() }
