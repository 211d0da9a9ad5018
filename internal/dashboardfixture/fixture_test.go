package dashboardfixture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter"
	"github.com/nerc-project/ai-telemetry-collector/internal/dcgmreplay"
	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
	"github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"
)

var update = flag.Bool("update", false, "rewrite the dashboards' fixtures under tests/dashboards/testdata")

const testdata = "../../tests/dashboards/testdata"

// The committed fixtures: the file exporter's OTLP JSON lines. The metrics are
// gzipped (about 1,600 scrapes); compared decompressed, so a change of the
// compressor does not make them stale.
var (
	metricsFixture = filepath.Join(testdata, "metrics.jsonl.gz")
	tracesFixture  = filepath.Join(testdata, "traces.jsonl")
)

// TestFixturesFromRealPipeline replays the schedule through the real
// components and fails when the committed fixtures differ from this run's
// output: either they are stale (the schedule or a component changed; rerun
// with -update) or the recording is not deterministic.
func TestFixturesFromRealPipeline(t *testing.T) {
	s, err := Load(filepath.Join(testdata, "schedule.json"))
	require.NoError(t, err)
	dir := t.TempDir()
	metrics := recordMetrics(t, s, filepath.Join(dir, "metrics.jsonl"))
	traces := recordTraces(t, s, filepath.Join(dir, "traces.jsonl"))

	if *update {
		var gz bytes.Buffer
		w, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		require.NoError(t, err)
		_, err = w.Write(metrics)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		require.NoError(t, os.WriteFile(metricsFixture, gz.Bytes(), 0o644))
		require.NoError(t, os.WriteFile(tracesFixture, traces, 0o644))
		t.Logf("wrote %d metrics lines, %d trace lines", bytes.Count(metrics, []byte("\n")), bytes.Count(traces, []byte("\n")))
		return
	}
	f, err := os.Open(metricsFixture)
	require.NoError(t, err, "run go test ./internal/dashboardfixture/ -update")
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	committed, err := io.ReadAll(zr)
	require.NoError(t, err)
	sameLines(t, metricsFixture, committed, metrics)
	committed, err = os.ReadFile(tracesFixture)
	require.NoError(t, err)
	sameLines(t, tracesFixture, committed, traces)
}

