package images

import (
	"io"
	"slices"
	"strings"
	"testing"
)

// debootstrap's output for a minbase bookworm tree, abridged.
const debootstrapOutput = `I: Retrieving InRelease 
I: Checking Release signature
I: Valid Release signature (key id 4D64FEC119C2029067D6E791F8D2585B8783D481)
I: Retrieving Packages 
I: Validating Packages 
I: Resolving dependencies of required packages...
I: Resolving dependencies of base packages...
I: Checking component main on http://deb.debian.org/debian...
I: Retrieving adduser 3.134
I: Validating adduser 3.134
I: Retrieving nginx-light 1.22.1-9
I: Validating nginx-light 1.22.1-9
I: Chosen extractor for .deb packages: dpkg-deb
I: Extracting adduser...
I: Extracting base-files...
I: Installing core packages...
I: Unpacking required packages...
I: Unpacking adduser...
I: Configuring required packages...
I: Configuring debianutils...
I: Unpacking the base system...
I: Unpacking nginx-light...
I: Configuring the base system...
I: Configuring nginx-light...
W: a warning
I: Base system installed successfully.
`

func TestDebootstrapSteps(t *testing.T) {
	var got []string
	w := &stepWriter{parse: debootstrapStep, report: func(s string) { got = append(got, s) }, last: StepResolve}
	// Written in odd pieces, as a pipe delivers it.
	r := strings.NewReader(debootstrapOutput)
	buf := make([]byte, 7)
	if _, err := io.CopyBuffer(w, struct{ io.Reader }{r}, buf); err != nil {
		t.Fatal(err)
	}
	want := []string{StepDownload, StepExtract, StepInstall, StepPackages}
	if !slices.Equal(got, want) {
		t.Errorf("steps:\n got %q\nwant %q", got, want)
	}
}
