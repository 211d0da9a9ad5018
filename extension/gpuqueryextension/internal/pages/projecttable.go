package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"html"
	"html/template"
	"strconv"
	"strings"
)

// projectTableHTML is the overview's GPU-hours table body: a row per
// project, its link keeping the window (query, "" or "?window=..."). Like
// gridHTML it is written here: html/template's per-action reflection on a
// fleet's 400 rows was 8.5 of a manager overview's 29.5 CPU-ms
// (docs/benchmarks.md). Values are escaped as html/template would.
func projectTableHTML(rows []projectRow, query string) template.HTML {
	var b strings.Builder
	text := func(s string) { b.WriteString(html.EscapeString(s)) }
	var num []byte
	hours := func(v float64) { num = strconv.AppendFloat(num[:0], v, 'f', 2, 64); b.Write(num) }
	for _, p := range rows {
		b.WriteString(`<tr data-project="`)
		text(p.Namespace)
		b.WriteString(`"><th scope="row"><a href="`)
		text(projectPath(p.Hub, p.Cluster, p.Namespace) + query)
		b.WriteString(`">`)
		text(p.Namespace)
		b.WriteString(`</a>`)
		if p.Name != "" {
			b.WriteString(`<br><small>`)
			text(p.Name)
			b.WriteString(`</small>`)
		}
		b.WriteString(`</th><td>`)
		text(p.Cluster)
		b.WriteString(`</td><td>`)
		text(p.PI)
		b.WriteString(`</td><td class="num" data-col="allocated">`)
		hours(p.Allocated)
		b.WriteString(`</td><td class="num" data-col="used">`)
		hours(p.Used)
		b.WriteString(`</td><td class="num" data-col="idle">`)
		hours(p.Idle)
		b.WriteString(`</td></tr>`)
	}
	return template.HTML(b.String()) //nolint:gosec // every value above is escaped
}
