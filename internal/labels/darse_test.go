package labels

import (
	"errors"
	"reflect"
	"testing"
)

func TestDarse(t *testing.T) {
	got, err := Darse("blog", "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"darse.site":    "blog",
		"darse.owner":   "alice",
		"darse.managed": "true",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestDarseRejects(t *testing.T) {
	for _, tc := range []struct{ site, owner, field string }{
		{"Blog", "alice", "site name"},
		{"", "alice", "site name"},
		{"blog", "", "owner"},
	} {
		_, err := Darse(tc.site, tc.owner)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Darse(%q, %q) = %v, want a %s FieldError", tc.site, tc.owner, err, tc.field)
		}
	}
}

// Traefik's constraint must select exactly the label Darse writes.
func TestProviderConstraint(t *testing.T) {
	if want := "Label(`darse.managed`,`true`)"; ProviderConstraint != want {
		t.Errorf("ProviderConstraint = %s, want %s", ProviderConstraint, want)
	}
}
