package main

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// testSize spans two calendar months (so the monthly grouping is tested)
// with MIG slices, lone samples and mid-hour starts (mix picks them).
var testSize = Size{GPUs: 30, Days: 40, Projects: 7}

func testCases(t *topology) []ReportQuery {
	end := start.AddDate(0, 0, t.size.Days)
	return []ReportQuery{
		{From: start, To: end},
		{From: start.Add(36 * time.Hour), To: end.Add(-5 * time.Hour)},
		{From: start, To: end, Hub: hubName, Cluster: t.devices[0].cluster, Namespace: t.projects[t.project(0, 0)]},
		{From: end, To: end.AddDate(0, 1, 0)}, // no rows
	}
}

// TestReportMatchesReference: each engine's report SQL over its bulk-loaded
// rollup gives what Go computes from the generator, so the timings compare
// the same answer.
func TestReportMatchesReference(t *testing.T) {
	ctx := context.Background()
	topo := newTopology(testSize)
	for _, name := range []string{"sqlite-modernc", "sqlite-ncruces", "duckdb"} {
		t.Run(name, func(t *testing.T) {
			e, err := newEngine(name)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "rollup.db")
			if err := e.Open(ctx, path); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Close() })
			if err := e.LoadRollup(ctx, topo); err != nil {
				t.Fatal(err)
			}
			for i, q := range testCases(topo) {
				wants, err := referenceReport(topo, q)
				if err != nil {
					t.Fatal(err)
				}
				want := wants[0]
				if i == 0 && len(want) != 2*2*testSize.Projects {
					t.Fatalf("reference has %d rows, want 2 months × 2 clusters × %d projects", len(want), testSize.Projects)
				}
				got, err := e.Report(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if err := sameReport(got, want); err != nil {
					t.Errorf("case %d: %v", i, err)
				}
			}
		})
	}
}

// TestDailyReportMatchesReference: the report from the daily rollup, built
// from the hourly one, gives the reference's answer on day-aligned windows
// and refuses the others rather than answer them wrongly.
func TestDailyReportMatchesReference(t *testing.T) {
	ctx := context.Background()
	topo := newTopology(testSize)
	dir := t.TempDir()
	hourly, daily := filepath.Join(dir, "hourly.db"), filepath.Join(dir, "daily.db")
	h, _ := newEngine("sqlite-modernc")
	if err := h.Open(ctx, hourly); err != nil {
		t.Fatal(err)
	}
	if err := h.LoadRollup(ctx, topo); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	e, _ := newEngine("sqlite-modernc-daily")
	if err := e.Open(ctx, daily); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.(*sqliteEngine).buildDaily(ctx, hourly); err != nil {
		t.Fatal(err)
	}
	for i, q := range testCases(topo) {
		got, err := e.Report(ctx, q)
		if q.From.Unix()%86400 != 0 || q.To.Unix()%86400 != 0 {
			if !errors.Is(err, errUnaligned) {
				t.Errorf("case %d: err %v, want %v", i, err, errUnaligned)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		wants, err := referenceReport(topo, q)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameReport(got, wants[0]); err != nil {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

// TestIngestStoresEveryRow: after the batches and a reopen, the samples
// table holds every row with the busy values written.
func TestIngestStoresEveryRow(t *testing.T) {
	ctx := context.Background()
	topo := newTopology(testSize)
	const batches = 5
	var wantBusy float64
	batch := make([]Sample, testSize.GPUs)
	for i := range batches {
		topo.fillBatch(batch, i)
		for _, s := range batch {
			wantBusy += s.Busy
		}
	}
	for _, name := range []string{"sqlite-modernc", "sqlite-modernc-sync-normal", "sqlite-ncruces", "duckdb", "duckdb-insert"} {
		t.Run(name, func(t *testing.T) {
			e, _ := newEngine(name)
			path := filepath.Join(t.TempDir(), "raw.db")
			if err := e.Open(ctx, path); err != nil {
				t.Fatal(err)
			}
			if err := e.CreateRaw(ctx); err != nil {
				t.Fatal(err)
			}
			for i := range batches {
				topo.fillBatch(batch, i)
				if err := e.IngestBatch(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			e, _ = newEngine(name)
			if err := e.Open(ctx, path); err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			var n int64
			var busy float64
			db := e.(interface{ sqlDB() *sql.DB }).sqlDB()
			if err := db.QueryRowContext(ctx, "SELECT count(*), sum(busy) FROM samples").Scan(&n, &busy); err != nil {
				t.Fatal(err)
			}
			if n != batches*int64(testSize.GPUs) || !approxEqual(busy, wantBusy) {
				t.Errorf("%d rows, busy sum %v; want %d, %v", n, busy, batches*testSize.GPUs, wantBusy)
			}
		})
	}
}

func TestRowHours(t *testing.T) {
	s := int64(time.Second)
	for _, tc := range []struct {
		name            string
		r               RollupRow
		alloc, usedWant float64
	}{
		{"full hour of 30 s samples", RollupRow{Samples: 120, FirstSeen: 0, LastSeen: 119 * 30 * s, Fraction: 1, BusySum: 60}, 1, 0.5},
		{"MIG slice", RollupRow{Samples: 120, FirstSeen: 0, LastSeen: 119 * 30 * s, Fraction: 0.5, BusySum: 120}, 0.5, 0.5},
		{"lone sample takes 30 s", RollupRow{Samples: 1, FirstSeen: 5 * s, LastSeen: 5 * s, Fraction: 1, BusySum: 1}, 30.0 / 3600, 30.0 / 3600},
		{"interval capped at 900 s", RollupRow{Samples: 2, FirstSeen: 0, LastSeen: 3000 * s, Fraction: 1}, 1800.0 / 3600, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, u := rowHours(&tc.r)
			if !approxEqual(a, tc.alloc) || !approxEqual(u, tc.usedWant) {
				t.Errorf("rowHours = %v, %v; want %v, %v", a, u, tc.alloc, tc.usedWant)
			}
		})
	}
}

// TestKeyOrderYieldsEveryRow: SQLite's bulk load (key order) and DuckDB's
// (time order) load the same rows.
func TestKeyOrderYieldsEveryRow(t *testing.T) {
	topo := newTopology(testSize)
	type key struct {
		h     int64
		hw    string
		stuff string
	}
	seen := map[key]int{}
	if err := topo.eachRollupTimeOrder(func(r *RollupRow) error {
		seen[key{r.Hour, r.HWID, r.Namespace + r.Pod}]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := topo.eachRollupKeyOrder(func(r *RollupRow) error {
		n++
		k := key{r.Hour, r.HWID, r.Namespace + r.Pod}
		if seen[k] != 1 {
			t.Fatalf("key order yields %+v, which time order yields %d times", k, seen[k])
		}
		seen[k]--
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != testSize.RollupRows() || len(seen) != testSize.RollupRows() {
		t.Errorf("key order %d rows, time order %d distinct, want %d", n, len(seen), testSize.RollupRows())
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want error
	}{
		{[]string{"-ingest", "sqlite-modernc,postgres"}, errNoSuchEngine},
		{[]string{"-gpus", "0"}, errBadSize},
	} {
		if _, err := parse(tc.args); !errors.Is(err, tc.want) {
			t.Errorf("parse(%q) = %v, want %v", tc.args, err, tc.want)
		}
	}
}
