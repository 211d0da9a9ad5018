package dcgmreplay

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testSchedule = `
gpus:
  - {node: n1, index: 0, uuid: GPU-0, model: NVIDIA A100-SXM4-80GB, pci_bus_id: "00000000:17:00.0"}
  - node: n1
    index: 1
    uuid: GPU-1
    model: NVIDIA A100-SXM4-80GB
    slices: [{id: "1", profile: 3g.40gb}, {id: "2", profile: 3g.40gb}]
allocations:
  - {namespace: team-a, pod: a-0, container: c, node: n1, gpu: 0, from: 10s, to: 20s, busy: 0.9}
  - {namespace: team-b, pod: b-0, container: c, node: n1, gpu: 1, slice: "2", from: 5s, to: 15s, busy: 0}
`

func writeSchedule(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "schedule.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestScheduleRender(t *testing.T) {
	s, err := LoadSchedule(writeSchedule(t, testSchedule))
	require.NoError(t, err)
	tests := []struct {
		name     string
		at       time.Duration
		want     []string
		wantNot  []string
		families int
	}{
		{
			name:    "before start every device is free",
			at:      -time.Second,
			want:    []string{`DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-0",pci_bus_id="00000000:17:00.0",device="nvidia0",modelName="NVIDIA A100-SXM4-80GB",Hostname="n1",DCGM_FI_DRIVER_VERSION="550.90.07",container="",namespace="",pod=""} 0`},
			wantNot: []string{"team-a", "team-b"},
		},
		{
			name:    "idle allocation on a slice",
			at:      6 * time.Second,
			want:    []string{`DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="1",UUID="GPU-1",pci_bus_id="",device="nvidia1",modelName="NVIDIA A100-SXM4-80GB",GPU_I_PROFILE="3g.40gb",GPU_I_ID="2",Hostname="n1",DCGM_FI_DRIVER_VERSION="550.90.07",container="c",namespace="team-b",pod="b-0"} 0.000000`},
			wantNot: []string{"team-a", `DCGM_FI_DEV_GPU_UTIL{gpu="1"`},
		},
		{
			name: "busy whole GPU",
			at:   10 * time.Second,
			want: []string{`DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-0",pci_bus_id="00000000:17:00.0",device="nvidia0",modelName="NVIDIA A100-SXM4-80GB",Hostname="n1",DCGM_FI_DRIVER_VERSION="550.90.07",container="c",namespace="team-a",pod="a-0"} 90`},
		},
		{
			name:    "end is exclusive",
			at:      20 * time.Second,
			wantNot: []string{"team-a", "team-b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := s.Render(tt.at)
			rec, err := Parse(body)
			require.NoError(t, err, "the rendering must be valid exposition")
			assert.Equal(t, 3*4-2, rec.Series, "three devices, four fields, GPU_UTIL not on the two slices")
			for _, w := range tt.want {
				assert.Contains(t, string(body), w+"\n")
			}
			for _, w := range tt.wantNot {
				assert.NotContains(t, string(body), w)
			}
		})
	}
}

func TestScheduleInvalid(t *testing.T) {
	head := strings.SplitN(testSchedule, "allocations:", 2)[0] + "allocations:\n"
	tests := []struct {
		name, allocations string
		want              error
	}{
		{"unknown GPU", `  - {namespace: x, pod: p, node: n2, gpu: 0, from: 1s, to: 2s}`, errScheduleGPU},
		{"whole GPU in MIG mode", `  - {namespace: x, pod: p, node: n1, gpu: 1, from: 1s, to: 2s}`, errScheduleGPU},
		{"unknown slice", `  - {namespace: x, pod: p, node: n1, gpu: 1, slice: "9", from: 1s, to: 2s}`, errScheduleGPU},
		{"ends before start", `  - {namespace: x, pod: p, node: n1, gpu: 0, from: 3s, to: 2s}`, errScheduleTimes},
		{"busy above 1", `  - {namespace: x, pod: p, node: n1, gpu: 0, from: 1s, to: 2s, busy: 85}`, errScheduleBusy},
		{"overlap", "  - {namespace: x, pod: p, node: n1, gpu: 0, from: 1s, to: 5s}\n  - {namespace: y, pod: q, node: n1, gpu: 0, from: 4s, to: 6s}", errScheduleOverlap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSchedule(writeSchedule(t, head+tt.allocations+"\n"))
			require.ErrorIs(t, err, tt.want)
		})
	}
	_, err := LoadSchedule(writeSchedule(t, "gpus: []\nsessions: []\n"))
	require.ErrorContains(t, err, "sessions", "unknown fields are named")
}

func TestScheduleHandler(t *testing.T) {
	s, err := LoadSchedule(writeSchedule(t, testSchedule))
	require.NoError(t, err)
	h := &scheduleHandler{s: s, start: time.Unix(1000, 0), now: func() time.Time { return time.Unix(1011, 0) }}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, http.StatusOK, rr.Code)
	assert.Equal(t, ContentType, rr.Header().Get("Content-Type"))
	assert.Contains(t, rr.Body.String(), `pod="a-0"`)
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodPost, "/metrics", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rr.Code)
}
