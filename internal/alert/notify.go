package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"time"
)

// Message is what one channel tells about an incident's opening or
// resolution.
type Message struct {
	Incident int64     `json:"incident"`
	State    string    `json:"state"` // "open" or "resolved"
	Kind     string    `json:"kind"`
	Site     string    `json:"site,omitempty"`
	Summary  string    `json:"summary"`
	Opened   time.Time `json:"opened_at"`
	Resolved time.Time `json:"resolved_at,omitzero"`
	Host     string    `json:"host"`
}

// Subject is the message's one line.
func (m Message) Subject() string {
	word := "ALERT"
	if m.State == "resolved" {
		word = "RESOLVED"
	}
	return oneLine(fmt.Sprintf("[darse %s] %s: %s", m.Host, word, m.Summary))
}

// Channel delivers messages: Bit is its bit in the store's told masks.
type Channel interface {
	Name() string
	Bit() int
	Send(ctx context.Context, m Message) error
}

// Mailer sends alert mail over SMTP.
type Mailer struct {
	cfg     SMTP
	timeout time.Duration
}

// NewMailer sends through cfg's server.
func NewMailer(cfg SMTP) *Mailer { return &Mailer{cfg: cfg, timeout: 30 * time.Second} }

func (*Mailer) Name() string { return "mail" }
func (*Mailer) Bit() int     { return 1 }

// Send delivers m to every address of To in one SMTP transaction,
// upgrading to TLS when the server offers it.
func (ml *Mailer) Send(ctx context.Context, m Message) error {
	addr := net.JoinHostPort(ml.cfg.Host, strconv.Itoa(ml.cfg.Port))
	d := net.Dialer{Timeout: ml.timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(ml.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, ml.cfg.Host)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer c.Close()
	if err := c.Hello(hostname()); err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: ml.cfg.Host}); err != nil {
			return fmt.Errorf("smtp %s: starttls: %w", addr, err)
		}
	}
	if ml.cfg.Username != "" {
		pw, err := os.ReadFile(ml.cfg.PasswordFile)
		if err != nil {
			return fmt.Errorf("smtp password: %w", err)
		}
		// PlainAuth itself refuses to send the password in clear but to loopback.
		if err := c.Auth(smtp.PlainAuth("", ml.cfg.Username, strings.TrimSpace(string(pw)), ml.cfg.Host)); err != nil {
			return fmt.Errorf("smtp %s: auth: %w", addr, err)
		}
	}
	if err := c.Mail(ml.cfg.From); err != nil {
		return fmt.Errorf("smtp %s: from: %w", addr, err)
	}
	for _, to := range ml.cfg.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("smtp %s: to %s: %w", addr, to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: data: %w", addr, err)
	}
	if _, err := w.Write(ml.compose(m)); err != nil {
		return fmt.Errorf("smtp %s: data: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: data: %w", addr, err)
	}
	return c.Quit()
}

// compose is the message's bytes: headers from fixed or validated parts
// only, a plain-text body.
func (ml *Mailer) compose(m Message) []byte {
	var b bytes.Buffer
	id := make([]byte, 12)
	rand.Read(id)
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\n",
		ml.cfg.From, strings.Join(ml.cfg.To, ", "), m.Subject(), time.Now().Format(time.RFC1123Z), hex.EncodeToString(id), hostname())
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nX-Darse-Incident: %d\r\nX-Darse-State: %s\r\n\r\n", m.Incident, m.State)
	fmt.Fprintf(&b, "%s\r\n\r\nkind: %s\r\n", m.Summary, m.Kind)
	if m.Site != "" {
		fmt.Fprintf(&b, "site: %s\r\n", m.Site)
	}
	fmt.Fprintf(&b, "opened: %s\r\n", m.Opened.UTC().Format(time.RFC3339))
	if !m.Resolved.IsZero() {
		fmt.Fprintf(&b, "resolved: %s\r\n", m.Resolved.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "incident: %d\r\n", m.Incident)
	return b.Bytes()
}

// Poster POSTs alerts as JSON to a webhook.
type Poster struct {
	url    string
	client *http.Client
}

// NewPoster posts to cfg's URL.
func NewPoster(cfg Webhook) *Poster {
	return &Poster{url: cfg.URL, client: &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (*Poster) Name() string { return "webhook" }
func (*Poster) Bit() int     { return 2 }

// Send posts m; any answer but 2xx is a failure, tried again later.
func (p *Poster) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "darse-alerts")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: %s", resp.Status)
	}
	return nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, " \r\n<>") {
		return "darse"
	}
	return h
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
