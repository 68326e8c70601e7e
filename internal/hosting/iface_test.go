package hosting_test

import (
	"github.com/darse/darse/internal/hosting"
	"github.com/darse/darse/internal/ops"
	"github.com/darse/darse/internal/panel"
)

// *Hosting is what operations are carried out with and what the panel
// reads sites from (their interfaces are declared where they are used).
var (
	_ ops.Hosting = (*hosting.Hosting)(nil)
	_ panel.Sites = (*hosting.Hosting)(nil)
)
