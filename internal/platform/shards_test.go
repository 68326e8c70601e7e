package platform

import (
	"strings"
	"testing"
)

// front.shard_sites: 480 by default, passed to hosting, and refused with
// the rule when it would not fit a bridge's ports.
func TestShardSites(t *testing.T) {
	cfg, err := Load(t.TempDir())
	if err != nil || cfg.Front.ShardSites != DefaultShardSites || cfg.Hosting("/srv").ShardSites != DefaultShardSites {
		t.Fatalf("default shard_sites: %+v, %v", cfg.Front, err)
	}
	cfg, err = Load(writeConfig(t, "front:\n  shard_sites: 2\n"))
	if err != nil || cfg.Hosting("/srv").ShardSites != 2 || cfg.Front.HTTP != ":80" {
		t.Fatalf("shard_sites 2: %+v, %v", cfg.Front, err)
	}
	for _, body := range []string{"front: {shard_sites: 0}\n", "front: {shard_sites: -3}\n", "front: {shard_sites: 501}\n", "front: {shard_sites: 1024}\n"} {
		_, err := Load(writeConfig(t, body))
		if err == nil || !strings.Contains(err.Error(), "front.shard_sites") || !strings.Contains(err.Error(), "must be 1 to 500") {
			t.Errorf("%q: err = %v, want front.shard_sites's rule", body, err)
		}
	}
	if _, err := Load(writeConfig(t, "front: {shard_sites: many}\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("shard_sites not a number: %v", err)
	}
}
