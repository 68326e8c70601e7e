package compose

import (
	"fmt"
)

// A Linux bridge holds 1,024 ports and every site's web container (and
// its SSH service) takes one on the front network, so the front door is
// split into shards: shard 0 is FrontNetwork as it always was, shard k
// (1..MaxShard) is front-k, a bridge of its own with its own subnets. A
// site keeps the shard it was given at creation.
const (
	// MaxShard is the highest shard: FrontShardPool holds this many /22s.
	MaxShard = 64
	// FrontShardPool is where shards 1..MaxShard take their IPv4 /22s,
	// outside the engine's default-address-pools (scripts/host.sh:
	// 172.16.0.0/13) and shard 0's 172.24.0.0/16.
	FrontShardPool = "172.25.0.0/16"
)

// FrontShardName is the network name of shard k (the caller checks k).
func FrontShardName(k int) string {
	if k == 0 {
		return FrontNetwork
	}
	return fmt.Sprintf("%s-%d", FrontNetwork, k)
}

// FrontNetworks names every shard, 0 first: the only external networks a
// tenant's project may join.
func FrontNetworks() []string {
	out := make([]string, 0, MaxShard+1)
	for k := 0; k <= MaxShard; k++ {
		out = append(out, FrontShardName(k))
	}
	return out
}

// FrontShard is shard k's network: Front for 0; for k in 1..MaxShard the
// k-th /22 of FrontShardPool, fd64:6172:7365:k::/64 (k in hex), bridge
// br-darse-fK (within the kernel's 15 characters), and Front's options
// and labels, so that the firewall watcher treats it as isolated too.
func FrontShard(k int) (Network, error) {
	if k < 0 || k > MaxShard {
		return Network{}, fmt.Errorf("front shard %d: must be 0 to %d", k, MaxShard)
	}
	n := Front()
	if k == 0 {
		return n, nil
	}
	// Front returns fresh maps: changing this copy's is safe. A /22 is 4
	// of FrontShardPool's third octet.
	n.Key, n.Name = FrontShardName(k), FrontShardName(k)
	n.Subnets = []string{fmt.Sprintf("172.25.%d.0/22", (k-1)*4), fmt.Sprintf("fd64:6172:7365:%x::/64", k)}
	n.Options["com.docker.network.bridge.name"] = fmt.Sprintf("br-darse-f%d", k)
	return n, nil
}
