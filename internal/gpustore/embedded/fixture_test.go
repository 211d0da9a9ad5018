package embedded

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/internal/dashboardfixture"
)

const testdata = "../../../tests/dashboards/testdata"

// fixtureEnd is the end of the recorded schedule: the store's clock in the
// fixture tests, so retention keeps the recorded samples.
var fixtureEnd = time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)

func loadSchedule(t testing.TB) *dashboardfixture.Schedule {
	s, err := dashboardfixture.Load(filepath.Join(testdata, "schedule.json"))
	require.NoError(t, err)
	return s
}

func readMetrics(t testing.TB) []pmetric.Metrics {
	t.Helper()
	out, err := dashboardfixture.RecordedMetrics(testdata)
	require.NoError(t, err)
	return out
}

func readTraces(t testing.TB) []ptrace.Traces {
	t.Helper()
	out, err := dashboardfixture.RecordedTraces(testdata)
	require.NoError(t, err)
	return out
}

// fixedClock is a settable clock for Config.Now.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

// openFixture is a store in t.TempDir() holding the recorded fixtures.
func openFixture(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gpu.db")
	s, err := Open(context.Background(), Config{Path: path, Now: func() time.Time { return fixtureEnd }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	for _, md := range readMetrics(t) {
		require.NoError(t, s.WriteMetrics(context.Background(), md))
	}
	for _, td := range readTraces(t) {
		require.NoError(t, s.WriteTraces(context.Background(), td))
	}
	return s, path
}
