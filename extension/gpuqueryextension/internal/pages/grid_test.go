package pages

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// TestGridEscapes: the grid is written outside html/template, so it must
// escape as html/template does: a hostile value stays text (or one
// attribute's value) and a device id stays one path segment.
func TestGridEscapes(t *testing.T) {
	const evil = `x"><img src=x onerror=alert(1)>&<`
	nodes := []nodeGrid{{Name: evil, Devices: []deviceCell{{
		Device: gpustore.Device{ID: "GPU-1/" + evil, Index: evil, Node: evil, Model: evil, Holder: &gpustore.Holder{Namespace: evil, Pod: evil}},
		State:  gpustore.State(evil),
		Slices: []sliceCell{{Slice: gpustore.Slice{Profile: evil, Holder: &gpustore.Holder{Namespace: evil, Pod: evil}}, State: gpustore.State(evil)}},
	}}}}
	doc, err := html.Parse(strings.NewReader(`<ul class="nodes">` + string(gridHTML(nodes)) + `</ul>`))
	require.NoError(t, err)
	p := page{doc: doc}
	assert.Empty(t, p.all("src", ""), "no element came from a value")
	assert.Empty(t, p.all("onerror", ""))
	assert.Equal(t, evil, p.one(t, "class", "node-name"))
	assert.Equal(t, "GPU "+evil, p.one(t, "class", "gpu-index"))
	gpus := p.all("class", "gpu "+evil)
	require.Len(t, gpus, 1, "the state is one class attribute's value")
	links := p.all("href", "")
	require.Len(t, links, 1)
	u, err := url.Parse(attr(links[0], "href"))
	require.NoError(t, err)
	assert.Equal(t, "/devices/GPU-1/"+evil, u.Path)
	assert.Empty(t, u.RawQuery+u.Fragment, "no part of the id leaves the path")
	assert.Equal(t, 2, strings.Count(u.EscapedPath(), "/"), "the id is one path segment")
	sl := p.all("class", "slice "+evil)
	require.Len(t, sl, 1)
	assert.Equal(t, evil+" "+evil+" · "+evil+"/"+evil, attr(sl[0], "title"))
	for _, h := range p.all("class", "gpu-holder") {
		assert.Equal(t, evil, text(h))
	}
}

// TestProjectTableEscapes: the same for the overview's project table, whose
// links keep the window's query.
func TestProjectTableEscapes(t *testing.T) {
	const evil = `x"><img src=x onerror=alert(1)>&<`
	rows := []projectRow{{Project: gpustore.Project{Hub: hub, Cluster: evil, Namespace: evil, Name: evil, PI: evil}, Allocated: 1.005, Used: 2, Idle: 0.5}}
	doc, err := html.Parse(strings.NewReader(`<table><tbody>` + string(projectTableHTML(rows, "?window=a%26b&x=1")) + `</tbody></table>`))
	require.NoError(t, err)
	p := page{doc: doc}
	assert.Empty(t, p.all("src", ""), "no element came from a value")
	require.Len(t, p.all("data-project", evil), 1)
	links := p.all("href", "")
	require.Len(t, links, 1)
	u, err := url.Parse(attr(links[0], "href"))
	require.NoError(t, err)
	assert.Equal(t, "/projects/"+hub+"/"+evil+"/"+evil, u.Path)
	assert.Equal(t, 4, strings.Count(u.EscapedPath(), "/"), "hub, cluster and namespace are one segment each")
	assert.Equal(t, url.Values{"window": {"a&b"}, "x": {"1"}}, u.Query(), "the window's query survives")
	assert.Equal(t, evil+evil, text(p.all("scope", "row")[0]), "the namespace and the name are text")
	assert.Equal(t, "1.00", text(p.all("data-col", "allocated")[0]))
}
