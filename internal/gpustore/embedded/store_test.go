package embedded

import (
	"context"
	"encoding/hex"
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/internal/dashboardfixture"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

var (
	allScope    = gpustore.Scope{All: true}
	teamA       = gpustore.ProjectKey{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: "team-a"}
	teamB       = gpustore.ProjectKey{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: "team-b"}
	fixtureWin  = gpustore.Window{From: fixtureEnd.Add(-6 * time.Hour), To: fixtureEnd}
	teamBSlice  = "GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604/1"
	teamBParent = "GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604"
)

// truth is the schedule's ground truth for one project.
type truth struct {
	allocated, used, idle float64
	devices               map[string]bool
}

func fractionOf(t testing.TB, s *dashboardfixture.Schedule, hwID string) float64 {
	for _, d := range s.Devices {
		if d.HWID() == hwID {
			f, ok := topology.SliceFraction(d.Model, d.MIGProfile)
			require.True(t, ok, hwID)
			return f
		}
	}
	t.Fatalf("device %s not in the schedule", hwID)
	return 0
}

// scheduleTruth: allocations × hours × fraction (× busy for used; idle when
// busy is below the threshold), per namespace.
func scheduleTruth(t testing.TB, s *dashboardfixture.Schedule) map[string]*truth {
	out := map[string]*truth{}
	for _, a := range s.Allocations {
		tr := out[a.Namespace]
		if tr == nil {
			tr = &truth{devices: map[string]bool{}}
			out[a.Namespace] = tr
		}
		gh := a.Hours * fractionOf(t, s, a.Device)
		tr.allocated += gh
		tr.used += gh * a.Busy
		if a.Busy < gpustore.IdleBusyThreshold {
			tr.idle += gh
		}
		tr.devices[a.Device] = true
	}
	return out
}

func within(t *testing.T, want, got float64, what string) {
	t.Helper()
	if want == 0 {
		assert.InDelta(t, 0, got, 1e-9, what)
		return
	}
	assert.InEpsilon(t, want, got, 0.01, what)
}

func TestGPUHoursMatchSchedule(t *testing.T) {
	s, _ := openFixture(t)
	want := scheduleTruth(t, loadSchedule(t))
	for _, tc := range []struct {
		name   string
		source gpustore.Source
		scope  func(ns string) gpustore.Scope
	}{
		{"raw, all", gpustore.SourceRaw, func(string) gpustore.Scope { return allScope }},
		{"rollup, all", gpustore.SourceRollup, func(string) gpustore.Scope { return allScope }},
		{"auto, all", gpustore.SourceAuto, func(string) gpustore.Scope { return allScope }},
		{"raw, own project", gpustore.SourceRaw, func(ns string) gpustore.Scope {
			return gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: ns}}}
		}},
		{"rollup, cluster manager", gpustore.SourceRollup, func(string) gpustore.Scope {
			return gpustore.Scope{Clusters: []gpustore.ClusterKey{{Hub: "moc", Cluster: "nerc-ocp-prod"}}}
		}},
		{"rollup, hub manager", gpustore.SourceRollup, func(string) gpustore.Scope {
			return gpustore.Scope{Hubs: []string{"moc"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for ns, tr := range want {
				rows, err := s.GPUHours(context.Background(), gpustore.GPUHoursQuery{
					Filter:    gpustore.Filter{Scope: tc.scope(ns), Window: fixtureWin, Namespace: ns},
					Aggregate: []string{gpustore.KeyProject}, Source: tc.source,
				})
				require.NoError(t, err)
				require.Len(t, rows, 1, ns)
				r := rows[0]
				// a project row names its namespace, cluster and hub apart (gpustore.KeyProject)
				assert.Equal(t, map[string]string{gpustore.KeyProject: ns, gpustore.KeyCluster: "nerc-ocp-prod", "hub": "moc"}, r.Keys)
				within(t, tr.allocated, r.Allocated, ns+" allocated")
				within(t, tr.used, r.Used, ns+" used")
				within(t, tr.idle, r.Idle, ns+" idle")
				assert.Equal(t, len(tr.devices), r.Devices, ns+" devices")
			}
		})
	}
}

func TestGPUHoursSteps(t *testing.T) {
	s, _ := openFixture(t)
	want := scheduleTruth(t, loadSchedule(t))
	var total float64
	for _, tr := range want {
		total += tr.allocated
	}
	for _, tc := range []struct {
		step   gpustore.Step
		source gpustore.Source
		from   time.Time
		rows   int
		start  time.Time
	}{
		// 2026-11-01 is a Sunday: its ISO week began Monday 2026-10-26.
		{gpustore.StepDay, gpustore.SourceRaw, fixtureWin.From, 1, fixtureWin.From},
		{gpustore.StepWeek, gpustore.SourceRollup, fixtureWin.From.AddDate(0, 0, -10), 2, fixtureWin.From.AddDate(0, 0, -6)},
		{gpustore.StepMonth, gpustore.SourceRollup, fixtureWin.From.AddDate(0, -1, 0), 1, fixtureWin.From},
	} {
		t.Run(string(tc.step), func(t *testing.T) {
			rows, err := s.GPUHours(context.Background(), gpustore.GPUHoursQuery{
				Filter: gpustore.Filter{Scope: allScope, Window: gpustore.Window{From: tc.from, To: fixtureEnd}},
				Step:   tc.step, Source: tc.source,
			})
			require.NoError(t, err)
			require.NotEmpty(t, rows)
			last := rows[len(rows)-1]
			assert.Equal(t, tc.start, last.Start, "the step holding the samples")
			within(t, total, last.Allocated, "allocated")
			assert.Empty(t, last.Keys)
		})
	}
}

