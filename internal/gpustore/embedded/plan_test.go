package embedded

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// TestProjectSamplesFromTheIndex: a project's utilization reads its series'
// samples from samples_series alone (migration 5), not each sample's row by
// the primary key: that lookup, a random page per sample, was three quarters
// of a project page's CPU at 1,000 GPUs (docs/benchmarks.md).
func TestProjectSamplesFromTheIndex(t *testing.T) {
	s, _ := openFixture(t)
	q, _, _ := utilizationQuery(gpustore.UtilizationQuery{Filter: gpustore.Filter{
		Scope: gpustore.Scope{Projects: []gpustore.ProjectKey{teamA}}, Window: fixtureWin,
	}}, gpustore.MaxPoints)
	rows, err := s.r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q.String(), q.args...)
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	require.Contains(t, plan, "SEARCH s USING COVERING INDEX samples_series (series=? AND ts>? AND ts<?)", strings.Join(plan, "\n"))
}
