package hosting

import (
	"context"
	"errors"
	"fmt"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/store"
)

// assignShard gives a new site the lowest front shard with room: a bridge
// holds 1,024 ports, and each site may take two (web and SSH).
func (h *Hosting) assignShard(ctx context.Context, name string) error {
	if h.cfg.FrontNetwork == "" || h.cfg.ShardSites <= 0 {
		return nil
	}
	k, err := h.store.AssignShard(ctx, name, h.cfg.ShardSites, compose.MaxShard)
	if err != nil {
		return err
	}
	h.log.Info("front shard", "site", name, "network", compose.FrontShardName(k))
	return nil
}

// shard is the site's stored front shard; 0 before its row exists (the
// render that only checks a creation).
func (h *Hosting) shard(ctx context.Context, name string) (int, error) {
	k, err := h.store.FrontShard(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return k, err
}

// frontName is the network the site's web service joins; "" when there
// is no front door.
func (h *Hosting) frontName(ctx context.Context, name string) (string, error) {
	if h.cfg.FrontNetwork == "" {
		return "", nil
	}
	k, err := h.shard(ctx, name)
	if err != nil || k == 0 {
		return h.cfg.FrontNetwork, err
	}
	return compose.FrontShardName(k), nil
}

// networkCreator is the one engine call ensureFront makes.
type networkCreator interface {
	CreateNetwork(ctx context.Context, n compose.Network) error
}

// ensureFront creates the site's front network when missing: sites may
// come up before the front door, and a shard's network exists only once
// a site was given it.
func (h *Hosting) ensureFront(ctx context.Context, e networkCreator, name string) error {
	k, err := h.shard(ctx, name)
	if err != nil {
		return err
	}
	n, err := compose.FrontShardIn(k, h.cfg.FrontPrefix6)
	if err != nil {
		return fmt.Errorf("site %q: %w", name, err)
	}
	if err := e.CreateNetwork(ctx, n); err != nil {
		return fmt.Errorf("front network %s: %w", n.Name, err)
	}
	return nil
}
