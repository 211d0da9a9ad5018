package embedded

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// dailyDev is one device of the generated fleet.
type dailyDev struct {
	hub, cluster, node, hwID, parent, profile string
	fraction                                  float64
}

var dailyFleet = []dailyDev{
	{"moc", "c1", "n1", "GPU-n1-0", "", "", 1},
	{"moc", "c1", "n1", "GPU-n1-1", "", "", 1},
	// a MIG GPU: two slices of one GPU
	{"moc", "c1", "n2", "GPU-n2-0/1g.10gb/0", "GPU-n2-0", "1g.10gb", 1.0 / 7},
	{"moc", "c1", "n2", "GPU-n2-0/3g.40gb/1", "GPU-n2-0", "3g.40gb", 3.0 / 7},
	{"moc", "c1", "n2", "GPU-n2-1", "", "", 1},
	{"moc", "c2", "n3", "GPU-n3-0", "", "", 1},
	{"hub2", "c9", "n4", "GPU-n4-0", "", "", 1},
	{"hub2", "c9", "n4", "GPU-n4-1", "", "", 1},
}

var dailyProjects = []struct{ ns, pi string }{{"", ""}, {"team-a", "pi-a@example.edu"}, {"team-b", "pi-b@example.edu"}, {"team-c", "pi-a@example.edu"}}

// dailyPoint appends one enriched point set of d at t: FB_USED (the rollup's
// clock) unless noClock, and PROF or else GPU_UTIL as the busy field.
func dailyPoint(md pmetric.Metrics, d dailyDev, t time.Time, p int, busy float64, useUtil, noClock bool) {
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr(topology.AttrHubName, d.hub)
	res.PutStr(topology.AttrK8sClusterName, d.cluster)
	res.PutStr(topology.AttrK8sNodeName, d.node)
	pr := dailyProjects[p]
	if pr.ns != "" {
		res.PutStr(topology.AttrK8sNamespaceName, pr.ns)
		res.PutStr(topology.AttrK8sPodName, pr.ns+"-job")
		res.PutStr(topology.AttrProjectPI, pr.pi)
	}
	vals := map[string]float64{metricXID: 0}
	if !noClock {
		vals[metricFBUsed] = 100
	}
	if useUtil {
		vals[metricUtil] = math.Round(busy * 100)
	} else {
		vals[metricProf] = busy
	}
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for name, v := range vals {
		m := ms.AppendEmpty()
		m.SetName(name)
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t))
		dp.SetDoubleValue(v)
		a := dp.Attributes()
		a.PutStr(topology.AttrHwID, d.hwID)
		if d.parent != "" {
			a.PutStr(topology.AttrHwParent, d.parent)
			a.PutStr(topology.AttrNvidiaMIGProfile, d.profile)
		}
		a.PutStr(topology.AttrHwModel, "NVIDIA A100-SXM4-80GB")
		a.PutBool(topology.AttrGPUAllocated, pr.ns != "")
		a.PutDouble(topology.AttrSliceFraction, d.fraction)
	}
}

// dailyStart is a Sunday three days before a month ends: the data crosses
// an ISO week and a month.
var dailyStart = time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)

const dailyDays = 4

// openDaily writes dailyDays of generated hours through WriteMetrics, one
// write per hour: per device-hour a holder, and a pattern of samples
// (regular, lone, irregular, none, or without a clock), busy or idle.
func openDaily(t *testing.T) (*Store, *fixedClock) {
	t.Helper()
	ctx := context.Background()
	clock := &fixedClock{t: dailyStart}
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "daily.db"), Now: clock.now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	rng := rand.New(rand.NewPCG(16, 1))
	for h := range dailyDays * 24 {
		hour := dailyStart.Add(time.Duration(h) * time.Hour)
		md := pmetric.NewMetrics()
		for _, d := range dailyFleet {
			p := rng.IntN(len(dailyProjects))
			busy := rng.Float64()
			if rng.IntN(4) == 0 {
				busy = 0.02 // an idle hour
			}
			useUtil, noClock := rng.IntN(5) == 0, rng.IntN(12) == 0
			var mins []int
			switch rng.IntN(6) {
			case 0: // none this hour
			case 1: // a lone sample
				mins = []int{rng.IntN(60)}
			case 2: // irregular
				for m := range 60 {
					if rng.IntN(7) == 0 {
						mins = append(mins, m)
					}
				}
			default: // every 5 minutes, 10 or 20 s into the minute
				for m := 0; m < 60; m += 5 {
					mins = append(mins, m)
				}
			}
			off := time.Duration(10*(1+rng.IntN(2))) * time.Second
			for _, m := range mins {
				dailyPoint(md, d, hour.Add(time.Duration(m)*time.Minute+off), p, busy, useUtil, noClock)
			}
		}
		clock.t = hour.Add(time.Hour)
		require.NoError(t, s.WriteMetrics(ctx, md))
	}
	// the data's last day is still open (less than closedAfter past it):
	// recompute what is closed, as the passes after later writes would.
	rollAll(t, s)
	return s, clock
}

