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

const dailyDays = 5

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
	// the data's last day is still open: recompute what the passes after
	// the last writes would (up to its closed hours).
	rollAll(t, s)
	return s, clock
}

// rollAll runs the writer's daily and monthly passes until none is left;
// it returns the days and months computed.
func rollAll(t testing.TB, s *Store) int {
	t.Helper()
	n, err := s.rollAll(context.Background())
	require.NoError(t, err)
	return n
}

// unitState is a row of daily_state or monthly_state.
type unitState struct {
	start, through int64
	fresh          bool
}

// states reads daily_state or monthly_state in order.
func states(t *testing.T, s *Store, table, unit string) []unitState {
	t.Helper()
	rs, err := s.r.QueryContext(context.Background(), `SELECT `+unit+`, fresh, through FROM `+table+` ORDER BY `+unit)
	require.NoError(t, err)
	var out []unitState
	for rs.Next() {
		var st unitState
		require.NoError(t, rs.Scan(&st.start, &st.fresh, &st.through))
		out = append(out, st)
	}
	require.NoError(t, rs.Err())
	require.NoError(t, rs.Close())
	return out
}

func freshCount(t *testing.T, s *Store, table, unit string) int {
	n := 0
	for _, st := range states(t, s, table, unit) {
		if st.fresh {
			n++
		}
	}
	return n
}

// bothPaths answers q from the monthly and daily tables (where they serve)
// and from the hourly rollup alone.
func bothPaths(t *testing.T, s *Store, q gpustore.GPUHoursQuery) (rollups, hourly []gpustore.GPUHoursRow) {
	t.Helper()
	ctx := context.Background()
	rollups, err := s.GPUHours(ctx, q)
	require.NoError(t, err)
	s.hourlyOnly = true
	defer func() { s.hourlyOnly = false }()
	hourly, err = s.GPUHours(ctx, q)
	require.NoError(t, err)
	return rollups, hourly
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
			require.True(t, relEqual(v.w, v.g), "%s row %d %s: hourly %.17g, rollups %.17g", what, i, v.name, v.w, v.g)
		}
	}
}

var (
	day      = 24 * time.Hour
	march    = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	april    = march.AddDate(0, 1, 0)
	dailyEnd = dailyStart.Add(dailyDays * day)
)

// TestRollupsMatchHourly: every key and step, whole-node scopes (the
// monthly and daily tables) and the others (the hourly fallback), windows
// of whole months, days and odd hours, answer as the hourly computation
// alone, at 1e-9.
func TestRollupsMatchHourly(t *testing.T) {
	s, _ := openDaily(t)
	days := states(t, s, "daily_state", "day")
	require.Len(t, days, dailyDays)
	for i, d := range days {
		require.True(t, d.fresh, "day %d is in the daily table", i)
		if i < dailyDays-1 {
			require.Equal(t, d.start+secondsPerDay, d.through, "closed day %d whole", i)
		}
	}
	last := days[dailyDays-1]
	require.Less(t, last.through, last.start+secondsPerDay, "the open day covers its closed hours")
	require.Greater(t, last.through, last.start)
	require.Equal(t, []unitState{{march.Unix(), april.Unix(), true}, {april.Unix(), last.through, true}},
		states(t, s, "monthly_state", "month"), "March whole, April up to the open day's closed hours")

	windows := []gpustore.Window{
		{From: dailyStart, To: dailyEnd},
		{From: dailyStart.Add(day), To: dailyStart.Add(3 * day)},
		{From: dailyStart.Add(5*time.Hour + 17*time.Minute + 13*time.Second), To: dailyStart.Add(3*day + 13*time.Hour + 2*time.Minute)},
		{From: dailyStart.Add(day + 2*time.Hour), To: dailyStart.Add(day + 20*time.Hour + 30*time.Minute + 500*time.Millisecond)},
		{From: dailyStart.Add(-3 * day), To: dailyStart.Add(10 * day)},
		// a whole month and the open one
		{From: march, To: april.AddDate(0, 1, 0)},
		// one whole month
		{From: march, To: april},
		// March and what April covers
		{From: march, To: time.Unix(last.through, 0)},
		// April up to a day it covers
		{From: march, To: dailyEnd.Add(-36 * time.Hour)},
		// the open month
		{From: april, To: dailyEnd.Add(-90 * time.Minute)},
		// March clipped
		{From: march.Add(time.Hour), To: april.AddDate(0, 1, 0)},
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
		{gpustore.KeyPI, gpustore.KeyCluster, gpustore.KeyProject},
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
					rollups, hourly := bothPaths(t, s, q)
					requireSameRows(t, hourly, rollups, fmt.Sprintf("window %d, %s, %v, step %q", wi, sc.name, agg, st))
					if len(rollups) > 0 {
						nonEmpty++
					}
				}
			}
		}
	}
	require.Greater(t, nonEmpty, 2000, "the comparisons have rows")
}

