package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name, file, schedule, start, steps string
		wantErr                            string
		wantBody, wantNot                  string
	}{
		{name: "recording", file: "../../testdata/dcgm/gpu-a100-node-1.prom", wantBody: `pod="llm-finetune-7d9c8b6f5-x2k4q"`},
		{name: "schedule started long ago is over", schedule: "../../test/e2e/testdata/schedule.yaml", start: "2020-01-01T00:00:00Z", wantBody: `DCGM_FI_DEV_GPU_UTIL{gpu="0"`, wantNot: "team-"},
		{name: "schedule running", schedule: "../../test/e2e/testdata/schedule.yaml", start: time.Now().Add(-20 * time.Second).Format(time.RFC3339Nano), wantBody: `pod="train-a-0"`},
		{name: "bad start", schedule: "../../test/e2e/testdata/schedule.yaml", start: "yesterday", wantErr: "-start"},
		{name: "missing schedule", schedule: "nope.yaml", wantErr: "reading schedule"},
		{name: "missing recording", file: "nope.prom", wantErr: "nope.prom"},
		{name: "schedule and steps", schedule: "../../test/e2e/testdata/schedule.yaml", steps: ".", wantErr: "exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, err := load(tt.file, tt.schedule, tt.start, tt.steps)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			assert.Equal(t, http.StatusOK, rr.Code)
			assert.Contains(t, rr.Body.String(), tt.wantBody)
			if tt.wantNot != "" {
				assert.NotContains(t, rr.Body.String(), tt.wantNot)
			}
		})
	}
}

func TestLoadSteps(t *testing.T) {
	dir := t.TempDir()
	// Written out of order: served in name order.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0002.prom"), []byte("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 20 1793491230000\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0001.prom"), []byte("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 10 1793491200000\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o600))
	h, what, err := load("", "", "", dir)
	require.NoError(t, err)
	assert.Equal(t, "2 steps from "+dir, what)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, want := range []string{" 10 ", " 20 ", ""} {
		resp, err := http.Get(srv.URL)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		if want == "" {
			assert.Empty(t, b, "after the last step")
			continue
		}
		assert.Contains(t, string(b), want)
	}
}

func TestLoadStepsRejects(t *testing.T) {
	_, _, err := load("", "", "", t.TempDir())
	require.ErrorContains(t, err, "no expositions")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0001.prom"), []byte("up 1\n"), 0o600))
	_, _, err = load("", "", "", dir)
	require.ErrorContains(t, err, "step 0")
	_, _, err = load(filepath.Join(dir, "absent.prom"), "", "", "")
	require.ErrorContains(t, err, "absent.prom")
	h, _, err := load("../../testdata/dcgm/gpu-a100-node-1.prom", "", "", "")
	require.NoError(t, err)
	require.NotNil(t, h)
}