func TestSessionsMatchSchedule(t *testing.T) {
	s, _ := openFixture(t)
	sch := loadSchedule(t)
	got, err := s.Sessions(context.Background(), gpustore.Filter{Scope: allScope, Window: fixtureWin})
	require.NoError(t, err)
	require.Len(t, got, len(sch.Allocations))
	for _, a := range sch.Allocations {
		start := sch.From.Add(time.Duration(a.StartH * float64(time.Hour)))
		end := start.Add(time.Duration(a.Hours * float64(time.Hour)))
		kind := gpustore.SessionUsage
		if a.Busy < sch.Alerts.BusyThreshold {
			kind = gpustore.SessionIdle
		}
		var found bool
		for _, x := range got {
			if x.Pod != a.Pod {
				continue
			}
			found = true
			assert.Equal(t, kind, x.Kind)
			assert.Equal(t, a.Device, x.Device)
			assert.Equal(t, a.Namespace, x.Namespace)
			assert.Equal(t, start, x.Start)
			require.NotNil(t, x.End)
			assert.Equal(t, end, *x.End)
			assert.InDelta(t, a.Hours*3600, x.DurationS, 1e-6)
			assert.InDelta(t, fractionOf(t, sch, a.Device), x.Fraction, 1e-12)
			require.NotNil(t, x.Busy, a.Pod)
			assert.InDelta(t, a.Busy, *x.Busy, 0.01)
		}
		assert.True(t, found, a.Pod)
	}
}

func TestDevicesHeldPerProject(t *testing.T) {
	s, _ := openFixture(t)
	want := scheduleTruth(t, loadSchedule(t))
	for ns, tr := range want {
		sc := gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: ns}}}
		devs, err := s.Devices(context.Background(), gpustore.Filter{Scope: sc})
		require.NoError(t, err)
		slices, err := s.Slices(context.Background(), gpustore.Filter{Scope: sc})
		require.NoError(t, err)
		held := map[string]bool{}
		for _, d := range devs {
			if !d.MIG {
				held[d.ID] = true
				require.NotNil(t, d.Holder, d.ID)
				assert.Equal(t, ns, d.Holder.Namespace)
			}
		}
		for _, sl := range slices {
			held[sl.ID] = true
			require.NotNil(t, sl.Holder, sl.ID)
			assert.Equal(t, ns, sl.Holder.Namespace)
		}
		assert.Equal(t, tr.devices, held, ns)
	}
	// A manager sees every device, free ones included, free at the end.
	devs, err := s.Devices(context.Background(), gpustore.Filter{Scope: allScope})
	require.NoError(t, err)
	assert.Len(t, devs, 4) // three whole GPUs and a MIG GPU of two slices
	for _, d := range devs {
		assert.Equal(t, gpustore.StateFree, d.State, d.ID)
		assert.Nil(t, d.Holder)
	}
}

// every calls each Reader method with f (reports with the fixture window)
// and returns what each saw, as the namespaces of its rows ("" for rows of
// no project) and the devices.
func every(t *testing.T, s *Store, f gpustore.Filter) (namespaces, devices map[string][]string) {
	t.Helper()
	ctx := context.Background()
	namespaces, devices = map[string][]string{}, map[string][]string{}
	add := func(method, ns, dev string) {
		namespaces[method] = append(namespaces[method], ns)
		if dev != "" {
			devices[method] = append(devices[method], dev)
		}
	}
	w := f
	w.Window = fixtureWin
	hubs, err := s.Hubs(ctx, f)
	require.NoError(t, err)
	for _, h := range hubs {
		add("hubs", "?", "")
		_ = h
	}
	nodes, err := s.Nodes(ctx, f)
	require.NoError(t, err)
	for range nodes {
		add("nodes", "?", "")
	}
	devs, err := s.Devices(ctx, f)
	require.NoError(t, err)
	for _, d := range devs {
		ns := ""
		if d.Holder != nil {
			ns = d.Holder.Namespace
		}
		add("devices", ns, d.ID)
	}
	wdevs, err := s.Devices(ctx, w)
	require.NoError(t, err)
	for _, d := range wdevs {
		add("devices(window)", "?", d.ID)
	}
	slices, err := s.Slices(ctx, f)
	require.NoError(t, err)
	for _, sl := range slices {
		ns := ""
		if sl.Holder != nil {
			ns = sl.Holder.Namespace
		}
		add("slices", ns, sl.ID)
	}
	projects, err := s.Projects(ctx, f)
	require.NoError(t, err)
	for _, p := range projects {
		add("projects", p.Namespace, "")
	}
	sessions, err := s.Sessions(ctx, f)
	require.NoError(t, err)
	for _, x := range sessions {
		add("sessions", x.Namespace, x.Device)
	}
	for _, src := range []gpustore.Source{gpustore.SourceRaw, gpustore.SourceRollup} {
		rows, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: w, Aggregate: []string{gpustore.KeyProject, gpustore.KeyDevice}, Source: src})
		require.NoError(t, err)
		for _, r := range rows {
			add("gpu_hours_"+string(src), r.Keys[gpustore.KeyProject], r.Keys[gpustore.KeyDevice])
		}
	}
	idle, err := s.Idle(ctx, w)
	require.NoError(t, err)
	for _, a := range idle {
		add("idle", a.Namespace, a.Device)
	}
	util, err := s.Utilization(ctx, gpustore.UtilizationQuery{Filter: w, MaxPoints: 12})
	require.NoError(t, err)
	for range util {
		add("utilization", "?", "")
	}
	return namespaces, devices
}

