package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

var composeV2Bin = flag.String("compose-v2", "bin/docker-compose-v2", "docker compose v2 binary (make bench builds it: tools/compose/build.sh)")

// peer is a compose CLI darse is measured beside: docker compose v2, the
// one users run today, and Debian's docker-compose 1.29, the operators'.
type peer struct {
	name string // as printed
	bin  string
}

// peers returns compose v2 then 1.29, both required: a bench that
// silently drops a peer would print a ratio against nothing.
func peers() ([]peer, error) {
	v2, err := filepath.Abs(*composeV2Bin)
	if err != nil {
		return nil, fmt.Errorf("-compose-v2: %w", err)
	}
	if st, err := os.Stat(v2); err != nil || st.IsDir() {
		return nil, fmt.Errorf("-compose-v2 %s: no such binary (build it with tools/compose/build.sh, or run make bench)", v2)
	}
	v1, err := exec.LookPath("docker-compose")
	if err != nil {
		return nil, fmt.Errorf("docker-compose (Debian's 1.29) not found: %w", err)
	}
	return []peer{{"compose v2", v2}, {"compose 1.29", v1}}, nil
}

// run runs the peer in a project folder.
func (p peer) run(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s in %s: %v: %s", p.name, strings.Join(args, " "), dir, err, out)
	}
	return nil
}

// ratio prints a/b, or "-" when b is zero.
func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
