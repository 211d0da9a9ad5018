package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// Benchmark sizes, overridable for a quick or a larger run.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(b, err, name)
	return n
}

const (
	benchGPUsPerNode = 8
	benchProjects    = 200
)

var benchStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// scrape is one enriched scrape of a fleet as the gpumodel processor emits
// it: per node a resource for the GPUs no pod holds and one per pod (with
// the project's metadata), each GPU with the 7 pivoted DCGM fields. Points
// are returned to restamp them per iteration.
func scrape(gpus int, allocatedShare float64, rng *rand.Rand) (pmetric.Metrics, []pmetric.NumberDataPoint) {
	md := pmetric.NewMetrics()
	var pts []pmetric.NumberDataPoint
	names := []string{metricProf, metricUtil, metricFBUsed, metricFBFree, metricPower, metricTemp, metricXID}
	for g := 0; g < gpus; g++ {
		node := fmt.Sprintf("gpu-node-%03d", g/benchGPUsPerNode)
		rm := md.ResourceMetrics().AppendEmpty()
		res := rm.Resource().Attributes()
		res.PutStr(topology.AttrHubName, "moc")
		res.PutStr(topology.AttrK8sClusterName, fmt.Sprintf("cluster-%d", g/500))
		res.PutStr(topology.AttrK8sNodeName, node)
		allocated := rng.Float64() < allocatedShare
		busy := 0.0
		if allocated {
			p := g % benchProjects
			res.PutStr(topology.AttrK8sNamespaceName, fmt.Sprintf("project-%03d", p))
			res.PutStr(topology.AttrK8sPodName, fmt.Sprintf("job-%04d-0", g))
			res.PutStr(topology.AttrProjectID, strconv.Itoa(1000+p))
			res.PutStr(topology.AttrProjectName, fmt.Sprintf("Research project %d", p))
			res.PutStr(topology.AttrProjectPI, fmt.Sprintf("pi-%02d@example.edu", p%50))
			res.PutStr(topology.AttrProjectFieldOfScience, "Computer and Information Sciences")
			res.PutDouble(topology.AttrProjectGPUAllocation, 4)
			busy = rng.Float64()
		}
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		// DCGM's units: a ratio, whole percent, whole MiB, watts, whole °C.
		fb := float64(int(40000 * busy))
		vals := []float64{busy, float64(int(busy * 100)), fb, 81920 - fb, 60 + 300*busy, float64(int(35 + 40*busy)), 0}
		for i, name := range names {
			m := ms.AppendEmpty()
			m.SetName(name)
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetDoubleValue(vals[i])
			a := dp.Attributes()
			a.PutBool(topology.AttrGPUAllocated, allocated)
			a.PutDouble(topology.AttrSliceFraction, 1)
			a.PutStr(topology.AttrNGSILDID, "urn:ngsi-ld:GpuDevice:cluster:"+node+":"+strconv.Itoa(g%benchGPUsPerNode))
			a.PutStr(topology.AttrHwDriverVersion, "550.90.07")
			a.PutStr(topology.AttrHwID, fmt.Sprintf("GPU-%08x-0000-4000-8000-%012x", g, g))
			a.PutStr(topology.AttrHwModel, "NVIDIA A100-SXM4-80GB")
			a.PutStr(topology.AttrHwName, "nvidia"+strconv.Itoa(g%benchGPUsPerNode))
			a.PutStr(topology.AttrHwType, topology.HwTypeGPU)
			a.PutStr(topology.AttrHwVendor, topology.HwVendorNVIDIA)
			a.PutStr(topology.AttrNvidiaGPUIndex, strconv.Itoa(g%benchGPUsPerNode))
			pts = append(pts, dp)
		}
	}
	return md, pts
}