func TestScopeIsolation(t *testing.T) {
	s, _ := openFixture(t)
	_, allDevices := every(t, s, gpustore.Filter{Scope: allScope})
	require.Contains(t, allDevices["gpu_hours_raw"], teamBSlice, "the fixture has team-b's slice")

	t.Run("team-a sees no team-b row", func(t *testing.T) {
		ns, devs := every(t, s, gpustore.Filter{Scope: gpustore.Scope{Projects: []gpustore.ProjectKey{teamA}}})
		for _, m := range []string{"devices", "projects", "sessions", "gpu_hours_raw", "gpu_hours_rollup", "idle"} {
			require.NotEmpty(t, ns[m], m)
			for _, n := range ns[m] {
				assert.Equal(t, "team-a", n, m)
			}
		}
		for m, ds := range devs {
			assert.NotContains(t, ds, teamBSlice, m)
			assert.NotContains(t, ds, teamBParent, m)
		}
		assert.Empty(t, ns["slices"], "team-a held no slice")
	})
	for _, tc := range []struct {
		name  string
		scope gpustore.Scope
	}{
		{"zero scope", gpustore.Scope{}},
		{"unknown project", gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: "team-z"}}}},
		{"team-a's namespace on another cluster", gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: "moc", Cluster: "other", Namespace: "team-a"}}}},
		{"a project without a namespace", gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: "moc", Cluster: "nerc-ocp-prod"}}}},
		{"another hub's manager", gpustore.Scope{Hubs: []string{"other"}}},
	} {
		t.Run(tc.name+" sees nothing", func(t *testing.T) {
			ns, _ := every(t, s, gpustore.Filter{Scope: tc.scope})
			assert.Empty(t, ns)
		})
	}
	t.Run("another project's device by id", func(t *testing.T) {
		a := gpustore.Filter{Scope: gpustore.Scope{Projects: []gpustore.ProjectKey{teamA}}, Device: teamBParent}
		devs, err := s.Devices(context.Background(), a)
		require.NoError(t, err)
		assert.Empty(t, devs)
		a.Device = teamBSlice
		slices, err := s.Slices(context.Background(), a)
		require.NoError(t, err)
		assert.Empty(t, slices)
		b := a
		b.Scope = gpustore.Scope{Projects: []gpustore.ProjectKey{teamB}}
		slices, err = s.Slices(context.Background(), b)
		require.NoError(t, err)
		assert.Len(t, slices, 1, "its own project finds it")
	})
	t.Run("SQL metacharacters are values", func(t *testing.T) {
		for _, hostile := range []string{"team-a' OR '1'='1", "%", "team-a\"; DROP TABLE samples; --"} {
			ns, _ := every(t, s, gpustore.Filter{Scope: allScope, Namespace: hostile})
			for m, v := range ns {
				if m != "hubs" && m != "nodes" && m != "utilization" && m != "devices(window)" {
					assert.Empty(t, v, m)
				}
			}
		}
		rows, err := s.GPUHours(context.Background(), gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: allScope, Window: fixtureWin}, Source: gpustore.SourceRaw})
		require.NoError(t, err)
		require.Len(t, rows, 1, "samples are still there")
	})
}

func TestPersistence(t *testing.T) {
	s, path := openFixture(t)
	ctx := context.Background()
	raw := gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: allScope, Window: fixtureWin}, Aggregate: []string{gpustore.KeyProject}, Source: gpustore.SourceRaw}
	rollup := raw
	rollup.Source = gpustore.SourceRollup
	before, err := s.GPUHours(ctx, raw)
	require.NoError(t, err)
	rollupBefore, err := s.GPUHours(ctx, rollup)
	require.NoError(t, err)
	sessBefore, err := s.Sessions(ctx, gpustore.Filter{Scope: allScope})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = s.Sessions(ctx, gpustore.Filter{Scope: allScope})
	require.Error(t, err, "a closed store does not read")

	s2, err := Open(ctx, Config{Path: path, Now: func() time.Time { return fixtureEnd }})
	require.NoError(t, err)
	defer func() { _ = s2.Close() }()
	after, err := s2.GPUHours(ctx, raw)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	rollupAfter, err := s2.GPUHours(ctx, rollup)
	require.NoError(t, err)
	assert.Equal(t, rollupBefore, rollupAfter)
	sessAfter, err := s2.Sessions(ctx, gpustore.Filter{Scope: allScope})
	require.NoError(t, err)
	assert.Equal(t, sessBefore, sessAfter)
	// The series ids survive too: the same writes again change no raw row.
	for _, md := range readMetrics(t)[:10] {
		require.NoError(t, s2.WriteMetrics(ctx, md))
	}
	again, err := s2.GPUHours(ctx, raw)
	require.NoError(t, err)
	assert.Equal(t, before, again)
	rollupAgain, err := s2.GPUHours(ctx, rollup)
	require.NoError(t, err)
	assert.Equal(t, rollupBefore, rollupAgain, "a sample written twice counts once in the rollup")
}

