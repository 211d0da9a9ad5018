package window

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 45, 30, 0, time.FixedZone("EST", -5*3600))
	at := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, time.UTC) }
	nowUTC := now.UTC()
	tests := []struct {
		in   string
		want gpustore.Window
	}{
		// minutes are exact; hours, days and weeks start on the hour
		{"30m", gpustore.Window{From: nowUTC.Add(-30 * time.Minute), To: nowUTC}},
		{"6h", gpustore.Window{From: at(4, 9, 0), To: nowUTC}},
		{"24h", gpustore.Window{From: at(3, 15, 0), To: nowUTC}},
		{"7d", gpustore.Window{From: time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC), To: nowUTC}},
		{"2w", gpustore.Window{From: time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC), To: nowUTC}},
		{"400d", gpustore.Window{From: time.Date(2025, 10, 30, 16, 0, 0, 0, time.UTC), To: nowUTC}},
		{"today", gpustore.Window{From: at(4, 0, 0), To: at(5, 0, 0)}},
		{"yesterday", gpustore.Window{From: at(3, 0, 0), To: at(4, 0, 0)}},
		{"week", gpustore.Window{From: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), To: at(7, 0, 0)}},
		{"lastweek", gpustore.Window{From: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}},
		{"month", gpustore.Window{From: at(1, 0, 0), To: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"lastmonth", gpustore.Window{From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: at(1, 0, 0)}},
		{"month:2026-02", gpustore.Window{From: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}},
		{"2026-11-01T00:00:00Z,2026-11-01T06:30:00+01:00", gpustore.Window{From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in, now)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseRefuses(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 45, 0, 0, time.UTC)
	for _, in := range []string{
		"", "0h", "401d", "3y", "month:2026-13", "month:1969-01", "2026-11-02T00:00:00Z,2026-11-01T00:00:00Z",
		"2025-01-01T00:00:00Z,2026-12-01T00:00:00Z", "yesterday,today",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := Parse(in, now)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalid), err)
			assert.NotEmpty(t, Reason(err))
		})
	}
}
