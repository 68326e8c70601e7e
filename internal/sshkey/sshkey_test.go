package sshkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
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
		pub(t, rsaOfBits(16385)):                  "is a 16385-bit RSA key; at most 16384 bits",
		pub(t, rsaOfBits(30000)):                  "is a 30000-bit RSA key; at most 16384 bits",
		ed + " " + strings.Repeat("c", MaxText):   "over the limit of 8 KiB",
		strings.Repeat("x", 1<<20):                "over the limit of 8 KiB",
	}
	for in, want := range cases {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%.30q) = %v, want %q", in, err, want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "key ") {
			t.Errorf("Parse(%.30q): error %q does not name the field", in, err)
		}
	}
	// The bounds themselves pass: OpenSSH's largest RSA key, a long comment.
	for _, in := range []string{pub(t, rsaOfBits(MaxRSABits)), ed + " " + strings.Repeat("c", MaxText-len(ed)-1)} {
		if _, err := Parse(in); err != nil {
			t.Errorf("Parse(%.30q): %v", in, err)
		}
	}
}

// rsaOfBits is an RSA public key with a modulus of exactly bits bits
// (not a product of primes: generating a real 16384-bit key takes minutes,
// and parsing never looks).
func rsaOfBits(bits int) *rsa.PublicKey {
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	return &rsa.PublicKey{N: n.Or(n, big.NewInt(1)), E: 65537}
}
