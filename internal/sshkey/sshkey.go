// Package sshkey reads the SSH public keys members authorize on their
// sites: exactly one key per entry, in authorized_keys form, without
// options, of a type and size worth trusting.
package sshkey

import (
	"bytes"
	"crypto/rsa"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/darse/darse/internal/site"
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
	if strings.Contains(in, "PRIVATE KEY") {
		return nil, refuse("(a private key)", "is a PRIVATE key: never share it; paste the .pub file instead")
	}
	pk, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(in))
	if err != nil {
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
			if rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
				return nil, refuse(in, fmt.Sprintf("is a %d-bit RSA key; at least 2048 bits are needed (or use ssh-keygen -t ed25519)", rk.N.BitLen()))
			}
		}
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
	return &Key{Type: pk.Type(), Fingerprint: ssh.FingerprintSHA256(pk), Line: line, Comment: strings.TrimSpace(comment)}, nil
}
