package firewall

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/darse/darse/internal/firewall/firewalltest"
	"github.com/darse/darse/internal/nft"
	"github.com/darse/darse/internal/testenv"
)

func needNetns(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
	if m := firewalltest.MissingTool(); m != "" {
		if testenv.Required() {
			t.Fatalf("integration test cannot run: needs %s (DARSE_INTEGRATION=require)", m)
		}
		t.Skip("integration test: needs " + m)
	}
}

// Every golden ruleset loads in a real kernel, and the netlink batch the
// watcher sends makes the same ruleset as nft -f of the rendered text (what
// `darse fw render` prints).
func TestGoldenRulesetsInKernel(t *testing.T) {
	needNetns(t)
	ctx := context.Background()
	for _, dir := range cases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			s, o := loadCase(t, dir)
			r := Build(s, o)
			viaNetlink, viaText := firewalltest.Scratch(t), firewalltest.Scratch(t)
			if err := nft.New(nft.WithNetNS(viaNetlink.FD())).Apply(ctx, r.Table); err != nil {
				t.Fatal(err)
			}
			if _, err := viaText.Exec(r.Text(), "nft", "-f", "-"); err != nil {
				t.Fatal(err)
			}
			got, err := viaNetlink.List(r.Table.Name)
			if err != nil {
				t.Fatal(err)
			}
			want, err := viaText.List(r.Table.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("netlink and nft -f differ:\n%s", diff(want, got))
			}
		})
	}
}
