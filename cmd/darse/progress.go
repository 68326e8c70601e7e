package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// stepPrinter shows what a long build is doing. On a terminal it keeps one
// line rewritten in place (step and elapsed time, every second); in a log
// it prints one line per step, with the time it began at.
type stepPrinter struct {
	w      io.Writer
	live   bool
	prefix string
	now    func() time.Time

	mu    sync.Mutex
	start time.Time
	step  string
	done  chan struct{}
	wg    sync.WaitGroup
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newStepPrinter(w io.Writer, live bool, prefix string) *stepPrinter {
	p := &stepPrinter{w: w, live: live, prefix: prefix, now: time.Now, done: make(chan struct{})}
	p.start = p.now()
	if live {
		p.wg.Add(1)
		go p.tick(time.Second)
	}
	return p
}

// Step is Builder.Progress.
func (p *stepPrinter) Step(step string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.step = step
	if p.live {
		p.redraw()
		return
	}
	fmt.Fprintf(p.w, "%s%s (at %s)\n", p.prefix, step, p.elapsed())
}

func (p *stepPrinter) tick(every time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.mu.Lock()
			if p.step != "" {
				p.redraw()
			}
			p.mu.Unlock()
		}
	}
}

// redraw rewrites the live line: carriage return, clear to its end.
func (p *stepPrinter) redraw() {
	fmt.Fprintf(p.w, "\r\033[K%s%s, %s", p.prefix, p.step, p.elapsed())
}

func (p *stepPrinter) elapsed() string { return p.now().Sub(p.start).Round(time.Second).String() }

// Done ends the live line (if any) and prints the outcome on its own line.
func (p *stepPrinter) Done(outcome string) {
	close(p.done)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live && p.step != "" {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "%s%s\n", p.prefix, outcome)
}
