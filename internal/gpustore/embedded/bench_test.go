package embedded

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
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

var benchStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

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
// raw samples' share of the file (series dictionary and the indexes on
// both included) per GPU-day.
func BenchmarkIngest(b *testing.B) {
	gpus := envInt(b, "EMB_BENCH_GPUS", 1000)
	ctx := context.Background()
	clock := &fixedClock{t: benchStart}
	s, err := Open(ctx, Config{Path: filepath.Join(b.TempDir(), "ingest.db"), Now: clock.now})
	require.NoError(b, err)
	defer func() { _ = s.Close() }()
	md := SyntheticFleet{GPUs: gpus}.Scrape(benchStart)
	pts := DataPoints(md)
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
		`SELECT sum(pgsize) FROM dbstat WHERE name IN ('samples', 'samples_series', 'series', 'sqlite_autoindex_series_1', 'series_hw_id', 'series_parent')`).Scan(&raw))
	if os.Getenv("EMB_BENCH_DBSTAT") != "" {
		var payload, unused, cells, pages int64
		require.NoError(b, s.w.QueryRowContext(ctx, `SELECT sum(payload), sum(unused), sum(ncell), count(*) FROM dbstat WHERE name = 'samples'`).Scan(&payload, &unused, &cells, &pages))
		b.Logf("samples: payload %d unused %d cells %d pages %d", payload, unused, cells, pages)
	}
	gpuDays := float64(gpus) * float64(b.N) * 30 / 86400
	b.ReportMetric(float64(raw)/gpuDays, "raw-bytes/GPU-day")
}

// reportFixture is the synthetic fleet of EMB_BENCH_REPORT_GPUS (1,000)
// GPUs over EMB_BENCH_REPORT_DAYS (400) days of hourly rollups (no raw
// hours), cached under os.TempDir by size.
func reportFixture(b *testing.B, gpus, days int) (string, time.Time) {
	f := SyntheticFleet{GPUs: gpus, Days: days, Start: benchStart}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("gpustore-embedded-report-%dgpus-%ddays-v4.db", gpus, days))
	if _, err := os.Stat(path); err == nil {
		return path, f.End()
	}
	t0 := time.Now()
	require.NoError(b, BuildSynthetic(context.Background(), path, f))
	b.Logf("built %s in %s", path, time.Since(t0).Round(time.Millisecond))
	return path, f.End()
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
	if len(rows) < SyntheticProjects {
		b.Fatalf("%d rows: the data set is not the benchmark's", len(rows))
	}
	b.ReportMetric(float64(len(rows)), "rows")
}
