#!/bin/sh
# Runs darse's whole test suite against the real parts: installs and starts
# them first (Docker engine, docker-compose, debootstrap, the local images).
# Usage: ./scripts/test.sh   (as root, from the repository)
cd "$(dirname "$0")/.."
. ./scripts/host.sh
prepare_host
go vet ./...
DARSE_INTEGRATION=require go test -count=1 -timeout 30m ./...
# Alone, once everything else is done: restarts the machine's Docker engine
# under a running firewall watcher.
DARSE_INTEGRATION=require go test -count=1 -timeout 5m -tags enginerestart -run TestRealEngineRestart ./cmd/darse-fw/
