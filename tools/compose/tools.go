//go:build tools

// Package tools pins compose's main package, so that go.sum holds what
// building it needs.
package tools

import _ "github.com/docker/compose/v2/cmd"
