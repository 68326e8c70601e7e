# Conveniences over the scripts; the README's commands need no make.
.PHONY: up test short bench build vet

# The commit and build time go in with -ldflags: Go records no VCS
# information from a git worktree nor with -buildvcs=false.
# `make build VERSION=0.2.0` for a release.
VERSION_PKG := github.com/darse/darse/internal/version
LDFLAGS := -X $(VERSION_PKG).Commit=$(shell git rev-parse --short HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty) \
	-X $(VERSION_PKG).Date=$(shell date -u +%Y-%m-%dT%H:%M:%SZ) \
	$(if $(VERSION),-X $(VERSION_PKG).Version=$(VERSION))

# Static binaries: platform up puts them in the darse image, which has no libc.
build:
	CGO_ENABLED=0 go build -ldflags '$(LDFLAGS)' -o bin/darse ./cmd/darse
	CGO_ENABLED=0 go build -ldflags '$(LDFLAGS)' -o bin/darse-fw ./cmd/darse-fw

up:
	./scripts/up.sh

test:
	./scripts/test.sh

short:
	go test -short ./...

vet:
	go vet ./...

# The benches measure darse beside docker compose v2, built once into
# bin/ from tools/compose (its go.mod pins the version; CI's tests do not
# need it), and beside Debian's docker-compose 1.29.
# `make bench BENCH="density -density-sizes 20,50"`: flags, then suites.
bench: build bin/docker-compose-v2
	go run ./cmd/bench $(BENCH)

bin/docker-compose-v2: tools/compose/go.mod tools/compose/go.sum
	./tools/compose/build.sh $@
	touch $@
