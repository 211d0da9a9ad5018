// Package buildconfig holds the tests that keep the distribution's pinned
// versions in one piece: builder-config.yaml, the root go.mod and the tools
// modules must name the same collector core and contrib releases, and every
// component of this repository must be part of the distribution.
package buildconfig // import "github.com/nerc-project/ai-telemetry-collector/internal/buildconfig"
