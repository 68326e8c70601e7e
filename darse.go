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

// Core holds the platform's infrastructure projects (core/front), rendered
// into <srv>/core.
//
//go:embed all:core
var Core embed.FS

// Web holds the panel's views (web/templates) and static assets
// (web/static), served by `darse panel` from the binary itself.
//
//go:embed all:web
var Web embed.FS
