package pages

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/net/html"

	"github.com/nerc-project/ai-telemetry-collector/internal/dashboardfixture"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"
)

const fixtureDir = "../../../../tests/dashboards/testdata"

// fixtureEnd is the end of the recorded schedule: the pages' and the
// store's clock, so that the last samples are "now".
var fixtureEnd = time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)

const (
	hub, cluster = "moc", "nerc-ocp-prod"
	// the whole GPUs and the MIG GPU of the schedule
	gpuTrain    = "GPU-3f1c9a2e-7b4d-4e1a-9c55-0d2b8e6f1a70"
	gpuNotebook = "GPU-8d2e4f60-1a3b-4c5d-8e9f-0a1b2c3d4e5f"
	gpuMIG      = "GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604"
)

// storeDir holds the shared fixture store; TestMain removes it.
var storeDir string

func tempDir() (string, error) {
	var err error
	storeDir, err = os.MkdirTemp("", "pages-test-")
	return storeDir, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if store != nil {
		_ = store.Close()
	}
	if storeDir != "" {
		_ = os.RemoveAll(storeDir)
	}
	os.Exit(code)
}

var (
	storeOnce sync.Once
	store     *embedded.Store
	storeErr  error
)

// fixtureStore is the real embedded store holding the dashboards' recorded
// fixtures (the real pipeline's output for schedule.json), opened once.
func fixtureStore(t *testing.T) gpustore.Reader {
	t.Helper()
	storeOnce.Do(func() {
		dir, err := tempDir()
		if err != nil {
			storeErr = err
			return
		}
		store, storeErr = embedded.Open(context.Background(), embedded.Config{Path: filepath.Join(dir, "gpu.db"), Now: func() time.Time { return fixtureEnd }})
		if storeErr != nil {
			return
		}
		mds, err := dashboardfixture.RecordedMetrics(fixtureDir)
		if err != nil {
			storeErr = err
			return
		}
		for _, md := range mds {
			if storeErr = store.WriteMetrics(context.Background(), md); storeErr != nil {
				return
			}
		}
		tds, err := dashboardfixture.RecordedTraces(fixtureDir)
		if err != nil {
			storeErr = err
			return
		}
		for _, td := range tds {
			if storeErr = store.WriteTraces(context.Background(), td); storeErr != nil {
				return
			}
		}
	})
	require.NoError(t, storeErr)
	return store
}

func truth(t *testing.T) map[string]*dashboardfixture.ProjectTruth {
	t.Helper()
	s, err := dashboardfixture.Load(filepath.Join(fixtureDir, "schedule.json"))
	require.NoError(t, err)
	tr, err := s.Truth()
	require.NoError(t, err)
	return tr
}

// scopes of the callers in the tests.
var (
	scopeAll     = gpustore.Scope{All: true}
	scopeManager = gpustore.Scope{Clusters: []gpustore.ClusterKey{{Hub: hub, Cluster: cluster}}}
)

func scopeOf(namespace string) gpustore.Scope {
	return gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: hub, Cluster: cluster, Namespace: namespace}}}
}

// site is the pages on a test server, for one caller's scope.
type site struct {
	t      *testing.T
	srv    *httptest.Server
	counts *counts
}

type counts struct {
	sync.Mutex
	byRoute map[string]int
}

func newSite(t *testing.T, reader gpustore.Reader, scope func(*http.Request) (gpustore.Scope, error), mod ...func(*Settings)) *site {
	t.Helper()
	c := &counts{byRoute: map[string]int{}}
	set := Settings{
		Reader: reader, Scope: scope, Now: func() time.Time { return fixtureEnd }, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		Count: func(_ context.Context, route string, status int) {
			c.Lock()
			defer c.Unlock()
			c.byRoute[route+" "+http.StatusText(status)]++
		},
	}
	for _, m := range mod {
		m(&set)
	}
	h, err := New(set)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &site{t: t, srv: srv, counts: c}
}

func fixed(s gpustore.Scope) func(*http.Request) (gpustore.Scope, error) {
	return func(*http.Request) (gpustore.Scope, error) { return s, nil }
}

// page is an answer and its parsed document.
type page struct {
	status int
	header http.Header
	body   string
	doc    *html.Node
}

func (s *site) get(path string) page {
	s.t.Helper()
	resp, err := s.srv.Client().Get(s.srv.URL + path)
	require.NoError(s.t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	p := page{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		p.doc, err = html.Parse(strings.NewReader(p.body))
		require.NoError(s.t, err)
	}
	return p
}

// all finds the elements with attribute key (and value, when not "").
func (p page) all(key, value string) []*html.Node {
	var out []*html.Node
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Key == key && (value == "" || a.Val == value) {
					out = append(out, n)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if p.doc != nil {
		walk(p.doc)
	}
	return out
}

// text is the element's text, spaces collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// one is the text of the only element with key=value.
func (p page) one(t *testing.T, key, value string) string {
	t.Helper()
	ns := p.all(key, value)
	require.Len(t, ns, 1, "elements with %s=%q", key, value)
	return text(ns[0])
}