// rollAll runs the writer's daily passes until none is left; it returns
// the days computed.
func rollAll(t testing.TB, s *Store) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for {
		n, err := s.rollDays(context.Background(), daysPerPass)
		require.NoError(t, err)
		if n == 0 {
			return total
		}
		total += n
	}
}

func freshCount(t *testing.T, s *Store) int {
	var n int
	require.NoError(t, s.r.QueryRowContext(context.Background(), `SELECT count(*) FROM daily_state WHERE fresh = 1`).Scan(&n))
	return n
}

// bothPaths answers q from the daily table (where it serves) and from the
// hourly rollup alone.
func bothPaths(t *testing.T, s *Store, q gpustore.GPUHoursQuery) (daily, hourly []gpustore.GPUHoursRow) {
	t.Helper()
	ctx := context.Background()
	daily, err := s.GPUHours(ctx, q)
	require.NoError(t, err)
	s.hourlyOnly = true
	defer func() { s.hourlyOnly = false }()
	hourly, err = s.GPUHours(ctx, q)
	require.NoError(t, err)
	return daily, hourly
}

func relEqual(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func requireSameRows(t *testing.T, want, got []gpustore.GPUHoursRow, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		w, g := want[i], got[i]
		require.True(t, w.Start.Equal(g.Start) && w.End.Equal(g.End), "%s row %d: %s-%s vs %s-%s", what, i, w.Start, w.End, g.Start, g.End)
		require.Equal(t, w.Keys, g.Keys, "%s row %d", what, i)
		require.Equal(t, w.Devices, g.Devices, "%s row %d devices", what, i)
		for _, v := range []struct {
			name string
			w, g float64
		}{{"allocated", w.Allocated, g.Allocated}, {"used", w.Used, g.Used}, {"idle", w.Idle, g.Idle}} {
			require.True(t, relEqual(v.w, v.g), "%s row %d %s: hourly %.17g, daily %.17g", what, i, v.name, v.w, v.g)
		}
	}
}