// gauge is one enriched DCGM point of a whole GPU at t.
func gauge(md pmetric.Metrics, t time.Time, ns, pod, hwID string, busy float64) {
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr(topology.AttrHubName, "moc")
	res.PutStr(topology.AttrK8sClusterName, "c1")
	res.PutStr(topology.AttrK8sNodeName, "n1")
	if ns != "" {
		res.PutStr(topology.AttrK8sNamespaceName, ns)
		res.PutStr(topology.AttrK8sPodName, pod)
	}
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for name, v := range map[string]float64{metricProf: busy, metricFBUsed: 100, metricXID: 0} {
		m := ms.AppendEmpty()
		m.SetName(name)
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t))
		dp.SetDoubleValue(v)
		a := dp.Attributes()
		a.PutStr(topology.AttrHwID, hwID)
		a.PutStr(topology.AttrHwModel, "NVIDIA A100-SXM4-80GB")
		a.PutBool(topology.AttrGPUAllocated, ns != "")
		a.PutDouble(topology.AttrSliceFraction, 1)
	}
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	clock := &fixedClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "r.db"), Now: clock.now})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	old := clock.t
	md := pmetric.NewMetrics()
	for i := range 120 { // an hour of 30 s samples
		gauge(md, old.Add(time.Duration(i)*30*time.Second), "team-a", "p", "GPU-1", 0.5)
	}
	require.NoError(t, s.WriteMetrics(ctx, md))
	win := gpustore.Window{From: old, To: old.Add(time.Hour)}
	q := gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: allScope, Window: win}}
	for _, src := range []gpustore.Source{gpustore.SourceRaw, gpustore.SourceRollup} {
		q.Source = src
		rows, err := s.GPUHours(ctx, q)
		require.NoError(t, err)
		require.Len(t, rows, 1, src)
		assert.InEpsilon(t, 1, rows[0].Allocated, 1e-9, src)
	}

	// 15 days later: the next write deletes the raw rows, keeps the rollup.
	clock.t = old.Add(15 * 24 * time.Hour)
	md = pmetric.NewMetrics()
	gauge(md, clock.t, "", "", "GPU-1", 0)
	require.NoError(t, s.WriteMetrics(ctx, md))
	q.Source = gpustore.SourceRaw
	rows, err := s.GPUHours(ctx, q)
	require.NoError(t, err)
	assert.Empty(t, rows, "raw rows past raw_retention are deleted")
	q.Source = gpustore.SourceRollup
	rows, err = s.GPUHours(ctx, q)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.InEpsilon(t, 1, rows[0].Allocated, 1e-9, "rollups are kept")
	q.Source = gpustore.SourceAuto
	rows, err = s.GPUHours(ctx, q)
	require.NoError(t, err)
	require.Len(t, rows, 1, "auto reads rollups for a window past raw retention")

	// 401 days later the rollup goes too.
	clock.t = old.Add(401 * 24 * time.Hour)
	md = pmetric.NewMetrics()
	gauge(md, clock.t, "", "", "GPU-1", 0)
	require.NoError(t, s.WriteMetrics(ctx, md))
	q.Source = gpustore.SourceRollup
	rows, err = s.GPUHours(ctx, q)
	require.NoError(t, err)
	assert.Empty(t, rows, "rollups past rollup_retention are deleted")
}

func TestIdleNow(t *testing.T) {
	for _, merged := range []bool{false, true} {
		t.Run(map[bool]string{false: "scrape by scrape", true: "one batch"}[merged], func(t *testing.T) {
			testIdleNow(t, merged)
		})
	}
}

func testIdleNow(t *testing.T, merged bool) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "i.db"), Now: func() time.Time { return fixtureEnd }})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	// The fixture up to 03:15: notebook-0 holds GPU 1 idle since 03:00.
	cut := fixtureWin.From.Add(3*time.Hour + 15*time.Minute)
	all := pmetric.NewMetrics()
	for _, md := range readMetrics(t) {
		ts := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).Timestamp().AsTime()
		if !ts.Before(cut) {
			continue
		}
		if merged {
			md.ResourceMetrics().MoveAndAppendTo(all.ResourceMetrics())
			continue
		}
		require.NoError(t, s.WriteMetrics(ctx, md))
	}
	if merged {
		require.NoError(t, s.WriteMetrics(ctx, all))
	}
	idle, err := s.Idle(ctx, gpustore.Filter{Scope: allScope})
	require.NoError(t, err)
	require.Len(t, idle, 1)
	a := idle[0]
	assert.Equal(t, "notebook-0", a.Pod)
	assert.Equal(t, fixtureWin.From.Add(3*time.Hour), a.Since)
	assert.Equal(t, cut.Add(-30*time.Second), a.LastSeen)
	assert.InDelta(t, a.LastSeen.Sub(a.Since).Hours(), a.IdleHours, 1e-9)
	devs, err := s.Devices(ctx, gpustore.Filter{Scope: allScope, Device: "GPU-8d2e4f60-1a3b-4c5d-8e9f-0a1b2c3d4e5f"})
	require.NoError(t, err)
	require.Len(t, devs, 1)
	assert.Equal(t, gpustore.StateIdle, devs[0].State)
	require.NotNil(t, devs[0].Holder)
	assert.Equal(t, gpustore.Holder{Namespace: "team-a", Pod: "notebook-0"}, *devs[0].Holder)
}

