package gpustore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestReadsRollup(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 45, 0, 0, time.UTC)
	day := 24 * time.Hour
	hour := func(h int) time.Time { return time.Date(2026, 12, 4, h, 0, 0, 0, time.UTC) }
	tests := []struct {
		name   string
		source Source
		w      Window
		want   bool
	}{
		{"raw is raw", SourceRaw, Window{From: now.Add(-300 * day), To: now}, false},
		{"rollup is rollup", SourceRollup, Window{From: now.Add(-time.Minute), To: now}, true},
		{"auto: starts before the raw retention", SourceAuto, Window{From: now.Add(-15 * day), To: now.Add(-14 * day)}, true},
		{"auto: whole hours", SourceAuto, Window{From: hour(1), To: hour(5)}, true},
		{"auto: on the hour until now", SourceAuto, Window{From: hour(1).Add(-day), To: now}, true},
		{"auto: on the hour until just before now", SourceAuto, Window{From: hour(1), To: now.Add(-NowSlack)}, true},
		{"auto: ends in an hour past", SourceAuto, Window{From: hour(1), To: hour(5).Add(30 * time.Minute)}, false},
		{"auto: ends in this hour, before now", SourceAuto, Window{From: hour(1), To: now.Add(-NowSlack - time.Second)}, false},
		{"auto: starts inside an hour", SourceAuto, Window{From: hour(1).Add(time.Second), To: hour(5)}, false},
		{"auto: a duration ending now", SourceAuto, Window{From: now.Add(-day), To: now}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ReadsRollup(tt.source, tt.w, now, 14*day))
		})
	}
}