func sameLines(t *testing.T, name string, committed, got []byte) {
	t.Helper()
	if bytes.Equal(committed, got) {
		return
	}
	c, g := strings.Split(string(committed), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(c) && i < len(g); i++ {
		if c[i] != g[i] {
			at := 0
			for at < len(c[i]) && at < len(g[i]) && c[i][at] == g[i][at] {
				at++
			}
			c[i], g[i] = c[i][max(0, at-150):], g[i][max(0, at-150):]
			t.Fatalf("%s is stale or the recording is not deterministic: line %d differs (rerun with -update if the change is intended)\ncommitted: %.300s\nthis run:  %.300s", name, i+1, c[i], g[i])
		}
	}
	t.Fatalf("%s is stale: %d lines committed, %d recorded (rerun with -update if the change is intended)", name, len(c), len(g))
}

// recordMetrics: one replay server per source (dcgmreplay.Steps, a step
// per scrape) → prometheus receiver → gpumodel processor → step keeper →
// file exporter. Returns the file's content.
func recordMetrics(t *testing.T, s *Schedule, path string) []byte {
	ctx := context.Background()
	exp := newFileExporter(t, path, func(f exporter.Factory, set exporter.Settings, cfg component.Config) (component.Component, error) {
		return f.CreateMetrics(ctx, set, cfg)
	}).(exporter.Metrics)

	keeper := &stepKeeper{next: exp, s: s, schedules: map[string]*dcgmreplay.Steps{}}
	var scrapeConfigs []any
	for _, src := range s.Sources {
		var steps [][]byte
		for _, at := range s.Steps(src) {
			steps = append(steps, s.Exposition(src, at))
		}
		sched, err := dcgmreplay.NewSteps(steps, false)
		require.NoError(t, err)
		keeper.schedules[src.Name] = sched
		srv := httptest.NewServer(sched)
		t.Cleanup(srv.Close)
		scrapeConfigs = append(scrapeConfigs, map[string]any{
			// A step per scrape: 30 ms replays an hour of 30 s samples in about 4 s.
			"job_name": src.Name, "scrape_interval": "30ms", "scrape_timeout": "30ms",
			"honor_labels":   src.Dialect == "federated", // as a federation scrape is configured
			"static_configs": []any{map[string]any{"targets": []any{strings.TrimPrefix(srv.URL, "http://")}}},
			// The replay server's port is random; the instance is what a real target would be called.
			"relabel_configs": []any{map[string]any{"target_label": "instance", "replacement": src.Name + ":9400"}},
		})
	}

	pf := gpumodelprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"hub": s.Hub, "cluster": map[string]any{"name": s.Cluster, "hub_cluster": "nerc-ocp-infra"},
		"metadata": map[string]any{"file": map[string]any{"path": filepath.Join(testdata, "projects.yaml")}},
	}).Unmarshal(pcfg))
	require.NoError(t, xValidate(pcfg))
	proc, err := pf.CreateMetrics(ctx, processortest.NewNopSettings(pf.Type()), pcfg, keeper)
	require.NoError(t, err)
	require.NoError(t, proc.Start(ctx, componenttest.NewNopHost()))

	// One source after the other: scraped together, their requests would
	// interleave in the file in no fixed order.
	for i, src := range s.Sources {
		rf := prometheusreceiver.NewFactory()
		rcfg := rf.CreateDefaultConfig()
		require.NoError(t, confmap.NewFromStringMap(map[string]any{
			"config": map[string]any{"scrape_configs": []any{scrapeConfigs[i]}},
		}).Unmarshal(rcfg))
		rset := receivertest.NewNopSettings(rf.Type())
		rset.ID = component.NewIDWithName(rf.Type(), src.Name)
		rcv, err := rf.CreateMetrics(ctx, rset, rcfg, proc)
		require.NoError(t, err)
		require.NoError(t, rcv.Start(ctx, componenttest.NewNopHost()))
		sched := keeper.schedules[src.Name]
		select {
		case <-sched.Done():
		case <-time.After(5 * time.Minute):
			t.Fatalf("source %s: %d of %d steps recorded in 5 minutes", src.Name, sched.Current(), sched.Len())
		}
		require.NoError(t, rcv.Shutdown(ctx))
	}
	require.NoError(t, proc.Shutdown(ctx))
	require.NoError(t, exp.Shutdown(ctx))
	require.NoError(t, keeper.err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func xValidate(cfg component.Config) error {
	if v, ok := cfg.(interface{ Validate() error }); ok {
		return v.Validate()
	}
	return nil
}

// stepKeeper sits between the processor and the exporter. It drops the
// receiver's own series (up, scrape_*: stamped with the wall clock), keeps
// each source's steps in order and exactly once, and acknowledges a step to
// its replay server once the exporter wrote it. It also sorts resources,
// metrics, points and attributes, because the receiver and the processor
// group through maps: the order within a request carries no meaning, and the
// clickhouse exporter's rows do not depend on it.
type stepKeeper struct {
	next      consumer.Metrics
	s         *Schedule
	schedules map[string]*dcgmreplay.Steps
	err       error
}

func (k *stepKeeper) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

func (k *stepKeeper) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	var job string
	var ts pcommon.Timestamp
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				return m.Name() == "up" || strings.HasPrefix(m.Name(), "scrape_")
			})
			return sm.Metrics().Len() == 0
		})
		if rm.ScopeMetrics().Len() == 0 {
			return true
		}
		if v, ok := rm.Resource().Attributes().Get("service.name"); ok {
			job = v.Str()
		}
		ts = rm.ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).Timestamp()
		return false
	})
	if md.ResourceMetrics().Len() == 0 {
		return nil // a scrape after the last step
	}
	sched, ok := k.schedules[job]
	if !ok {
		k.err = fmt.Errorf("points from unknown job %q", job)
		return nil
	}
	src, _ := k.s.SourceByName(job)
	step := int(ts.AsTime().Sub(k.s.From) / (time.Duration(src.IntervalS) * time.Second))
	if steps := k.s.Steps(src); step < 0 || step >= len(steps) || !steps[step].Equal(ts.AsTime()) {
		// The receiver stamped the points with something else than the
		// exposition's timestamps (the scrape time, say): the replay is void.
		k.err = fmt.Errorf("job %s: point at %s is no step of the schedule", job, ts.AsTime())
		return nil
	}
	if step != sched.Current() {
		return nil // a step already written, served again before its acknowledgement
	}
	canonicalize(md)
	if err := k.next.ConsumeMetrics(ctx, md); err != nil {
		return err
	}
	sched.Advance(step)
	return nil
}

