package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name, file, schedule, start string
		wantErr                     string
		wantBody, wantNot           string
	}{
		{name: "recording", file: "../../testdata/dcgm/gpu-a100-node-1.prom", wantBody: `pod="llm-finetune-7d9c8b6f5-x2k4q"`},
		{name: "schedule started long ago is over", schedule: "../../test/e2e/testdata/schedule.yaml", start: "2020-01-01T00:00:00Z", wantBody: `DCGM_FI_DEV_GPU_UTIL{gpu="0"`, wantNot: "team-"},
		{name: "schedule running", schedule: "../../test/e2e/testdata/schedule.yaml", start: time.Now().Add(-20 * time.Second).Format(time.RFC3339Nano), wantBody: `pod="train-a-0"`},
		{name: "bad start", schedule: "../../test/e2e/testdata/schedule.yaml", start: "yesterday", wantErr: "-start"},
		{name: "missing schedule", schedule: "nope.yaml", wantErr: "reading schedule"},
		{name: "missing recording", file: "nope.prom", wantErr: "nope.prom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, err := load(tt.file, tt.schedule, tt.start)
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
