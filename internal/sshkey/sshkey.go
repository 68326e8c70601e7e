// Package sshkey reads the SSH public keys members authorize on their
// sites: exactly one key per entry, in authorized_keys form, without
// options, of a type and size worth trusting.
package sshkey

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/darse/darse/internal/site"
)

// Bounds of what is accepted: one authorized_keys entry is a few hundred
// bytes (an ssh-rsa 16384-bit one under 3 KiB), and OpenSSH generates RSA
// keys of at most 16384 bits.
const (
	MaxText    = 8 << 10
	MinRSABits = 2048
	MaxRSABits = 16384
)

// Key is a checked public key.
type Key struct {
	Type        string // ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ...
	Fingerprint string // SHA256:..., as ssh-keygen -l prints it
	Line        string // "<type> <base64>", without options or comment
	Comment     string
}

func refuse(value, rule string) error {
	if len(value) > 40 {
		value = value[:40] + "…"
	}
	return &site.FieldError{Field: "key", Value: value, Rule: rule}
}

// Parse reads one public key line ("ssh-ed25519 AAAA... comment").
func Parse(text string) (*Key, error) {
	in := strings.TrimSpace(text)
	if in == "" {
		return nil, refuse(in, "is empty: paste the content of your public key file (id_ed25519.pub)")
	}
	if len(in) > MaxText {
		return nil, refuse(in, fmt.Sprintf("is %d bytes long, over the limit of %d KiB for one key", len(in), MaxText>>10))
	}
	if strings.Contains(in, "PRIVATE KEY") {
		return nil, refuse("(a private key)", "is a PRIVATE key: never share it; paste the .pub file instead")
	}
	pk, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(in))
	if err != nil {
		if bits := rsaBits(in); bits > MaxRSABits {
			return nil, refuse(in, fmt.Sprintf("is a %d-bit RSA key; at most %d bits are accepted (or use ssh-keygen -t ed25519)", bits, MaxRSABits))
		}
		return nil, refuse(in, "is not an SSH public key in authorized_keys form")
	}
	if len(options) > 0 {
		return nil, refuse(in, fmt.Sprintf("carries options (%s): options such as command= or from= are not accepted", strings.Join(options, ",")))
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, refuse(in, "holds more than one key: add them one at a time")
	}
	if strings.ContainsAny(comment, "\r\n") {
		return nil, refuse(in, "holds more than one line")
	}
	switch pk.Type() {
	case ssh.KeyAlgoDSA:
		return nil, refuse(in, "is a DSA key, which is no longer safe: use ssh-keygen -t ed25519")
	case ssh.KeyAlgoRSA:
		if cpk, ok := pk.(ssh.CryptoPublicKey); ok {
			if rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey); ok {
				if bits := rk.N.BitLen(); bits < MinRSABits {
					return nil, refuse(in, fmt.Sprintf("is a %d-bit RSA key; at least %d bits are needed (or use ssh-keygen -t ed25519)", bits, MinRSABits))
				} else if bits > MaxRSABits {
					return nil, refuse(in, fmt.Sprintf("is a %d-bit RSA key; at most %d bits are accepted (or use ssh-keygen -t ed25519)", bits, MaxRSABits))
				}
			}
		}
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
	return &Key{Type: pk.Type(), Fingerprint: ssh.FingerprintSHA256(pk), Line: line, Comment: strings.TrimSpace(comment)}, nil
}

// rsaBits is the modulus size of the ssh-rsa key in an entry that
// x/crypto/ssh refused, 0 if it holds none: ssh refuses moduli over 16384
// bits with a message that names no size.
func rsaBits(in string) int {
	fields := strings.Fields(in)
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] != ssh.KeyAlgoRSA {
			continue
		}
		blob, err := base64.StdEncoding.DecodeString(fields[i+1])
		if err != nil {
			return 0
		}
		var w struct {
			Type string
			E, N *big.Int
			Rest []byte `ssh:"rest"`
		}
		if ssh.Unmarshal(blob, &w) != nil || w.Type != ssh.KeyAlgoRSA {
			return 0
		}
		return w.N.BitLen()
	}
	return 0
}