func TestSpansIdempotent(t *testing.T) {
	ctx := context.Background()
	traces := readTraces(t)
	var starts, finals []ptrace.Traces
	for _, td := range traces {
		if n := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name(); n == "gpu.usage" || n == "gpu.idle" {
			finals = append(finals, td)
		} else {
			starts = append(starts, td)
		}
	}
	require.NotEmpty(t, starts)
	require.NotEmpty(t, finals)
	for _, tc := range []struct {
		name   string
		writes []ptrace.Traces
		open   bool
	}{
		{"as recorded, twice", append(append([]ptrace.Traces{}, traces...), traces...), false},
		{"final spans before their start spans", append(append([]ptrace.Traces{}, finals...), starts...), false},
		{"start spans only: open sessions", append(append([]ptrace.Traces{}, starts...), starts...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "s.db"), Now: func() time.Time { return fixtureEnd }})
			require.NoError(t, err)
			defer func() { _ = s.Close() }()
			for _, td := range tc.writes {
				require.NoError(t, s.WriteTraces(ctx, td))
			}
			got, err := s.Sessions(ctx, gpustore.Filter{Scope: allScope})
			require.NoError(t, err)
			require.Len(t, got, len(finals), "one session per final span id")
			for _, x := range got {
				if tc.open {
					assert.Nil(t, x.End)
					assert.InDelta(t, fixtureEnd.Sub(x.Start).Seconds(), x.DurationS, 1e-9, "open: to the read's time")
				} else {
					require.NotNil(t, x.End)
					assert.InDelta(t, x.End.Sub(x.Start).Seconds(), x.DurationS, 1e-9)
				}
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	ctx := context.Background()
	batches := readMetrics(t)
	t.Run("disk full", func(t *testing.T) {
		s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "f.db"), Now: func() time.Time { return fixtureEnd }})
		require.NoError(t, err)
		defer func() { _ = s.Close() }()
		require.NoError(t, s.WriteMetrics(ctx, batches[0]))
		// The writer's only connection may grow the file no further:
		// SQLite then fails the write with SQLITE_FULL, as on a full disk.
		var pages int
		require.NoError(t, s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages))
		_, err = s.w.ExecContext(ctx, `PRAGMA max_page_count = `+itoa(pages))
		require.NoError(t, err)
		var werr error
		for _, md := range batches[1:] {
			if werr = s.WriteMetrics(ctx, md); werr != nil {
				break
			}
		}
		require.Error(t, werr)
		assert.Contains(t, werr.Error(), "write metrics")
		assert.ErrorIs(t, werr, gpustore.ErrFull)
		// and the store still reads
		_, err = s.Devices(ctx, gpustore.Filter{Scope: allScope})
		require.NoError(t, err)
	})
	t.Run("failed write is all or nothing", func(t *testing.T) {
		s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "a.db"), Now: func() time.Time { return fixtureEnd }})
		require.NoError(t, err)
		defer func() { _ = s.Close() }()
		require.NoError(t, s.WriteMetrics(ctx, batches[0]))
		count := func() (n int) {
			require.NoError(t, s.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM samples) + (SELECT count(*) FROM hourly)
				+ (SELECT sum(samples) FROM hourly) + (SELECT count(*) FROM series)`).Scan(&n))
			return n
		}
		before := count()
		var pages int
		require.NoError(t, s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages))
		_, err = s.w.ExecContext(ctx, `PRAGMA max_page_count = `+itoa(pages))
		require.NoError(t, err)
		big := pmetric.NewMetrics()
		for _, md := range batches[1:] {
			md.ResourceMetrics().MoveAndAppendTo(big.ResourceMetrics())
		}
		require.Error(t, s.WriteMetrics(ctx, big))
		assert.Equal(t, before, count(), "nothing of the failed batch is stored")
		// The series cache holds no id of the rolled-back transaction: once
		// there is room, the same batch is stored whole.
		_, err = s.w.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`)
		require.NoError(t, err)
		big2 := pmetric.NewMetrics()
		for _, md := range readMetrics(t)[1:] {
			md.ResourceMetrics().MoveAndAppendTo(big2.ResourceMetrics())
		}
		require.NoError(t, s.WriteMetrics(ctx, big2))
		rows, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: allScope, Window: fixtureWin}, Source: gpustore.SourceRaw, Aggregate: []string{gpustore.KeyProject}})
		require.NoError(t, err)
		require.Len(t, rows, 2)
		assert.InEpsilon(t, 2.5, rows[0].Allocated, 0.01)
	})
	t.Run("closed store", func(t *testing.T) {
		s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "c.db")})
		require.NoError(t, err)
		require.NoError(t, s.Close())
		assert.ErrorIs(t, s.WriteMetrics(ctx, batches[0]), errClosed)
		assert.ErrorIs(t, s.WriteTraces(ctx, readTraces(t)[0]), errClosed)
	})
	t.Run("not a database", func(t *testing.T) {
		_, err := Open(ctx, Config{Path: filepath.Join(testdata, "schedule.json")})
		require.Error(t, err)
	})
}

func itoa(n int) string { return pcommon.NewValueInt(int64(n)).AsString() }

func TestBadQueries(t *testing.T) {
	s, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "b.db")})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	noon := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f := gpustore.Filter{Scope: allScope, Window: gpustore.Window{From: noon, To: noon.Add(time.Hour)}}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"report without window", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: allScope}})
			return err
		}},
		{"window backwards", func() error {
			g := f
			g.Window = gpustore.Window{From: noon, To: noon}
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: g})
			return err
		}},
		{"window past MaxWindow", func() error {
			g := f
			g.Window.To = noon.Add(gpustore.MaxWindow + time.Second)
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: g})
			return err
		}},
		{"more than MaxSteps days", func() error {
			g := f
			g.Window.To = noon.Add(gpustore.MaxWindow) // 400 days from noon touch 401
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: g, Step: gpustore.StepDay})
			return err
		}},
		{"unknown key", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: f, Aggregate: []string{"namespace; DROP TABLE x"}})
			return err
		}},
		{"key twice", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: f, Aggregate: []string{"node", "node"}})
			return err
		}},
		{"unknown step", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: f, Step: "hour"})
			return err
		}},
		{"unknown source", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: f, Source: "both"})
			return err
		}},
		{"limit above MaxLimit", func() error {
			g := f
			g.Limit = gpustore.MaxLimit + 1
			_, err := s.Devices(ctx, g)
			return err
		}},
		{"negative offset", func() error {
			g := f
			g.Offset = -1
			_, err := s.Sessions(ctx, g)
			return err
		}},
		{"entity window backwards", func() error {
			g := f
			g.Window = gpustore.Window{From: noon, To: noon.Add(-time.Second)}
			_, err := s.Nodes(ctx, g)
			return err
		}},
		{"too many points", func() error {
			_, err := s.Utilization(ctx, gpustore.UtilizationQuery{Filter: f, MaxPoints: gpustore.MaxPoints + 1})
			return err
		}},
		{"idle window past MaxWindow", func() error {
			g := f
			g.Window.To = noon.Add(gpustore.MaxWindow + time.Hour)
			_, err := s.Idle(ctx, g)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Error(t, err)
			assert.True(t, errors.Is(err, gpustore.ErrBadQuery), err.Error())
		})
	}
	// The boundaries themselves are accepted.
	g := f
	g.Window = gpustore.Window{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g.Window.To = g.Window.From.Add(gpustore.MaxWindow)
	_, err = s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: g, Step: gpustore.StepDay})
	require.NoError(t, err)
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"defaults", Config{Path: "x.db"}, nil},
		{"no path", Config{}, ErrNoPath},
		{"negative raw", Config{Path: "x.db", RawRetention: -time.Hour}, ErrBadRetention},
		{"rollup shorter than raw", Config{Path: "x.db", RawRetention: 48 * time.Hour, RollupRetention: 24 * time.Hour}, ErrRollupBeforeRaw},
		{"rollup shorter than the default raw", Config{Path: "x.db", RollupRetention: 24 * time.Hour}, ErrRollupBeforeRaw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tc.want)
		})
	}
	d := NewDefaultConfig()
	assert.Equal(t, 14*24*time.Hour, d.RawRetention)
	assert.Equal(t, 400*24*time.Hour, d.RollupRetention)
	_, err := Open(context.Background(), Config{})
	assert.ErrorIs(t, err, ErrNoPath)
}

