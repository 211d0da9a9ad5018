package embedded

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// The synthetic fleet's rollup hours (SQL), raw hours (WriteMetrics) and
// sessions all follow Held: GPU-hours by project and the sessions read back
// equal what Held says, counted here hour by hour.
func TestBuildSyntheticFollowsHeld(t *testing.T) {
	ctx := context.Background()
	f := SyntheticFleet{GPUs: 20, Days: 2, RawHours: 5, Start: benchStart}
	path := filepath.Join(t.TempDir(), "fleet.db")
	require.NoError(t, BuildSynthetic(ctx, path, f))
	s, err := Open(ctx, Config{Path: path, Now: f.End})
	require.NoError(t, err)
	defer func() { _ = s.Close() }()

	type want struct {
		allocated, used float64
		sessions        int
	}
	wants := map[string]*want{}
	for g := 0; g < f.GPUs; g++ {
		w := wants[f.Project(g)]
		if w == nil {
			w = &want{}
			wants[f.Project(g)] = w
		}
		was := false
		for h := f.Start.Unix(); h < f.End().Unix(); h += 3600 {
			held, busy := f.Held(g, h)
			if held {
				w.allocated++
				w.used += busy
			}
			if held && !was {
				w.sessions++
			}
			was = held
		}
	}

	all := gpustore.Filter{Scope: gpustore.Scope{All: true}, Window: gpustore.Window{From: f.Start, To: f.End()}}
	rows, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: all, Aggregate: []string{gpustore.KeyProject}, Source: gpustore.SourceRollup})
	require.NoError(t, err)
	require.Len(t, rows, len(wants))
	for _, r := range rows {
		w := wants[r.Keys[gpustore.KeyProject]]
		require.NotNil(t, w, r.Keys)
		assert.InDelta(t, w.allocated, r.Allocated, 1e-6, r.Keys)
		assert.InDelta(t, w.used, r.Used, 1e-6, r.Keys)
	}

	// The raw hours went through WriteMetrics: the latest state knows every GPU.
	devices, err := s.Devices(ctx, gpustore.Filter{Scope: gpustore.Scope{All: true}, Limit: gpustore.MaxLimit})
	require.NoError(t, err)
	assert.Len(t, devices, f.GPUs)
	raw, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{
		Scope:  gpustore.Scope{All: true},
		Window: gpustore.Window{From: f.End().Add(-time.Duration(f.RawHours) * time.Hour), To: f.End()},
	}, Source: gpustore.SourceRaw})
	require.NoError(t, err)
	require.Len(t, raw, 1)
	var rawWant float64
	for g := 0; g < f.GPUs; g++ {
		for h := f.End().Unix() - int64(f.RawHours)*3600; h < f.End().Unix(); h += 3600 {
			if held, _ := f.Held(g, h); held {
				rawWant++
			}
		}
	}
	// Raw GPU-hours count the time between samples: the last 30 s of the
	// window past its last sample are not counted.
	assert.InDelta(t, rawWant, raw[0].Allocated, math.Ceil(rawWant/float64(f.RawHours))*30/3600+1e-6)

	for p, w := range wants {
		sess, err := s.Sessions(ctx, gpustore.Filter{Scope: gpustore.Scope{All: true}, Namespace: p, Window: all.Window, Limit: gpustore.MaxLimit})
		require.NoError(t, err)
		assert.Len(t, sess, w.sessions, p)
	}
}
