// Package darse holds the repository's data files that the darse binaries
// carry with them.
package darse

import "embed"

// Images holds the platform's image definitions: images/<name>/image.json
// and an optional images/<name>/rootfs/ overlay (see internal/images).
//
//go:embed all:images
var Images embed.FS

// Templates holds the site templates shipped with darse, installed into
// <srv>/templates.
//
//go:embed all:templates
var Templates embed.FS

// Projects holds the platform's own compose projects: core/front (Traefik,
// the firewall watcher) and apps/panel, rendered into <srv>/core and
// <srv>/apps by `darse platform up`.
//
//go:embed all:core all:apps
var Projects embed.FS

// Compose is the top-level docker-compose.yml, rendered into <srv> by
// `darse platform up`: a one-shot service running `darse platform up`
// from the darse image.
//
//go:embed docker-compose.yml
var Compose []byte

// Web holds the panel's views (web/templates) and static assets
// (web/static), served by `darse panel` from the binary itself.
//
//go:embed all:web
var Web embed.FS
