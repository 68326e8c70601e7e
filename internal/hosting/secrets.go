package hosting

import (
	"context"
	"fmt"

	"github.com/darse/darse/internal/template"
)

// Secret is one value darse generated for a site when it was created (its
// database's password, a salt), as its owner may read it.
type Secret struct {
	Name        string
	Description string
	Value       string
}

// Secrets returns the site's generated secrets, in the template's order.
// They are kept with the site's spec and written to its .env (mode 0600)
// only. The caller checks that the asker owns the site: this is for
// `darse site status --secrets` and the owner's panel page, never for logs.
func (h *Hosting) Secrets(ctx context.Context, name string) ([]Secret, error) {
	s, err := h.get(ctx, name)
	if err != nil {
		return nil, err
	}
	t, err := template.Load(h.cfg.TemplatesDir(), s.Template)
	if err != nil {
		return nil, fmt.Errorf("site %q: %w", name, err)
	}
	out := make([]Secret, 0, len(t.Secrets))
	for _, sec := range t.Secrets {
		v, ok := s.Params[sec.Name]
		if !ok {
			return nil, fmt.Errorf("site %q: secret %s was never generated (site created before template %s declared it)", name, sec.Name, t.Name)
		}
		out = append(out, Secret{Name: sec.Name, Description: sec.Description, Value: v})
	}
	return out, nil
}
