package ops_test

import (
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/panel"
)

// *Runner is what the panel records operations with.
var _ panel.Operations = (*ops.Runner)(nil)
