package dcgmreplay

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fixture = "../../testdata/dcgm/gpu-a100-node-1.prom"

func TestLoadFixture(t *testing.T) {
	rec, err := Load(fixture)
	require.NoError(t, err)
	// 21 families over 4 entities, minus the 4 utilization families absent on the 2 MIG slices.
	assert.Equal(t, 21*4-4*2, rec.Series)
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{name: "not exposition", body: "{\"json\": true}\n", wantErr: "parsing recording"},
		{name: "no dcgm series", body: "# TYPE up gauge\nup 1\n", wantErr: errNoDCGMSeries.Error()},
		{name: "bad value", body: "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} many\n", wantErr: "parsing recording"},
		{name: "empty", body: "", wantErr: errNoDCGMSeries.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.prom"))
	require.ErrorContains(t, err, "absent.prom")
}

func TestServe(t *testing.T) {
	rec, err := Parse([]byte("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 97\n"))
	require.NoError(t, err)
	srv := httptest.NewServer(rec)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, ContentType, resp.Header.Get("Content-Type"))
	assert.Equal(t, "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 97\n", string(body))

	resp, err = http.Post(srv.URL+"/metrics", "text/plain", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(body)
}
