package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import "html/template"

// projectTableHTML is the overview's GPU-hours table body: a row per
// project, its link keeping the window (query, "" or "?window=..."). Like
// gridHTML it is written here: html/template's per-action reflection on a
// fleet's 400 rows was 8.5 of a manager overview's 29.5 CPU-ms
// (docs/benchmarks.md). Values are escaped as html/template would (htmlBuilder).
func projectTableHTML(rows []projectRow, query string) template.HTML {
	var b htmlBuilder
	for _, p := range rows {
		b.raw(`<tr data-project="`)
		b.text(p.Namespace)
		b.raw(`"><th scope="row"><a href="`)
		b.text(projectPath(p.Hub, p.Cluster, p.Namespace) + query)
		b.raw(`">`)
		b.text(p.Namespace)
		b.raw(`</a>`)
		if p.Name != "" {
			b.raw(`<br><small>`)
			b.text(p.Name)
			b.raw(`</small>`)
		}
		b.raw(`</th><td>`)
		b.text(p.Cluster)
		b.raw(`</td><td>`)
		b.text(p.PI)
		b.raw(`</td><td class="num" data-col="allocated">`)
		b.raw(hoursText(p.Allocated))
		b.raw(`</td><td class="num" data-col="used">`)
		b.raw(hoursText(p.Used))
		b.raw(`</td><td class="num" data-col="idle">`)
		b.raw(hoursText(p.Idle))
		b.raw(`</td></tr>`)
	}
	return b.html()
}