func canonicalize(md pmetric.Metrics) {
	key := func(m pcommon.Map) string {
		b, _ := json.Marshal(m.AsRaw()) // encoding/json sorts map keys
		return string(b)
	}
	for _, rm := range md.ResourceMetrics().All() {
		sortMap(rm.Resource().Attributes())
		for _, sm := range rm.ScopeMetrics().All() {
			sm.Metrics().Sort(func(a, b pmetric.Metric) bool { return a.Name() < b.Name() })
			for _, m := range sm.Metrics().All() {
				dps := m.Gauge().DataPoints()
				for _, dp := range dps.All() {
					sortMap(dp.Attributes())
				}
				dps.Sort(func(a, b pmetric.NumberDataPoint) bool { return key(a.Attributes()) < key(b.Attributes()) })
			}
		}
	}
	md.ResourceMetrics().Sort(func(a, b pmetric.ResourceMetrics) bool {
		return key(a.Resource().Attributes()) < key(b.Resource().Attributes())
	})
}

func sortMap(m pcommon.Map) {
	keys := make([]string, 0, m.Len())
	for k := range m.All() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sorted := pcommon.NewMap()
	for _, k := range keys {
		v, _ := m.Get(k)
		v.CopyTo(sorted.PutEmpty(k))
	}
	sorted.CopyTo(m)
}

// recordTraces posts the schedule's webhooks, in time order, to the
// alertmanager receiver (configured as configs/gateway.yaml's, without TLS
// and auth) exporting to the file exporter.
func recordTraces(t *testing.T, s *Schedule, path string) []byte {
	ctx := context.Background()
	exp := newFileExporter(t, path, func(f exporter.Factory, set exporter.Settings, cfg component.Config) (component.Component, error) {
		return f.CreateTraces(ctx, set, cfg)
	}).(exporter.Traces)

	endpoint := "127.0.0.1:" + testpeers.FreePort(t)

	rf := alertmanagerreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"endpoint": endpoint, "hub": s.Hub, "hub_cluster": "nerc-ocp-infra",
		"span_names": map[string]any{s.Alerts.InUse.AlertName: s.Alerts.InUse.Span, s.Alerts.Idle.AlertName: s.Alerts.Idle.Span},
	}).Unmarshal(rcfg))
	require.NoError(t, xValidate(rcfg))
	rcv, err := rf.CreateTraces(ctx, receivertest.NewNopSettings(rf.Type()), rcfg, exp)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(ctx, componenttest.NewNopHost()))

	hooks, err := s.Webhooks()
	require.NoError(t, err)
	require.NotEmpty(t, hooks)
	for _, h := range hooks {
		resp, err := http.Post("http://"+endpoint+"/alerts", "application/json", bytes.NewReader(h.Body))
		require.NoError(t, err)
		msg, _ := io.ReadAll(resp.Body)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", msg)
	}
	require.NoError(t, rcv.Shutdown(ctx))
	require.NoError(t, exp.Shutdown(ctx))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	// One line per notification; the receiver already gives spans a fixed order.
	require.Equal(t, len(hooks), countLines(b))
	return b
}

func countLines(b []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		n++
	}
	return n
}

// newFileExporter: the project's file exporter without its sending queue, so
// each request is written before the call returns, in call order.
func newFileExporter(t *testing.T, path string, create func(exporter.Factory, exporter.Settings, component.Config) (component.Component, error)) component.Component {
	f := fileexporter.NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"path": path, "sending_queue": map[string]any{"enabled": false},
	}).Unmarshal(cfg))
	require.NoError(t, xValidate(cfg))
	exp, err := create(f, exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	return exp
}