// cpuTime is this process's user + system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngest writes one scrape of EMB_BENCH_GPUS (1,000) GPUs × 7 DCGM
// fields per iteration, 30 s apart, into a fresh store: raw rows, hourly
// rollup and latest state in one transaction each. points/cpu-s is the
// goal's "per core" (the writer is one connection); the disk metric is the
// raw samples' share of the file (series dictionary included) per GPU-day.
func BenchmarkIngest(b *testing.B) {
	gpus := envInt(b, "EMB_BENCH_GPUS", 1000)
	ctx := context.Background()
	clock := &fixedClock{t: benchStart}
	s, err := Open(ctx, Config{Path: filepath.Join(b.TempDir(), "ingest.db"), Now: clock.now})
	require.NoError(b, err)
	defer func() { _ = s.Close() }()
	md, pts := scrape(gpus, 0.7, rand.New(rand.NewPCG(1, 2)))
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		clock.t = benchStart.Add(time.Duration(i) * 30 * time.Second)
		ts := pcommon.NewTimestampFromTime(clock.t)
		for _, dp := range pts {
			dp.SetTimestamp(ts)
		}
		b.StartTimer()
		if err := s.WriteMetrics(ctx, md); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	points := float64(len(pts)) * float64(b.N)
	b.ReportMetric(points/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(points/cpu.Seconds(), "points/cpu-s")
	var raw int64
	require.NoError(b, s.w.QueryRowContext(ctx,
		`SELECT sum(pgsize) FROM dbstat WHERE name IN ('samples', 'series', 'sqlite_autoindex_series_1')`).Scan(&raw))
	if os.Getenv("EMB_BENCH_DBSTAT") != "" {
		var payload, unused, cells, pages int64
		require.NoError(b, s.w.QueryRowContext(ctx, `SELECT sum(payload), sum(unused), sum(ncell), count(*) FROM dbstat WHERE name = 'samples'`).Scan(&payload, &unused, &cells, &pages))
		b.Logf("samples: payload %d unused %d cells %d pages %d", payload, unused, cells, pages)
	}
	gpuDays := float64(gpus) * float64(b.N) * 30 / 86400
	b.ReportMetric(float64(raw)/gpuDays, "raw-bytes/GPU-day")
}

// reportFixture is EMB_BENCH_REPORT_GPUS (1,000) GPUs on 8-GPU nodes, over
// EMB_BENCH_REPORT_DAYS (400) days of hourly rollups, each GPU held by one of
// 200 projects 70% of the hours at a varying busy ratio, generated in SQL
// (the rollup rows directly, not through WriteMetrics: 9.6M series-hours),
// then the daily table by the writer's own recompute (rollDays), and cached
// under os.TempDir by size.
func reportFixture(b *testing.B, gpus, days int) (string, time.Time) {
	end := benchStart.AddDate(0, 0, days)
	path := filepath.Join(os.TempDir(), fmt.Sprintf("gpustore-embedded-report-%dgpus-%ddays-v3.db", gpus, days))
	if _, err := os.Stat(path); err == nil {
		return path, end
	}
	ctx := context.Background()
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	s, err := Open(ctx, Config{Path: tmp, Now: func() time.Time { return end }})
	require.NoError(b, err)
	t0 := time.Now()
	_, err = s.w.ExecContext(ctx, `
	WITH RECURSIVE h(hour) AS (SELECT ? UNION ALL SELECT hour + 3600 FROM h WHERE hour + 3600 < ?),
	g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?),
	x AS (SELECT hour, i, ((hour / 3600) * 7 + i * 13) % 10 < 7 AS held,
		((hour / 3600) * 31 + i * 17) % 100 / 100.0 AS busy FROM h, g)
	INSERT INTO hourly SELECT hour, 'moc', printf('cluster-%d', i / 500), printf('gpu-node-%03d', i / 8),
		CASE WHEN held THEN printf('project-%03d', i % 200) ELSE '' END,
		CASE WHEN held THEN printf('job-%04d-0', i) ELSE '' END,
		printf('GPU-%08x-0000-4000-8000-%012x', i, i), held,
		CASE WHEN held THEN printf('Research project %d', i % 200) ELSE '' END,
		CASE WHEN held THEN printf('pi-%02d@example.edu', i % 200 % 50) ELSE '' END,
		'NVIDIA A100-SXM4-80GB', '', 1.0, 120, hour * 1000000000, (hour + 3570) * 1000000000, (hour + 3570) * 1000000000,
		120 * busy, 120, 120 * busy, 120
	FROM x ORDER BY hour, i`, benchStart.Unix(), end.Unix(), gpus)
	require.NoError(b, err)
	// The rows went in around WriteMetrics: mark their days and months
	// stale as it would, and compute them as its retention passes do.
	_, err = s.w.ExecContext(ctx, `INSERT INTO daily_state (day, fresh, through)
		SELECT d, 0, d FROM (SELECT DISTINCT hour - (hour % 86400 + 86400) % 86400 AS d FROM hourly)`)
	require.NoError(b, err)
	_, err = s.w.ExecContext(ctx, `INSERT INTO monthly_state (month, fresh, through)
		SELECT m, 0, m FROM (SELECT DISTINCT CAST(strftime('%s', day, 'unixepoch', 'start of month') AS INTEGER) AS m FROM daily_state)`)
	require.NoError(b, err)
	t1 := time.Now()
	rollAll(b, s)
	b.Logf("daily and monthly tables in %s", time.Since(t1).Round(time.Millisecond))
	require.NoError(b, s.Close())
	require.NoError(b, os.Rename(tmp, path))
	_ = os.Remove(tmp + "-wal")
	_ = os.Remove(tmp + "-shm")
	b.Logf("built %s in %s", path, time.Since(t0).Round(time.Millisecond))
	return path, end
}

// BenchmarkMonthlyReportRollup is the monthly GPU-hours report by project
// over the whole rollup data set (400 days, 1,000 GPUs, 200 projects).
func BenchmarkMonthlyReportRollup(b *testing.B) {
	gpus := envInt(b, "EMB_BENCH_REPORT_GPUS", 1000)
	days := envInt(b, "EMB_BENCH_REPORT_DAYS", 400)
	path, end := reportFixture(b, gpus, days)
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: path, Now: func() time.Time { return end }})
	require.NoError(b, err)
	defer func() { _ = s.Close() }()
	// A data set cached by an earlier build gets its daily and monthly
	// tables here, once (migration 3 marks every month stale).
	t0 := time.Now()
	if n := rollAll(b, s); n > 0 {
		b.Logf("daily and monthly tables: %d days and months in %s", n, time.Since(t0).Round(time.Millisecond))
	}
	q := gpustore.GPUHoursQuery{
		Filter:    gpustore.Filter{Scope: gpustore.Scope{All: true}, Window: gpustore.Window{From: end.AddDate(0, 0, -days), To: end}},
		Aggregate: []string{gpustore.KeyProject, gpustore.KeyPI}, Step: gpustore.StepMonth, Source: gpustore.SourceRollup,
	}
	b.ResetTimer()
	cpu0 := cpuTime(b)
	var rows []gpustore.GPUHoursRow
	for i := 0; i < b.N; i++ {
		if rows, err = s.GPUHours(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// CPU time per report: what one idle core would take, on a shared machine.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	var n int64
	require.NoError(b, s.r.QueryRowContext(ctx, `SELECT count(*) FROM hourly`).Scan(&n))
	b.ReportMetric(float64(n), "rollup-rows")
	require.NoError(b, s.r.QueryRowContext(ctx, `SELECT count(*) FROM daily`).Scan(&n))
	b.ReportMetric(float64(n), "daily-rows")
	require.NoError(b, s.r.QueryRowContext(ctx, `SELECT count(*) FROM monthly`).Scan(&n))
	b.ReportMetric(float64(n), "monthly-rows")
	if len(rows) < benchProjects {
		b.Fatalf("%d rows: the data set is not the benchmark's", len(rows))
	}
	b.ReportMetric(float64(len(rows)), "rows")
}
