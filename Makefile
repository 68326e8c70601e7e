# Conveniences over the scripts; the README's commands need no make.
.PHONY: up test short bench build vet

build:
	go build -o bin/darse ./cmd/darse

up:
	./scripts/up.sh

test:
	./scripts/test.sh

short:
	go test -short ./...

vet:
	go vet ./...

bench: build
	go run ./cmd/bench
