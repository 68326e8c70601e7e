package engine_test

import (
	"github.com/darse/darse/internal/engine"
	"github.com/darse/darse/internal/engine/enginetest"
	"github.com/darse/darse/internal/panel"
	"github.com/darse/darse/internal/reconcile"
)

// *Engine, and the fake that stands in for it in tests, are what plans
// are applied with and what the panel reads containers from.
var (
	_ reconcile.Engine = (*engine.Engine)(nil)
	_ panel.Engine     = (*engine.Engine)(nil)
	_ panel.Engine     = (*enginetest.Fake)(nil)
)
