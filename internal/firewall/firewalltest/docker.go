package firewalltest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Docker runs the docker CLI and returns its trimmed standard output.
func Docker(args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// echoPackage is built into the echo image.
const echoPackage = "github.com/darse/darse/internal/firewall/firewalltest/echo"

// EchoImage builds the echo command statically and imports it as an
// image (tagged by the binary's hash, so it is imported once per build);
// it returns the image reference. Needs the go command and the module.
func EchoImage() (string, error) {
	dir, err := os.MkdirTemp("", "darse-fw-echo")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "echo")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, echoPackage)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v: %s", echoPackage, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	ref := "darse-fwtest/echo:" + hex.EncodeToString(sum[:6])
	if _, err := Docker("image", "inspect", ref); err == nil {
		return ref, nil
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	tw.WriteHeader(&tar.Header{Name: "echo", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
	tw.Write(data)
	if err := tw.Close(); err != nil {
		return "", err
	}
	cmd := exec.Command("docker", "import", "-c", `ENTRYPOINT ["/echo"]`, "-", ref)
	cmd.Stdin = &tarball
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker import %s: %v: %s", ref, err, out)
	}
	return ref, nil
}

// TestEchoImage is EchoImage for a test.
func TestEchoImage(t testing.TB) string {
	t.Helper()
	ref, err := EchoImage()
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// Network is a dual-stack Docker network created for a test.
type Network struct {
	Name, ID, Bridge string
	Subnet6          netip.Prefix
}

// NewNetwork creates a bridge network with IPv6 enabled on subnet6 (the
// engine picks the IPv4 subnet) and the given labels.
func NewNetwork(name string, subnet6 netip.Prefix, labels ...string) (*Network, error) {
	args := []string{"network", "create", "--ipv6", "--subnet", subnet6.String()}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	id, err := Docker(append(args, name)...)
	if err != nil {
		return nil, err
	}
	return &Network{Name: name, ID: id, Bridge: "br-" + id[:12], Subnet6: subnet6}, nil
}

// NewTestNetwork is NewNetwork, removed when t ends (after the containers
// the test removes in its own cleanups, which run first).
func NewTestNetwork(t testing.TB, name string, subnet6 netip.Prefix, labels ...string) *Network {
	t.Helper()
	n, err := NewNetwork(name, subnet6, labels...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Docker("network", "rm", n.Name) })
	return n
}

// Subnet6 returns a /64 of ours for a test network, distinct per call.
func Subnet6() netip.Prefix {
	var b [16]byte
	copy(b[:], []byte{0xfd, 0x4d, 0x64, 0x66, 0x77}) // fd4d:6466:77xx:xxxx::/64
	id := randomID(3)
	raw, _ := hex.DecodeString(id)
	copy(b[5:8], raw)
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// Addresses returns a container's IPv4 and IPv6 addresses on network.
func Addresses(container, network string) (netip.Addr, netip.Addr, error) {
	out, err := Docker("inspect", "--format",
		fmt.Sprintf(`{{with index .NetworkSettings.Networks %q}}{{.IPAddress}} {{.GlobalIPv6Address}}{{end}}`, network), container)
	if err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("container %s on %s: addresses %q", container, network, out)
	}
	v4, err4 := netip.ParseAddr(f[0])
	v6, err6 := netip.ParseAddr(f[1])
	if err4 != nil || err6 != nil {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("container %s on %s: addresses %q", container, network, out)
	}
	return v4, v6, nil
}
