package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import "html/template"

// gridHTML is a cluster's nodes as the overview's grid: a cell per GPU, a
// MIG GPU's slices inside it. It is written here rather than by
// html/template, whose reflection and escaping per action, ten of them a
// GPU, were most of a manager overview's rendering at 1,000 GPUs; with the
// project table (projectTableHTML) and the chart's top 20, that page went
// from 70-78 to 42-52 CPU-ms (docs/benchmarks.md). Every value is escaped
// as html/template would (htmlBuilder), a device's path by devicePath.
func gridHTML(nodes []nodeGrid) template.HTML {
	var b htmlBuilder
	for _, n := range nodes {
		b.raw(`<li class="node"><span class="node-name">`)
		b.text(n.Name)
		b.raw("</span>\n  <ul class=\"gpus\">")
		for _, d := range n.Devices {
			b.raw("\n  <li class=\"gpu ")
			b.text(string(d.State))
			b.raw(`"><a href="`)
			b.text(devicePath(d.ID))
			b.raw("\">\n    <span class=\"gpu-index\">GPU ")
			b.text(d.Index)
			b.raw(`</span><span class="visually-hidden"> on `)
			b.text(d.Node)
			b.raw(", ")
			b.text(d.Model)
			b.raw(":</span>\n    <span class=\"gpu-state\">")
			b.text(stateLabel(d.State))
			b.raw("</span>")
			if h := d.Holder; h != nil {
				b.raw(`<span class="visually-hidden">, held by</span> <span class="gpu-holder">`)
				b.text(h.Namespace)
				b.raw(`</span><span class="visually-hidden">/`)
				b.text(h.Pod)
				b.raw("</span>")
			}
			b.raw("</a>\n    ")
			if len(d.Slices) > 0 {
				b.raw(`<ul class="slices">`)
				for _, s := range d.Slices {
					b.raw(`<li class="slice `)
					b.text(string(s.State))
					b.raw(`" title="`)
					b.text(s.Profile)
					b.raw(" ")
					b.text(stateLabel(s.State))
					if h := s.Holder; h != nil {
						b.raw(" · ")
						b.text(h.Namespace)
						b.raw("/")
						b.text(h.Pod)
					}
					b.raw(`">`)
					b.text(s.Profile)
					b.raw(`<span class="gpu-state">`)
					b.text(stateLabel(s.State))
					b.raw("</span>")
					if h := s.Holder; h != nil {
						b.raw(`<span class="gpu-holder">`)
						b.text(h.Namespace)
						b.raw("</span>")
					}
					b.raw("</li>")
				}
				b.raw("</ul>")
			}
			b.raw("\n  </li>")
		}
		b.raw("</ul>\n</li>")
	}
	return b.html()
}
