#!/bin/sh
# Builds docker compose v2 (this folder's module, pinned in go.mod) into
# OUT (default bin/docker-compose-v2 at the repository's root), once: an
# existing binary of the pinned version is kept. The Go build cache makes
# a rebuild after `rm` a link, not a compile (cold: minutes on 2 cores).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../bin/docker-compose-v2}
version=v2.40.3 # the version go.mod requires
if [ -x "$out" ] && "$out" version --short 2>/dev/null | grep -qx "${version#v}"; then
	exit 0
fi
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out") # absolute: the build runs here
cd "$here"
CGO_ENABLED=0 go build -trimpath -mod=readonly \
	-ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$version" \
	-o "$out.tmp" github.com/docker/compose/v2/cmd
mv "$out.tmp" "$out"
