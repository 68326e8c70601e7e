#!/bin/sh
# Runs darse's whole test suite against the real parts, on an engine of
# its own: installs what the tests need (the platform's packages, and the
# test-only ones: Chromium), starts a second dockerd in the network
# namespace darse-test (scripts/test-engine.sh), gives it the platform's
# images, and runs every test in that namespace against it. A platform
# running on the host is left alone, and checked to be
# (scripts/live-probe.sh).
# Usage: ./scripts/test.sh   (as root, from the repository)
cd "$(dirname "$0")/.."
. ./scripts/host.sh
. ./scripts/test-engine.sh
. ./scripts/live-probe.sh

need_root
need_go
install_platform_packages
install_packages chromium openssh-client dnsmasq-base
# named, the DNS server the wildcard certificate's test updates (RFC 2136).
# The test runs its own; the package's service, started on the host's
# port 53 by the install, is not wanted there.
install_packages bind9
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled named >/dev/null 2>&1; then
	systemctl disable --now named >/dev/null 2>&1 || true
fi
build_darse
go vet ./...
# Everything Go needs, fetched and compiled here: the test namespace has
# no way out (GOPROXY=off there).
go test -count=1 -exec /bin/true ./... >/dev/null
go test -count=1 -exec /bin/true -tags enginerestart ./cmd/darse-fw/ ./cmd/darse/ >/dev/null
go build -o /dev/null github.com/letsencrypt/pebble/v2/cmd/pebble github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv
# restic's REST server, built for the backup tests (restic itself is built
# by build_darse); a short backup round trip on loopback builds and checks it.
go test -count=1 -run 'TestSiteRoundTrip/rest' ./internal/backup/ >/dev/null
# Mailpit, the SMTP server on loopback the alert tests mail to, built the same way.
go test -count=1 -run TestMailThroughRealSMTP ./internal/alert/ >/dev/null

start_live_probe
trap 'stop_test_engine' EXIT
start_test_engine
load_test_images
status=0
# The image build test needs Debian's mirrors, which the test namespace
# cannot reach: it runs here, against the test engine, and is left out
# of the run in the namespace below.
DOCKER_HOST=$TEST_DOCKER_HOST DARSE_INTEGRATION=require go test -count=1 -run TestBuildWithUpdatesAndUpdate ./internal/images/ || status=1
# One package at a time: each firewall test runs a watcher of its own in
# the one test namespace, and cmd/darse's platforms run theirs; kept
# apart, no watcher's tenant rules meet another test's containers.
in_test_env env DARSE_INTEGRATION=require go test -p 1 -count=1 -timeout 40m -skip TestBuildWithUpdatesAndUpdate ./... || status=1
# Alone, once everything else is done: they stop the test engine (its
# restart under a running firewall watcher; a simulated reboot).
if [ "$status" = 0 ]; then
	in_test_env env DARSE_INTEGRATION=require go test -count=1 -timeout 5m -tags enginerestart -run TestRealEngineRestart ./cmd/darse-fw/ || status=1
	in_test_env env DARSE_INTEGRATION=require go test -count=1 -timeout 10m -tags enginerestart -run TestSimulatedReboot ./cmd/darse/ || status=1
	# The soak: 1,100 sites (300 with SFTP) through Traefik, the engine
	# restarted under them (cmd/darse/soak_test.go). Last: it fills the engine.
	in_test_env env DARSE_INTEGRATION=require go test -count=1 -timeout 30m -tags enginerestart -run TestSoak ./cmd/darse/ || status=1
fi
stop_live_probe || status=1
exit "$status"
