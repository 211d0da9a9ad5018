package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"html"
	"html/template"
	"net/url"
	"strings"
)

// gridHTML is a cluster's nodes as the overview's grid: a cell per GPU, a
// MIG GPU's slices inside it. It is written here rather than by
// html/template, whose reflection and escaping per action, ten of them a
// GPU, were most of a manager overview's rendering at 1,000 GPUs; with the
// project table (projectTableHTML) and the chart's top 20, that page went
// from 70-78 to 42-52 CPU-ms (docs/benchmarks.md). Every value is escaped
// as html/template would: html.EscapeString for text and double-quoted
// attributes, and url.PathEscape first for a path segment.
func gridHTML(nodes []nodeGrid) template.HTML {
	var b strings.Builder
	text := func(s string) { b.WriteString(html.EscapeString(s)) }
	for _, n := range nodes {
		b.WriteString(`<li class="node"><span class="node-name">`)
		text(n.Name)
		b.WriteString("</span>\n  <ul class=\"gpus\">")
		for _, d := range n.Devices {
			b.WriteString("\n  <li class=\"gpu ")
			text(string(d.State))
			b.WriteString(`"><a href="/devices/`)
			text(url.PathEscape(d.ID))
			b.WriteString("\">\n    <span class=\"gpu-index\">GPU ")
			text(d.Index)
			b.WriteString(`</span><span class="visually-hidden"> on `)
			text(d.Node)
			b.WriteString(", ")
			text(d.Model)
			b.WriteString(":</span>\n    <span class=\"gpu-state\">")
			text(stateLabel(d.State))
			b.WriteString("</span>")
			if h := d.Holder; h != nil {
				b.WriteString(`<span class="visually-hidden">, held by</span> <span class="gpu-holder">`)
				text(h.Namespace)
				b.WriteString(`</span><span class="visually-hidden">/`)
				text(h.Pod)
				b.WriteString("</span>")
			}
			b.WriteString("</a>\n    ")
			if len(d.Slices) > 0 {
				b.WriteString(`<ul class="slices">`)
				for _, s := range d.Slices {
					b.WriteString(`<li class="slice `)
					text(string(s.State))
					b.WriteString(`" title="`)
					text(s.Profile)
					b.WriteString(" ")
					text(stateLabel(s.State))
					if h := s.Holder; h != nil {
						b.WriteString(" · ")
						text(h.Namespace)
						b.WriteString("/")
						text(h.Pod)
					}
					b.WriteString(`">`)
					text(s.Profile)
					b.WriteString(`<span class="gpu-state">`)
					text(stateLabel(s.State))
					b.WriteString("</span>")
					if h := s.Holder; h != nil {
						b.WriteString(`<span class="gpu-holder">`)
						text(h.Namespace)
						b.WriteString("</span>")
					}
					b.WriteString("</li>")
				}
				b.WriteString("</ul>")
			}
			b.WriteString("\n  </li>")
		}
		b.WriteString("</ul>\n</li>")
	}
	return template.HTML(b.String()) //nolint:gosec // every value above is escaped
}