func TestUtilizationSeries(t *testing.T) {
	s, _ := openFixture(t)
	sch := loadSchedule(t)
	a := sch.Allocations[0] // llm-finetune-0 on GPU 0, 01:00-03:00, busy 0.9
	pts, err := s.Utilization(context.Background(), gpustore.UtilizationQuery{
		Filter: gpustore.Filter{Scope: allScope, Window: fixtureWin, Device: a.Device}, MaxPoints: 24,
	})
	require.NoError(t, err)
	require.Len(t, pts, 24)
	start := sch.From.Add(time.Duration(a.StartH * float64(time.Hour)))
	end := start.Add(time.Duration(a.Hours * float64(time.Hour)))
	for i, p := range pts {
		assert.Equal(t, fixtureWin.From.Add(time.Duration(i)*15*time.Minute), p.Time)
		assert.Equal(t, 30, p.Samples)
		want := 0.0
		if !p.Time.Before(start) && p.Time.Before(end) {
			want = a.Busy
		}
		assert.InDelta(t, want, p.Busy, 1e-9, p.Time)
		if want > 0 {
			assert.InDelta(t, a.FBUsedMiB, p.FBUsedMiB, 1e-9)
			assert.InDelta(t, a.PowerW, p.PowerW, 1e-9)
		}
	}
	assert.False(t, math.IsNaN(pts[0].Busy))
}

// A lone sample in a series-hour takes the largest interval of its node in
// that hour (rollup), or LoneSampleIntervalS when its node has none; raw
// samples give a lone one LoneSampleIntervalS.
func TestRollupLoneSample(t *testing.T) {
	hour := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		neighbour  bool // another GPU of the node sampled every 60 s that hour
		wantRollup float64
	}{
		{"node with a 60 s series", true, 60},
		{"alone on its node", false, gpustore.LoneSampleIntervalS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "l.db"), Now: func() time.Time { return hour.Add(time.Hour) }})
			require.NoError(t, err)
			defer func() { _ = s.Close() }()
			md := pmetric.NewMetrics()
			if tc.neighbour {
				for i := range 60 {
					gauge(md, hour.Add(time.Duration(i)*time.Minute), "", "", "GPU-free", 0)
				}
			}
			gauge(md, hour.Add(20*time.Minute), "team-a", "p", "GPU-lone", 0.5)
			require.NoError(t, s.WriteMetrics(ctx, md))
			f := gpustore.Filter{Scope: allScope, Window: gpustore.Window{From: hour, To: hour.Add(time.Hour)}}
			for src, want := range map[gpustore.Source]float64{gpustore.SourceRollup: tc.wantRollup, gpustore.SourceRaw: gpustore.LoneSampleIntervalS} {
				rows, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: f, Source: src, Aggregate: []string{gpustore.KeyDevice}})
				require.NoError(t, err)
				require.Len(t, rows, 1, src)
				assert.Equal(t, "GPU-lone", rows[0].Keys[gpustore.KeyDevice])
				assert.InDelta(t, want/3600, rows[0].Allocated, 1e-12, src)
				assert.InDelta(t, want/3600*0.5, rows[0].Used, 1e-12, src)
			}
		})
	}
}

