package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadSteps(t *testing.T) {
	dir := t.TempDir()
	// Written out of order: served in name order.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0002.prom"), []byte("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 20 1793491230000\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0001.prom"), []byte("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 10 1793491200000\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o600))
	h, what, err := load("", dir)
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

func TestLoadRejects(t *testing.T) {
	_, _, err := load("", t.TempDir())
	require.ErrorContains(t, err, "no expositions")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0001.prom"), []byte("up 1\n"), 0o600))
	_, _, err = load("", dir)
	require.ErrorContains(t, err, "step 0")
	_, _, err = load(filepath.Join(dir, "absent.prom"), "")
	require.ErrorContains(t, err, "absent.prom")
	h, _, err := load("../../testdata/dcgm/gpu-a100-node-1.prom", "")
	require.NoError(t, err)
	require.NotNil(t, h)
}
