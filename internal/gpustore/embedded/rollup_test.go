package embedded

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// TestRollupsRetention: when the rollup retention cuts into a month and a
// day, the month and the day are dropped from the monthly and daily
// tables (they no longer sum their hours) and never recomputed, and the
// reports over the hours left answer as the hourly rollup.
func TestRollupsRetention(t *testing.T) {
	s, clock := openDaily(t)
	require.Len(t, states(t, s, "monthly_state", "month"), 2)
	cut := dailyStart.Add(day + 12*time.Hour) // inside March and inside its day
	clock.t = clock.t.Add(2 * time.Minute)    // past retentionEvery
	s.cfg.RollupRetention = clock.t.Sub(cut)
	// a write runs the retention pass
	lateSample(t, s, clock.t)

	for _, d := range states(t, s, "daily_state", "day") {
		require.GreaterOrEqual(t, d.start, cut.Unix(), "days cut into are dropped")
	}
	months := states(t, s, "monthly_state", "month")
	require.Len(t, months, 1, "March is dropped")
	require.Equal(t, april.Unix(), months[0].start)
	requireRollupsMatch(t, s, "after the cut")
	rollAll(t, s)
	require.Len(t, states(t, s, "monthly_state", "month"), 1, "March is not computed again")
	requireRollupsMatch(t, s, "after the passes")
}

// answers are the rollup queries' rows.
func answers(t *testing.T, s *Store) [][]gpustore.GPUHoursRow {
	t.Helper()
	var out [][]gpustore.GPUHoursRow
	for _, q := range rollupQueries {
		rows, err := s.GPUHours(context.Background(), q)
		require.NoError(t, err)
		out = append(out, rows)
	}
	return out
}

// TestRollupsRestart: the tables and what they cover survive a restart
// (the reports read them as before, to the bit), and a late sample after
// it is recomputed into them.
func TestRollupsRestart(t *testing.T) {
	s, clock := openDaily(t)
	ctx := context.Background()
	before := answers(t, s)
	days, months := states(t, s, "daily_state", "day"), states(t, s, "monthly_state", "month")
	require.NoError(t, s.Close())

	s2, err := Open(ctx, Config{Path: s.cfg.Path, Now: clock.now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s2.Close() })
	require.Equal(t, days, states(t, s2, "daily_state", "day"))
	require.Equal(t, months, states(t, s2, "monthly_state", "month"))
	require.Equal(t, before, answers(t, s2))

	// The first write after a restart runs the retention pass, which
	// recomputes the day and month the late sample made stale.
	lateSample(t, s2, dailyStart.Add(day+7*time.Hour))
	require.Equal(t, len(days), freshCount(t, s2, "daily_state", "day"))
	require.Equal(t, len(months), freshCount(t, s2, "monthly_state", "month"))
	for _, table := range []string{"daily", "monthly"} {
		var n int
		require.NoError(t, s2.r.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE hw_id = 'GPU-late'`).Scan(&n))
		require.Equal(t, 1, n, table)
	}
	requireRollupsMatch(t, s2, "recomputed after the restart")
}

// TestRollupsMigration: a version 2 file (whole closed days in the daily
// table, no covered hours, no monthly tables) opened by this build: its
// fresh days cover whole days, every month is stale until the passes
// compute it, and the reports answer as the hourly rollup throughout.
func TestRollupsMigration(t *testing.T) {
	s, clock := openDaily(t)
	ctx := context.Background()
	// Back to what version 2 left: only closed days are fresh, and whole.
	for _, q := range []string{
		`UPDATE daily_state SET fresh = 0 WHERE through < day + 86400`,
		`ALTER TABLE daily_state DROP COLUMN through`,
		`DROP TABLE monthly`, `DROP TABLE monthly_projects`, `DROP TABLE monthly_state`,
		// and no index of version 4
		`DROP INDEX series_hw_id`, `DROP INDEX series_parent`, `DROP INDEX samples_series`, `DROP INDEX hourly_project`,
		`DROP INDEX hourly_gpu`, `DROP INDEX sessions_stop`, `DROP INDEX sessions_project_stop`,
		`DROP INDEX sessions_device_stop`, `DROP INDEX sessions_parent_stop`,
		`UPDATE schema_version SET version = 2`,
	} {
		_, err := s.w.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	require.NoError(t, s.Close())

	s2, err := Open(ctx, Config{Path: s.cfg.Path, Now: clock.now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s2.Close() })
	days := states(t, s2, "daily_state", "day")
	require.Len(t, days, dailyDays)
	for i, d := range days {
		if i < dailyDays-1 {
			require.Equal(t, unitState{d.start, d.start + secondsPerDay, true}, d, "closed day %d", i)
		} else {
			require.Equal(t, unitState{d.start, d.start, false}, d, "the open day")
		}
	}
	require.Equal(t, []unitState{{march.Unix(), march.Unix(), false}, {april.Unix(), april.Unix(), false}},
		states(t, s2, "monthly_state", "month"))
	requireRollupsMatch(t, s2, "migrated")
	rollAll(t, s2)
	require.Equal(t, 2, freshCount(t, s2, "monthly_state", "month"))
	require.Equal(t, dailyDays, freshCount(t, s2, "daily_state", "day"))
	requireRollupsMatch(t, s2, "migrated and computed")
}
