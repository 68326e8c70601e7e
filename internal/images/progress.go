package images

import (
	"bytes"
	"strings"
)

// Build steps, as Builder.Progress receives them.
const (
	StepResolve  = "debootstrap: resolving packages"
	StepDownload = "debootstrap: downloading packages"
	StepExtract  = "debootstrap: extracting packages"
	StepInstall  = "debootstrap: installing required packages"
	StepPackages = "debootstrap: installing the image's packages"
	StepUpgrade  = "apt: installing the updates and security suites"
	StepTrim     = "trimming the tree"
	StepGoGet    = "go get"
	StepGoBuild  = "go build"
	StepOverlay  = "copying the overlay"
	StepImport   = "importing into the engine"
)

// step reports a step to b.Progress, if set.
func (b *Builder) step(s string) {
	if b.Progress != nil {
		b.Progress(s)
	}
}

// debootstrapStep names the step an "I: ..." line of debootstrap's output
// begins; ok is false for lines that begin none.
func debootstrapStep(line string) (step string, ok bool) {
	msg, found := strings.CutPrefix(strings.TrimSpace(line), "I: ")
	if !found {
		return "", false
	}
	for _, m := range []struct{ prefix, step string }{
		{"Retrieving InRelease", StepResolve},
		{"Checking Release signature", StepResolve},
		{"Valid Release signature", StepResolve},
		{"Retrieving Packages", StepResolve},
		{"Validating Packages", StepResolve},
		{"Resolving dependencies", StepResolve},
		{"Found packages", StepResolve},
		{"Found additional", StepResolve},
		{"Checking component", StepResolve},
		{"Retrieving ", StepDownload},
		{"Validating ", StepDownload},
		{"Extracting ", StepExtract},
		{"Installing core packages", StepInstall},
		{"Unpacking required packages", StepInstall},
		{"Configuring required packages", StepInstall},
		{"Unpacking the base system", StepPackages},
		{"Configuring the base system", StepPackages},
	} {
		if strings.HasPrefix(msg, m.prefix) {
			return m.step, true
		}
	}
	return "", false
}

// stepWriter reads a tool's output line by line and reports each new step
// that parse finds in it.
type stepWriter struct {
	parse  func(string) (string, bool)
	report func(string)
	last   string
	line   []byte
}

func (w *stepWriter) Write(p []byte) (int, error) {
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		if s, ok := w.parse(string(w.line[:i])); ok && s != w.last {
			w.last = s
			w.report(s)
		}
		w.line = w.line[i+1:]
	}
	if len(w.line) > 64<<10 { // a line without end: keep memory bounded
		w.line = w.line[:0]
	}
	return len(p), nil
}