// TestDailyMatchesHourly: every key and step, whole-node scopes (the daily
// table) and the others (the hourly fallback), aligned and unaligned
// windows, answer as the hourly computation alone, at 1e-9.
func TestDailyMatchesHourly(t *testing.T) {
	s, _ := openDaily(t)
	require.Equal(t, dailyDays-1, freshCount(t, s), "the closed days are in the daily table")
	var n int
	require.NoError(t, s.r.QueryRow(`SELECT count(*) FROM daily`).Scan(&n))
	require.Positive(t, n)

	day := 24 * time.Hour
	windows := []gpustore.Window{
		{From: dailyStart, To: dailyStart.Add(dailyDays * day)},
		{From: dailyStart.Add(day), To: dailyStart.Add(3 * day)},
		{From: dailyStart.Add(5*time.Hour + 17*time.Minute + 13*time.Second), To: dailyStart.Add(3*day + 13*time.Hour + 2*time.Minute)},
		{From: dailyStart.Add(day + 2*time.Hour), To: dailyStart.Add(day + 20*time.Hour + 30*time.Minute + 500*time.Millisecond)},
		{From: dailyStart.Add(-3 * day), To: dailyStart.Add(10 * day)},
	}
	scopes := []struct {
		name string
		f    gpustore.Filter
	}{
		{"all", gpustore.Filter{Scope: allScope}},
		{"hub", gpustore.Filter{Scope: gpustore.Scope{Hubs: []string{"moc"}}}},
		{"cluster", gpustore.Filter{Scope: gpustore.Scope{Clusters: []gpustore.ClusterKey{{Hub: "hub2", Cluster: "c9"}}}}},
		{"hub and cluster", gpustore.Filter{Scope: gpustore.Scope{Hubs: []string{"hub2"}, Clusters: []gpustore.ClusterKey{{Hub: "moc", Cluster: "c2"}}}}},
		{"all, node filter", gpustore.Filter{Scope: allScope, Node: "n2"}},
		{"all, cluster filter", gpustore.Filter{Scope: allScope, Hub: "moc", Cluster: "c1"}},
		// partial nodes: the hourly fallback
		{"project", gpustore.Filter{Scope: gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: "moc", Cluster: "c1", Namespace: "team-a"}}}}},
		{"all, namespace filter", gpustore.Filter{Scope: allScope, Namespace: "team-b"}},
		{"all, device filter", gpustore.Filter{Scope: allScope, Device: "GPU-n2-0"}},
	}
	aggs := [][]string{
		nil,
		{gpustore.KeyProject},
		{gpustore.KeyPI},
		{gpustore.KeyCluster},
		{gpustore.KeyNode},
		{gpustore.KeyModel},
		{gpustore.KeyProfile},
		{gpustore.KeyDevice},
		{gpustore.KeyProject, gpustore.KeyPI},
		{gpustore.KeyNode, gpustore.KeyProfile, gpustore.KeyProject},
	}
	steps := []gpustore.Step{gpustore.StepNone, gpustore.StepDay, gpustore.StepWeek, gpustore.StepMonth}
	nonEmpty := 0
	for wi, w := range windows {
		for _, sc := range scopes {
			for _, agg := range aggs {
				for _, st := range steps {
					f := sc.f
					f.Window = w
					q := gpustore.GPUHoursQuery{Filter: f, Aggregate: agg, Step: st, Source: gpustore.SourceRollup}
					daily, hourly := bothPaths(t, s, q)
					requireSameRows(t, hourly, daily, fmt.Sprintf("window %d, %s, %v, step %q", wi, sc.name, agg, st))
					if len(daily) > 0 {
						nonEmpty++
					}
				}
			}
		}
	}
	require.Greater(t, nonEmpty, 1000, "the comparisons have rows")
}

// TestDailyLateSample: a sample written for a day already in the daily
// table shows in the next report (the day is read from the hourly rollup
// until the writer recomputes it), and again after the recompute.
func TestDailyLateSample(t *testing.T) {
	s, _ := openDaily(t)
	ctx := context.Background()
	day := 24 * time.Hour
	q := gpustore.GPUHoursQuery{
		Filter:    gpustore.Filter{Scope: allScope, Window: gpustore.Window{From: dailyStart, To: dailyStart.Add(dailyDays * day)}},
		Aggregate: []string{gpustore.KeyDevice}, Source: gpustore.SourceRollup,
	}
	before, err := s.GPUHours(ctx, q)
	require.NoError(t, err)
	fresh := freshCount(t, s)

	// A new device on a new node, one lone sample on the second (closed)
	// day: alone on its node, it stands for LoneSampleIntervalS.
	md := pmetric.NewMetrics()
	late := dailyDev{"moc", "c1", "n-late", "GPU-late", "", "", 1}
	dailyPoint(md, late, dailyStart.Add(day+7*time.Hour+90*time.Second), 1, 0.5, false, false)
	require.NoError(t, s.WriteMetrics(ctx, md))
	require.Equal(t, fresh-1, freshCount(t, s), "the late sample's day is stale")

	check := func(what string) {
		after, err := s.GPUHours(ctx, q)
		require.NoError(t, err)
		require.Len(t, after, len(before)+1, what)
		var got *gpustore.GPUHoursRow
		for i := range after {
			if after[i].Keys[gpustore.KeyDevice] == "GPU-late" {
				got = &after[i]
			}
		}
		require.NotNil(t, got, what)
		require.InDelta(t, float64(gpustore.LoneSampleIntervalS)/3600, got.Allocated, 1e-12, what)
		daily, hourly := bothPaths(t, s, q)
		requireSameRows(t, hourly, daily, what)
	}
	check("stale day")
	rollAll(t, s)
	require.Equal(t, fresh, freshCount(t, s), "the day is recomputed")
	check("recomputed day")
}
