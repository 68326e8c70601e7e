package engine

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/moby/moby/client"

	"github.com/darse/darse/internal/compose"
	"github.com/darse/darse/internal/testenv"
)

// API 1.41 lets a name be taken twice; CreateNetwork leaves exactly one.
func TestCreateNetworkRemovesDuplicates(t *testing.T) {
	testenv.NeedEngine(t)
	ctx := context.Background()
	e, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	name := fmt.Sprintf("darse-dup-%d", os.Getpid())
	count := func() int {
		res, err := e.c.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", name)})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, nw := range res.Items {
			if nw.Name == name {
				n++
			}
		}
		return n
	}
	t.Cleanup(func() {
		for count() > 0 {
			if _, err := e.c.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil {
				res, _ := e.c.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("name", name)})
				for _, nw := range res.Items {
					e.c.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{})
				}
			}
		}
	})
	for i := 0; i < 2; i++ {
		if _, err := e.c.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 2 {
		t.Skipf("this engine refuses duplicate network names (%d found)", n)
	}
	if err := e.CreateNetwork(ctx, compose.Network{Name: name}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d networks named %s after CreateNetwork, want 1", n, name)
	}
}
