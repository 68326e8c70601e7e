package main

import (
	"strings"
	"testing"
	"time"

	"github.com/darse/darse/internal/testenv"
)

func TestStepPrinter(t *testing.T) {
	clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }

	// In a log: one line per step, with when it began.
	var log testenv.Buffer
	p := newStepPrinter(&log, false, "nginx (darse/nginx:bookworm): ")
	p.now, p.start = now, clock
	p.Step("debootstrap: downloading packages")
	clock = clock.Add(65 * time.Second)
	p.Step("importing into the engine")
	p.Done("built in 1m40s")
	want := "nginx (darse/nginx:bookworm): debootstrap: downloading packages (at 0s)\n" +
		"nginx (darse/nginx:bookworm): importing into the engine (at 1m5s)\n" +
		"nginx (darse/nginx:bookworm): built in 1m40s\n"
	if log.String() != want {
		t.Errorf("log output:\n%q\nwant\n%q", log.String(), want)
	}

	// On a terminal: one line rewritten in place, then the outcome.
	var tty testenv.Buffer
	p = newStepPrinter(&tty, true, "php (t): ")
	p.now, p.start = now, clock
	p.Step("debootstrap: resolving packages")
	clock = clock.Add(3 * time.Second)
	p.Step("trimming the tree")
	p.Done("built in 3s")
	got := tty.String()
	for _, w := range []string{"\r\033[Kphp (t): debootstrap: resolving packages, 0s", "\r\033[Kphp (t): trimming the tree, 3s"} {
		if !strings.Contains(got, w) {
			t.Errorf("terminal output %q lacks %q", got, w)
		}
	}
	if !strings.HasSuffix(got, "\r\033[Kphp (t): built in 3s\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("terminal output %q: want one line ending in the outcome", got)
	}

	// Nothing built: no live line to clear.
	var quiet testenv.Buffer
	p = newStepPrinter(&quiet, true, "sftp (t): ")
	p.Done("already present")
	if quiet.String() != "sftp (t): already present\n" {
		t.Errorf("present image: %q", quiet.String())
	}
}
