package topology // import "github.com/nerc-project/ai-telemetry-collector/internal/topology"

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Paths of the generated vocabulary documents, relative to the repository root.
const (
	MarkdownDocPath = "docs/semantic-conventions.md"
	JSONLDDocPath   = "docs/vocabulary.jsonld"
)

// RenderMarkdown renders docs/semantic-conventions.md from Vocabulary.
func RenderMarkdown() []byte {
	var b bytes.Buffer
	b.WriteString("<!-- Generated from internal/topology by `make generate`. DO NOT EDIT. -->\n\n")
	b.WriteString("# Semantic conventions of the AI Telemetry collector\n\n")
	b.WriteString("Every component (the GPU model processor, the Alertmanager receiver, the Keycloak extension) names\n")
	b.WriteString("the GPU topology with these attributes, defined once in `internal/topology`. OpenTelemetry semantic\n")
	b.WriteString("conventions are used where they exist; NVIDIA-specific facts go under the `nvidia.` prefix, and\n")
	b.WriteString("the project's own under `aitelemetry.`. The same terms, as a JSON-LD `@context`, are in\n")
	b.WriteString("[vocabulary.jsonld](vocabulary.jsonld).\n\n")
	b.WriteString("The model: hub > cluster (`k8s.cluster.name`) > AI node (`k8s.node.name`) > GPU device (`hw.id` = UUID)\n")
	b.WriteString("> GPU slice (`hw.id` = `{UUID}/{GPU_I_ID}`, `hw.parent` = the GPU); a research project is a namespace on a cluster.\n\n")
	b.WriteString("| Attribute | Type | Where | Defined by | Description | Example |\n")
	b.WriteString("| --------- | ---- | ----- | ---------- | ----------- | ------- |\n")
	for _, a := range Vocabulary {
		fmt.Fprintf(&b, "| <a id=%q></a>`%s` | %s | %s | %s | %s | %s |\n",
			anchor(a.Key), a.Key, a.Type, a.Where, a.Origin, escapeCell(a.Description), exampleCell(a.Example))
	}
	return b.Bytes()
}

// RenderJSONLD renders docs/vocabulary.jsonld: a JSON-LD @context mapping each
// attribute to an IRI and its type.
func RenderJSONLD() ([]byte, error) {
	type term struct {
		ID      string `json:"@id"`
		Type    string `json:"@type,omitempty"`
		Comment string `json:"rdfs:comment"`
	}
	ctx := map[string]any{
		"rdfs": "http://www.w3.org/2000/01/rdf-schema#",
		"xsd":  "http://www.w3.org/2001/XMLSchema#",
	}
	for _, a := range Vocabulary {
		if strings.Contains(a.Key, "<") {
			continue // prefixes are not terms
		}
		iri := a.IRI
		if iri == "" {
			iri = projectIRI
		}
		ctx[a.Key] = term{ID: iri + anchor(a.Key), Type: xsdType(a.Type), Comment: a.Description}
	}
	out, err := json.MarshalIndent(map[string]any{"@context": ctx}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func anchor(key string) string { return strings.NewReplacer(".", "-", "<", "", ">", "").Replace(key) }

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

func exampleCell(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

func xsdType(t string) string {
	switch t {
	case "int":
		return "xsd:long"
	case "double":
		return "xsd:double"
	case "boolean":
		return "xsd:boolean"
	}
	return "xsd:string"
}
