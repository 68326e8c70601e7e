package alert

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"time"
)

// Cert is one certificate Traefik keeps: the domain it was asked for and
// when it expires.
type Cert struct {
	Resolver, Domain string
	NotAfter         time.Time
}

// acmeFile is what is read of Traefik's acme.json: per resolver, its
// certificates (the PEM chain, base64 as Go encodes []byte). The
// private keys beside them are never decoded.
type acmeFile map[string]*struct {
	Certificates []struct {
		Domain struct {
			Main string `json:"main"`
		} `json:"domain"`
		Certificate []byte `json:"certificate"`
	} `json:"Certificates"`
}

// maxACMEFile bounds what is read: thousands of certificates and their
// keys take a few MB.
const maxACMEFile = 64 << 20

// ReadCerts reads the certificates of Traefik's acme.json at path, by
// domain. No file is no certificate (ACME off, or none asked for yet). A
// certificate whose bytes do not parse is an error naming its domain;
// the others are still returned.
func ReadCerts(path string) ([]Cert, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxACMEFile+1))
	if err != nil {
		return nil, fmt.Errorf("certificates: read %s: %w", path, err)
	}
	if len(b) > maxACMEFile {
		return nil, fmt.Errorf("certificates: %s is larger than %d MiB", path, maxACMEFile>>20)
	}
	if len(b) == 0 { // Traefik creates it empty before its first certificate
		return nil, nil
	}
	var af acmeFile
	if err := json.Unmarshal(b, &af); err != nil {
		return nil, fmt.Errorf("certificates: %s: %w", path, err)
	}
	var out []Cert
	var errs []error
	for resolver, r := range af {
		if r == nil {
			continue
		}
		for _, c := range r.Certificates {
			notAfter, err := leafNotAfter(c.Certificate)
			if err != nil {
				errs = append(errs, fmt.Errorf("certificates: %s: resolver %s, domain %q: %w", path, resolver, c.Domain.Main, err))
				continue
			}
			out = append(out, Cert{Resolver: resolver, Domain: c.Domain.Main, NotAfter: notAfter})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Domain != out[j].Domain {
			return out[i].Domain < out[j].Domain
		}
		return out[i].Resolver < out[j].Resolver
	})
	return out, errors.Join(errs...)
}

// leafNotAfter is the expiry of the first certificate of a PEM chain.
func leafNotAfter(chain []byte) (time.Time, error) {
	block, _ := pem.Decode(chain)
	if block == nil || block.Type != "CERTIFICATE" {
		return time.Time{}, errors.New("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, err
	}
	return c.NotAfter, nil
}

// certs: a certificate within CertRenewDays of its expiry. Traefik renews
// at 30 days left (Let's Encrypt's 90-day certificates), so one this
// close has failed to renew for two weeks or more.
func (w *Watcher) certs(_ context.Context, now time.Time) ([]Condition, error) {
	if w.cfg.CertRenewDays < 0 || w.ACMEFile == "" {
		return nil, nil
	}
	cs, err := ReadCerts(w.ACMEFile)
	if err != nil && cs == nil {
		return nil, err
	}
	if err != nil { // some certificates unreadable: the others are still watched
		w.log.Warn("alerts", "err", err)
	}
	limit := time.Duration(w.cfg.CertRenewDays) * 24 * time.Hour
	var out []Condition
	for _, c := range cs {
		left := c.NotAfter.Sub(now)
		if left >= limit {
			continue
		}
		domain := oneLine(c.Domain)
		if len(domain) > 253 {
			domain = domain[:253]
		}
		state := fmt.Sprintf("expires %s, in %s", c.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Hour))
		if left <= 0 {
			state = fmt.Sprintf("expired %s", c.NotAfter.UTC().Format(time.RFC3339))
		}
		out = append(out, Condition{Key: KindCert + ":" + c.Resolver + ":" + domain, Kind: KindCert,
			Summary: fmt.Sprintf("certificate of %s not renewing: it %s (less than %d days)", domain, state, w.cfg.CertRenewDays)})
	}
	return out, nil
}
