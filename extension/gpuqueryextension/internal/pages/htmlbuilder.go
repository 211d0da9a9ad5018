package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"html"
	"html/template"
	"strings"
)

// htmlBuilder writes the parts of a page made outside html/template
// (gridHTML, projectTableHTML). Every value goes through text, which escapes
// as html/template does for text and for a double-quoted attribute; raw is
// for the callers' own markup and numbers.
type htmlBuilder struct{ strings.Builder }

// text writes a value, escaped (a strings.Builder's writes never fail).
func (b *htmlBuilder) text(s string) { _, _ = b.WriteString(html.EscapeString(s)) }

// raw writes markup of this package's own, or a number.
func (b *htmlBuilder) raw(s string) { _, _ = b.WriteString(s) }

func (b *htmlBuilder) html() template.HTML {
	return template.HTML(b.String()) //nolint:gosec // values went through text
}
