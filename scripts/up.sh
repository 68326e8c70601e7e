#!/bin/sh
# Brings darse up on this machine: installs and starts what it needs,
# builds the platform's images locally, and serves a demo site.
# Usage: ./scripts/up.sh   (as root, from the repository)
cd "$(dirname "$0")/.."
. ./scripts/host.sh
prepare_host

srv="${DARSE_SRV:-/srv}"
if ./bin/darse site status demo >/dev/null 2>&1; then
	./bin/darse site up demo
else
	./bin/darse site create demo --template static
fi
./bin/darse site status demo
ip=$(./bin/darse site status demo --json | sed -n 's/.*"ipv4": "\([0-9.]*\)".*/\1/p' | head -1)
cat <<MSG

darse is up. The demo site's files are in $srv/users/demo/data/.
  curl http://$ip:8080/        # the demo site, straight from its container
  ./bin/darse site ls          # every site and its state
  ./bin/darse --help           # everything else
MSG