// scaleTable multiplies a table's GPU-hours by k (on the writer; readers
// see it once committed).
func scaleTable(t *testing.T, s *Store, table string, k float64) {
	t.Helper()
	_, err := s.w.ExecContext(context.Background(), `UPDATE `+table+` SET alloc_s = alloc_s * ?`, k)
	require.NoError(t, err)
}

// share says how much of a report step a table answers.
type share int

const (
	none  share = iota
	whole       // all of the step
	part        // some of it (the hourly rollup the rest)
)

func when(cond bool, yes, no share) share {
	if cond {
		return yes
	}
	return no
}

// TestRollupsAnswer: the report reads each table where the plan says (a
// table scaled by 2 shows in exactly the steps it answers): whole months by
// project and PI from monthly_projects, other keys and the open month from
// monthly, days from daily, the open day's last hours from the hourly
// rollup.
func TestRollupsAnswer(t *testing.T) {
	s, _ := openDaily(t)
	ctx := context.Background()
	byProjectMonth := gpustore.GPUHoursQuery{
		Filter:    gpustore.Filter{Scope: allScope, Window: gpustore.Window{From: march, To: april.AddDate(0, 1, 0)}},
		Aggregate: []string{gpustore.KeyProject, gpustore.KeyPI}, Step: gpustore.StepMonth, Source: gpustore.SourceRollup,
	}
	byNodeMonth := byProjectMonth
	byNodeMonth.Aggregate = []string{gpustore.KeyNode}
	byProjectDay := byProjectMonth
	byProjectDay.Step = gpustore.StepDay
	openDay := dailyEnd.Add(-day)
	cases := []struct {
		table string
		q     gpustore.GPUHoursQuery
		share func(start time.Time) share // of the step starting then
	}{
		{"monthly_projects", byProjectMonth, func(st time.Time) share { return when(st.Equal(march), whole, none) }},
		{"monthly", byProjectMonth, func(st time.Time) share { return when(st.Equal(april), part, none) }},
		{"daily", byProjectMonth, func(time.Time) share { return none }},
		{"monthly", byNodeMonth, func(st time.Time) share { return when(st.Equal(march), whole, part) }},
		{"monthly_projects", byNodeMonth, func(time.Time) share { return none }},
		{"daily", byProjectDay, func(st time.Time) share { return when(st.Before(openDay), whole, part) }},
		{"monthly", byProjectDay, func(time.Time) share { return none }},
	}
	for _, c := range cases {
		t.Run(c.table+"/"+fmt.Sprint(c.q.Aggregate)+"/"+string(c.q.Step), func(t *testing.T) {
			want, err := s.GPUHours(ctx, c.q)
			require.NoError(t, err)
			scaleTable(t, s, c.table, 2)
			got, err := s.GPUHours(ctx, c.q)
			scaleTable(t, s, c.table, 0.5)
			require.NoError(t, err)
			require.Len(t, got, len(want))
			seen := map[share]int{}
			for i := range want {
				w, g := want[i].Allocated, got[i].Allocated
				sh := c.share(want[i].Start)
				what := fmt.Sprintf("row %d %v %s: %v, then %v", i, want[i].Keys, want[i].Start, w, g)
				switch sh {
				case none:
					require.True(t, relEqual(w, g), what)
				case whole:
					require.True(t, relEqual(2*w, g), what)
				case part:
					require.True(t, g >= w && g <= 2*w*(1+1e-9), what)
					if relEqual(w, g) || relEqual(2*w, g) {
						continue // this key had no hours from one side
					}
				}
				seen[sh]++
			}
			if c.share(march) != none || c.share(april) != none || c.share(openDay) != none {
				require.Positive(t, seen[whole]+seen[part], "the table answers some step")
			}
		})
	}
}