// The topology counts follow the schedule's devices: a MIG GPU is one GPU
// made of its slices.
func TestTopologyCounts(t *testing.T) {
	s, _ := openFixture(t)
	sch := loadSchedule(t)
	ctx := context.Background()
	gpus, slices := map[string]map[string]bool{}, map[string]int{}
	for _, d := range sch.Devices {
		src, err := sch.SourceByName(d.Source)
		require.NoError(t, err)
		if gpus[src.Node] == nil {
			gpus[src.Node] = map[string]bool{}
		}
		gpus[src.Node][d.UUID] = true
		if d.MIGProfile != "" {
			slices[src.Node]++
		}
	}
	f := gpustore.Filter{Scope: allScope}
	nodes, err := s.Nodes(ctx, f)
	require.NoError(t, err)
	require.Len(t, nodes, len(gpus))
	total, totalSlices := 0, 0
	for _, n := range nodes {
		assert.Equal(t, len(gpus[n.Name]), n.GPUs, n.Name)
		assert.Equal(t, slices[n.Name], n.Slices, n.Name)
		assert.Equal(t, []string{"NVIDIA A100-SXM4-80GB"}, n.Models)
		total += n.GPUs
		totalSlices += n.Slices
	}
	clusters, err := s.Clusters(ctx, f)
	require.NoError(t, err)
	require.Len(t, clusters, 1)
	assert.Equal(t, gpustore.Cluster{
		Hub: sch.Hub, Name: sch.Cluster, Nodes: len(gpus), GPUs: total, Slices: totalSlices,
		LastSeen: clusters[0].LastSeen,
	}, clusters[0])
	hubs, err := s.Hubs(ctx, f)
	require.NoError(t, err)
	require.Len(t, hubs, 1)
	assert.Equal(t, 1, hubs[0].Clusters)
	assert.Equal(t, total, hubs[0].GPUs)
	// team-b's members see the one MIG GPU their pod held a slice of.
	hubs, err = s.Hubs(ctx, gpustore.Filter{Scope: gpustore.Scope{Projects: []gpustore.ProjectKey{teamB}}})
	require.NoError(t, err)
	require.Len(t, hubs, 1)
	assert.Equal(t, 1, hubs[0].GPUs)
	// A GPU's UUID selects its slices' GPU-hours, from samples and rollups.
	for _, src := range []gpustore.Source{gpustore.SourceRaw, gpustore.SourceRollup} {
		rows, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{
			Filter: gpustore.Filter{Scope: allScope, Window: fixtureWin, Device: teamBParent}, Source: src,
			Aggregate: []string{gpustore.KeyDevice},
		})
		require.NoError(t, err)
		require.Len(t, rows, 1, src)
		assert.Equal(t, teamBSlice, rows[0].Keys[gpustore.KeyDevice])
		assert.InEpsilon(t, fractionOf(t, sch, teamBSlice), rows[0].Allocated, 0.01)
		// and a slice's hw.id selects that slice alone
		one, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{
			Filter: gpustore.Filter{Scope: allScope, Window: fixtureWin, Device: teamBSlice}, Source: src,
			Aggregate: []string{gpustore.KeyDevice},
		})
		require.NoError(t, err)
		assert.Equal(t, rows, one, src)
	}
}

// Sample times are whole seconds, as the ClickHouse exporter stores them
// (DateTime): two points of a GPU within one second are one sample (the
// larger value), and times read back are the second.
func TestSampleTimesWholeSeconds(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "s.db"), Now: func() time.Time { return at.Add(time.Hour) }})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	md := pmetric.NewMetrics()
	gauge(md, at.Add(300*time.Millisecond), "team-a", "p", "GPU-s", 0.2)
	gauge(md, at.Add(700*time.Millisecond), "team-a", "p", "GPU-s", 0.6)
	gauge(md, at.Add(30*time.Second+900*time.Millisecond), "team-a", "p", "GPU-s", 0.4)
	require.NoError(t, s.WriteMetrics(ctx, md))

	w := gpustore.Window{From: at, To: at.Add(time.Minute)}
	rows, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: allScope, Window: w}, Source: gpustore.SourceRaw})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	// two samples 30 s apart, each standing for 30 s; the first busy 0.6
	assert.InDelta(t, 60.0/3600, rows[0].Allocated, 1e-12)
	assert.InDelta(t, (0.6*30+0.4*30)/3600, rows[0].Used, 1e-12)

	devs, err := s.Devices(ctx, gpustore.Filter{Scope: allScope})
	require.NoError(t, err)
	require.Len(t, devs, 1)
	assert.Equal(t, at.Add(30*time.Second), devs[0].LastSeen)

	// a window starting inside the first second does not see that sample
	// (it is at the second, before From), as ClickHouse compares it
	rows, err = s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{
		Scope:  allScope,
		Window: gpustore.Window{From: at.Add(500 * time.Millisecond), To: w.To},
	}, Source: gpustore.SourceRaw})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.InDelta(t, float64(gpustore.LoneSampleIntervalS)/3600, rows[0].Allocated, 1e-12)
}

// A session's busy is the mean over [start, end): the sample at its end is
// the next one's (as ClickHouse's sessions.sql); an open session overlaps a
// window only while the read's time is after From.
func TestSessionEdges(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	ctx := context.Background()
	now := at.Add(time.Hour)
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "e.db"), Now: func() time.Time { return now }})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	md := pmetric.NewMetrics()
	for i, b := range []float64{0.2, 0.4, 0.9} {
		gauge(md, at.Add(time.Duration(i)*30*time.Second), "team-a", "p", "GPU-e", b)
	}
	require.NoError(t, s.WriteMetrics(ctx, md))
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr(topology.AttrHubName, "moc")
	res.PutStr(topology.AttrK8sClusterName, "c1")
	res.PutStr(topology.AttrK8sNodeName, "n1") // from the resource: no span attribute
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	closed := spans.AppendEmpty()
	closed.SetName(string(gpustore.SessionUsage))
	closed.SetTraceID([16]byte{1})
	closed.SetSpanID([8]byte{1})
	closed.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	closed.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Minute)))
	open := spans.AppendEmpty()
	open.SetName(string(gpustore.SessionUsage) + ".start")
	open.SetTraceID([16]byte{2})
	open.SetSpanID([8]byte{3})
	open.SetParentSpanID([8]byte{2})
	open.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	for _, sp := range []ptrace.Span{closed, open} {
		a := sp.Attributes()
		a.PutStr(topology.AttrK8sNamespaceName, "team-a")
		a.PutStr(topology.AttrK8sPodName, "p")
		a.PutStr(topology.AttrHwID, "GPU-e")
	}
	require.NoError(t, s.WriteTraces(ctx, td))

	got, err := s.Sessions(ctx, gpustore.Filter{Scope: allScope})
	require.NoError(t, err)
	require.Len(t, got, 2)
	for _, x := range got {
		assert.Equal(t, "n1", x.Node, "node from the resource")
		require.NotNil(t, x.Busy)
		if x.End != nil {
			assert.InDelta(t, 0.3, *x.Busy, 1e-12, "the samples at 0 s and 30 s, not the one at the end")
		} else {
			assert.Equal(t, hex.EncodeToString([]byte{2, 0, 0, 0, 0, 0, 0, 0}), x.SpanID, "open: the final span's id")
			assert.InDelta(t, 0.5, *x.Busy, 1e-12)
		}
	}
	// a window after the read's time: the open session has not reached it
	later := gpustore.Window{From: now.Add(time.Minute), To: now.Add(time.Hour)}
	got, err = s.Sessions(ctx, gpustore.Filter{Scope: allScope, Window: later})
	require.NoError(t, err)
	assert.Empty(t, got)
}

