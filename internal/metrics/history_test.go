package metrics

import (
	"testing"
	"time"

	"github.com/darse/darse/internal/store"
)

func TestPointsAreWhatCountersGrewBy(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 1, 0, 0, time.UTC)
	first := &Pass{At: at.Add(-time.Minute), Sites: []Site{
		{Name: "blog", CPUSeconds: 10, MemoryBytes: 100, ReceiveBytes: 1000, TransmitBytes: 2000},
	}}
	if pts := Points(nil, first); len(pts) != 0 {
		t.Fatalf("a first pass has no points: %+v", pts)
	}
	prev := map[string]Site{"blog": first.Sites[0], "shop": {Name: "shop", CPUSeconds: 50}}
	second := &Pass{At: at, Sites: []Site{
		{Name: "blog", CPUSeconds: 12.5, MemoryBytes: 300, ReceiveBytes: 1500, TransmitBytes: 2600},
		{Name: "new", CPUSeconds: 1, MemoryBytes: 50},  // no previous figure
		{Name: "shop", CPUSeconds: 2, MemoryBytes: 70}, // went back: created again
	}}
	pts := Points(prev, second)
	want := []store.Point{
		{Site: "blog", Step: 60, At: at, CPUMilli: 2500, Memory: 300, Receive: 500, Transmit: 600},
		{Site: store.HostSite, Step: 60, At: at, CPUMilli: 2500, Memory: 420, Receive: 500, Transmit: 600},
	}
	if len(pts) != len(want) {
		t.Fatalf("points: %+v", pts)
	}
	for i := range want {
		if pts[i] != want[i] {
			t.Errorf("point %d: %+v, want %+v", i, pts[i], want[i])
		}
	}
}
