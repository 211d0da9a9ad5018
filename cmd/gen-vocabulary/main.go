// Command gen-vocabulary writes the documents generated from the shared
// vocabulary in internal/topology (make generate).
package main

import (
	"fmt"
	"os"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

func main() {
	jsonld, err := topology.RenderJSONLD()
	if err == nil {
		err = os.WriteFile(topology.JSONLDDocPath, jsonld, 0o644) //nolint:gosec // a public document
	}
	if err == nil {
		err = os.WriteFile(topology.MarkdownDocPath, topology.RenderMarkdown(), 0o644) //nolint:gosec // a public document
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-vocabulary:", err)
		os.Exit(1)
	}
}