// SourceAuto reads what gpustore.ReadsRollup says: the rollup for whole
// hours, raw samples for a window inside an hour (the two differ on the
// fixtures: lone samples and partial hours).
func TestAutoSource(t *testing.T) {
	s, _ := openFixture(t)
	ctx := context.Background()
	odd := gpustore.Window{From: fixtureWin.From.Add(77*time.Minute + 13*time.Second), To: fixtureWin.To.Add(-77 * time.Minute)}
	for _, tt := range []struct {
		name string
		w    gpustore.Window
		want gpustore.Source
	}{
		{"whole hours", fixtureWin, gpustore.SourceRollup},
		{"inside hours", odd, gpustore.SourceRaw},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: allScope, Window: tt.w}, Aggregate: []string{gpustore.KeyDevice}}
			auto, err := s.GPUHours(ctx, q)
			require.NoError(t, err)
			q.Source = gpustore.SourceRaw
			raw, err := s.GPUHours(ctx, q)
			require.NoError(t, err)
			q.Source = gpustore.SourceRollup
			rollup, err := s.GPUHours(ctx, q)
			require.NoError(t, err)
			require.NotEqual(t, raw, rollup, "the fixtures tell the sources apart")
			want := map[gpustore.Source][]gpustore.GPUHoursRow{gpustore.SourceRaw: raw, gpustore.SourceRollup: rollup}[tt.want]
			assert.Equal(t, want, auto)
		})
	}
}

// A device's latest row is its last sample; of two at the same time, the
// later namespace's (a held row over the unheld ” one): what Devices and
// Idle show.
func TestLatestRowOfADevice(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "l.db"), Now: func() time.Time { return at.Add(time.Minute) }})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	md := pmetric.NewMetrics()
	gauge(md, at.Add(-time.Minute), "team-b", "old", "GPU-l", 0.9) // an earlier holder
	gauge(md, at, "", "", "GPU-l", 0)
	gauge(md, at, "team-a", "p", "GPU-l", 0.01)
	require.NoError(t, s.WriteMetrics(ctx, md))

	devs, err := s.Devices(ctx, gpustore.Filter{Scope: allScope})
	require.NoError(t, err)
	require.Len(t, devs, 1)
	assert.Equal(t, &gpustore.Holder{Namespace: "team-a", Pod: "p"}, devs[0].Holder)
	assert.Equal(t, gpustore.StateIdle, devs[0].State)
	assert.Equal(t, at, devs[0].LastSeen)
	idle, err := s.Idle(ctx, gpustore.Filter{Scope: allScope})
	require.NoError(t, err)
	require.Len(t, idle, 1)
	assert.Equal(t, "team-a", idle[0].Namespace)
}

// A member of team-a on c1 and of team-b on c2 sees neither team-b on c1
// nor team-a on c2: the scope's lists of namespaces, hubs and clusters (for
// the indexes) cross into pairs it does not grant; the pairs decide.
func TestScopeListsDoNotWiden(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "x.db"), Now: func() time.Time { return at.Add(time.Minute) }})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()
	md := pmetric.NewMetrics()
	for i := range 4 {
		gauge(md, at.Add(time.Duration(i)*30*time.Second), "team-a", "pa", "GPU-a", 0.01)
		gauge(md, at.Add(time.Duration(i)*30*time.Second), "team-b", "pb", "GPU-b", 0.01) // both on c1
	}
	require.NoError(t, s.WriteMetrics(ctx, md))
	scope := gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: "moc", Cluster: "c1", Namespace: "team-a"}, {Hub: "moc", Cluster: "c2", Namespace: "team-b"}}}
	f := gpustore.Filter{Scope: scope, Window: gpustore.Window{From: at.Add(-time.Hour), To: at.Add(time.Hour)}}
	for name, hw := range map[string]func() ([]string, error){
		"devices": func() ([]string, error) {
			d, err := s.Devices(ctx, gpustore.Filter{Scope: scope})
			var out []string
			for _, x := range d {
				out = append(out, x.ID)
			}
			return out, err
		},
		"idle": func() ([]string, error) {
			d, err := s.Idle(ctx, gpustore.Filter{Scope: scope})
			var out []string
			for _, x := range d {
				out = append(out, x.Device)
			}
			return out, err
		},
		"gpu-hours raw": func() ([]string, error) {
			return hoursDevices(s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: f, Aggregate: []string{gpustore.KeyDevice}, Source: gpustore.SourceRaw}))
		},
		"gpu-hours rollup": func() ([]string, error) {
			return hoursDevices(s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: f, Aggregate: []string{gpustore.KeyDevice}, Source: gpustore.SourceRollup}))
		},
	} {
		got, err := hw()
		require.NoError(t, err, name)
		assert.Equal(t, []string{"GPU-a"}, got, name)
	}
}

func hoursDevices(rows []gpustore.GPUHoursRow, err error) ([]string, error) {
	var out []string
	for _, r := range rows {
		out = append(out, r.Keys[gpustore.KeyDevice])
	}
	return out, err
}