// lateSample writes one lone sample of a new device on a new node at t.
func lateSample(t *testing.T, s *Store, at time.Time) {
	t.Helper()
	md := pmetric.NewMetrics()
	late := dailyDev{"moc", "c1", "n-late", "GPU-late", "", "", 1}
	dailyPoint(md, late, at, 1, 0.5, false, false)
	require.NoError(t, s.WriteMetrics(context.Background(), md))
}

// rollupQueries are the reports a late sample or retention is checked on:
// one from each table.
var rollupQueries = []gpustore.GPUHoursQuery{
	{
		Filter:    gpustore.Filter{Scope: allScope, Window: gpustore.Window{From: dailyStart, To: dailyEnd}},
		Aggregate: []string{gpustore.KeyDevice}, Source: gpustore.SourceRollup,
	},
	{
		Filter:    gpustore.Filter{Scope: allScope, Window: gpustore.Window{From: march, To: april.AddDate(0, 1, 0)}},
		Aggregate: []string{gpustore.KeyProject, gpustore.KeyPI}, Step: gpustore.StepMonth, Source: gpustore.SourceRollup,
	},
	{
		Filter:    gpustore.Filter{Scope: allScope, Window: gpustore.Window{From: march, To: april.AddDate(0, 1, 0)}},
		Aggregate: []string{gpustore.KeyDevice}, Source: gpustore.SourceRollup,
	},
	{
		Filter:    gpustore.Filter{Scope: allScope, Window: gpustore.Window{From: march, To: april.AddDate(0, 1, 0)}},
		Aggregate: []string{gpustore.KeyProject}, Step: gpustore.StepDay, Source: gpustore.SourceRollup,
	},
}

// requireRollupsMatch: every rollup query answers as the hourly rollup.
func requireRollupsMatch(t *testing.T, s *Store, what string) {
	t.Helper()
	for i, q := range rollupQueries {
		rollups, hourly := bothPaths(t, s, q)
		require.NotEmpty(t, hourly, "%s: query %d", what, i)
		requireSameRows(t, hourly, rollups, fmt.Sprintf("%s: query %d", what, i))
	}
}

// TestRollupsLateSample: a sample written for an hour the daily and
// monthly tables already cover shows in the next report (its day and
// month are read from the hourly rollup until the writer recomputes them),
// and again after the recompute; a sample after the open day's covered
// hours leaves the day and its month fresh.
func TestRollupsLateSample(t *testing.T) {
	cases := []struct {
		name string
		at   func(open unitState) time.Time
		// stale: does it make its day and month stale?
		stale bool
	}{
		{"closed day of a whole month", func(unitState) time.Time { return dailyStart.Add(day + 7*time.Hour + 90*time.Second) }, true},
		{"covered hour of the open day", func(open unitState) time.Time { return time.Unix(open.through, 0).Add(-30 * time.Minute) }, true},
		{"after the open day's covered hours", func(open unitState) time.Time { return time.Unix(open.through, 0).Add(10 * time.Second) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := openDaily(t)
			ctx := context.Background()
			before, err := s.GPUHours(ctx, rollupQueries[0])
			require.NoError(t, err)
			days, months := freshCount(t, s, "daily_state", "day"), freshCount(t, s, "monthly_state", "month")
			open := states(t, s, "daily_state", "day")[dailyDays-1]

			// A new device on a new node, one lone sample: alone on its
			// node, it stands for LoneSampleIntervalS.
			lateSample(t, s, c.at(open))
			stale := 0
			if c.stale {
				stale = 1
			}
			require.Equal(t, days-stale, freshCount(t, s, "daily_state", "day"), "the late sample's day")
			require.Equal(t, months-stale, freshCount(t, s, "monthly_state", "month"), "the late sample's month")

			check := func(what string) {
				after, err := s.GPUHours(ctx, rollupQueries[0])
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
				requireRollupsMatch(t, s, what)
			}
			check("before the recompute")
			rollAll(t, s)
			require.Equal(t, days, freshCount(t, s, "daily_state", "day"), "the day is recomputed")
			require.Equal(t, months, freshCount(t, s, "monthly_state", "month"), "the month is recomputed")
			check("recomputed")
		})
	}
}
