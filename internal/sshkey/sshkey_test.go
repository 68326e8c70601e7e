package sshkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func pub(t *testing.T, key any) string {
	t.Helper()
	pk, err := ssh.NewPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
}

func TestParse(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ed := pub(t, edPub)
	k, err := Parse("  " + ed + " alice@laptop \n")
	if err != nil {
		t.Fatal(err)
	}
	if k.Type != "ssh-ed25519" || !strings.HasPrefix(k.Fingerprint, "SHA256:") || k.Line != ed || k.Comment != "alice@laptop" {
		t.Fatalf("key %+v", k)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	cases := map[string]string{
		"":                             "is empty",
		"not a key":                    "is not an SSH public key",
		`command="rm -rf /" ` + ed:     "options such as command=",
		`no-pty,from="10.0.0.1" ` + ed: "options such as command=",
		ed + " a\n" + ed + " b":        "more than one key",
		"-----BEGIN OPENSSH PRIVATE KEY-----\nxx": "PRIVATE key",
		pub(t, &small.PublicKey):                  "1024-bit RSA key",
	}
	for in, want := range cases {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%.30q) = %v, want %q", in, err, want)
		}
	}
}
