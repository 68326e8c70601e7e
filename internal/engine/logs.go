package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// maxLogBytes bounds what Logs returns, whatever the lines.
const maxLogBytes = 1 << 20

// Logs returns the last lines (stdout and stderr, with timestamps) of a container.
func (e *Engine) Logs(ctx context.Context, id string, tail int) (string, error) {
	rc, err := e.c.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Tail: strconv.Itoa(tail)})
	if err != nil {
		return "", fmt.Errorf("logs of %s: %w", id, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	w := &capped{w: &buf, left: maxLogBytes}
	if _, err := stdcopy.StdCopy(w, w, rc); err != nil && err != errCapped {
		return buf.String(), fmt.Errorf("logs of %s: %w", id, err)
	}
	return buf.String(), nil
}

var errCapped = fmt.Errorf("log output capped at %d bytes", maxLogBytes)

type capped struct {
	w    io.Writer
	left int
}

func (c *capped) Write(p []byte) (int, error) {
	if len(p) > c.left {
		c.w.Write(p[:c.left])
		c.left = 0
		return 0, errCapped
	}
	c.left -= len(p)
	return c.w.Write(p)
}

// Usage is a container's current resource use.
type Usage struct {
	CPUPercent float64 // of one CPU: 150 means one and a half
	MemBytes   uint64  // without the page cache
	MemLimit   uint64
	Pids       uint64
}

// Usage samples a running container twice, a second apart (the engine
// does the waiting), to give its CPU use as well as its memory.
func (e *Engine) Usage(ctx context.Context, id string) (Usage, error) {
	var u Usage
	res, err := e.c.ContainerStats(ctx, id, client.ContainerStatsOptions{IncludePreviousSample: true})
	if err != nil {
		return u, fmt.Errorf("stats of %s: %w", id, err)
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return u, fmt.Errorf("stats of %s: %w", id, err)
	}
	return usage(s), nil
}

// usage computes what `docker stats` shows from one stats record.
func usage(s container.StatsResponse) Usage {
	u := Usage{MemLimit: s.MemoryStats.Limit, Pids: s.PidsStats.Current}
	cpu := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sys := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	cpus := float64(s.CPUStats.OnlineCPUs)
	if cpus == 0 {
		cpus = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if cpu > 0 && sys > 0 {
		u.CPUPercent = cpu / sys * cpus * 100
	}
	u.MemBytes = s.MemoryStats.Usage
	// cgroup v2 counts the page cache in usage; docker stats leaves it out.
	for _, k := range []string{"inactive_file", "total_inactive_file"} {
		if v, ok := s.MemoryStats.Stats[k]; ok && v < u.MemBytes {
			u.MemBytes -= v
			break
		}
	}
	return u
}
