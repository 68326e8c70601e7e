// Package alerttest gives tests a real SMTP server on loopback: Mailpit,
// built from the Go module proxy (or found in the build cache), whose
// HTTP API says what it received.
package alerttest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/darse/darse/internal/images"
	"github.com/darse/darse/internal/testenv"
)

// MailpitModule is the pinned Mailpit the tests run.
func MailpitModule() images.GoModule {
	return images.GoModule{
		Module:  "github.com/axllent/mailpit",
		Version: "v1.33.1",
		Package: "github.com/axllent/mailpit",
		Binary:  "/usr/local/bin/mailpit",
		Ldflags: "-s -w",
	}
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// MailpitBinary builds Mailpit once per test binary.
func MailpitBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short (needs Mailpit)")
	}
	buildOnce.Do(func() {
		buildPath, buildErr = (&images.Builder{}).EnsureTool(context.Background(), MailpitModule())
	})
	if buildErr != nil {
		why := fmt.Sprintf("mailpit could not be built from the module proxy: %v", buildErr)
		if testenv.Required() {
			t.Fatalf("integration test cannot run: %s (DARSE_INTEGRATION=require)", why)
		}
		t.Skip("integration test: " + why)
	}
	return buildPath
}

// Mailpit is a running Mailpit.
type Mailpit struct {
	SMTPHost string
	SMTPPort int
	API      string // http://127.0.0.1:PORT
}

// Message is one received message, as Mailpit's list gives it.
type Message struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	From    struct {
		Address string `json:"Address"`
	} `json:"From"`
	To []struct {
		Address string `json:"Address"`
	} `json:"To"`
	Snippet string `json:"Snippet"`
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartMailpit runs Mailpit on two free loopback ports, killed when the
// test ends.
func StartMailpit(t testing.TB) *Mailpit {
	t.Helper()
	bin := MailpitBinary(t)
	smtpPort, httpPort := freePort(t), freePort(t)
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--smtp", "127.0.0.1:"+strconv.Itoa(smtpPort),
		"--listen", "127.0.0.1:"+strconv.Itoa(httpPort),
		"--database", filepath.Join(dir, "mailpit.db"),
		"--disable-version-check")
	log := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	m := &Mailpit{SMTPHost: "127.0.0.1", SMTPPort: smtpPort, API: "http://127.0.0.1:" + strconv.Itoa(httpPort)}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := m.Messages(); err == nil {
			return m
		} else if time.Now().After(deadline) {
			t.Fatalf("mailpit did not answer: %v\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Messages lists what Mailpit received, newest first.
func (m *Mailpit) Messages() ([]Message, error) {
	resp, err := http.Get(m.API + "/api/v1/messages?limit=200")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("mailpit messages: %s", resp.Status)
	}
	var out struct {
		Messages []Message `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("mailpit messages: %w", err)
	}
	return out.Messages, nil
}

// WaitMessages waits until Mailpit holds at least n messages (bounded by
// timeout) and returns them, oldest first.
func (m *Mailpit) WaitMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms, err := m.Messages()
		if err == nil && len(ms) >= n {
			for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
				ms[i], ms[j] = ms[j], ms[i]
			}
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit: want %d messages, have %d (%v)", n, len(ms), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
