package labels

import "fmt"

// darse's own label namespace. Every container of a hosted site carries
// these; Traefik's Docker provider runs with ProviderConstraint so it only
// ever routes containers darse manages.
const (
	// SiteLabel holds the name of the site the container belongs to.
	SiteLabel = "darse.site"
	// OwnerLabel holds the user name of the member who owns the site.
	OwnerLabel = "darse.owner"
	// ManagedLabel marks a container as darse's; its value is ManagedValue.
	ManagedLabel = "darse.managed"
	// ManagedValue is the only value darse writes under ManagedLabel.
	ManagedValue = "true"

	// ProviderConstraint is the value for Traefik's
	// --providers.docker.constraints: route only containers labelled
	// ManagedLabel=ManagedValue.
	ProviderConstraint = "Label(`" + ManagedLabel + "`,`" + ManagedValue + "`)"
)

// Darse returns darse's own labels for a container of site, owned by owner.
func Darse(site, owner string) (map[string]string, error) {
	if err := validateSite(site); err != nil {
		return nil, fmt.Errorf("darse labels: %w", err)
	}
	if owner == "" {
		return nil, fmt.Errorf("darse labels for site %q: %w", site, &FieldError{Field: "owner", Value: owner, Rule: "must not be empty"})
	}
	return map[string]string{
		SiteLabel:    site,
		OwnerLabel:   owner,
		ManagedLabel: ManagedValue,
	}, nil
}
