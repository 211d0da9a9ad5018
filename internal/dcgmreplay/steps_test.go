package dcgmreplay

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStepsAdvanceOnAcknowledgement(t *testing.T) {
	steps := [][]byte{
		[]byte("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 10 1793491200000\n"),
		[]byte("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 20 1793491230000\n"),
	}
	s, err := NewSteps(steps, false)
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	defer srv.Close()

	assert.Equal(t, string(steps[0]), get(t, srv.URL))
	assert.Equal(t, string(steps[0]), get(t, srv.URL), "served again until acknowledged")
	assert.False(t, s.Advance(1), "not the current step")
	assert.True(t, s.Advance(0))
	assert.False(t, s.Advance(0), "acknowledged twice")
	assert.Equal(t, string(steps[1]), get(t, srv.URL))
	select {
	case <-s.Done():
		t.Fatal("done before the last step was acknowledged")
	default:
	}
	assert.True(t, s.Advance(1))
	<-s.Done()
	assert.Empty(t, get(t, srv.URL), "nothing after the last step")
	assert.Equal(t, 2, s.Current())
}

func TestStepsAdvanceOnServe(t *testing.T) {
	s, err := NewSteps([][]byte{
		[]byte("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 10 1793491200000\n"),
		[]byte("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 20 1793491230000\n"),
	}, true)
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	defer srv.Close()
	assert.Contains(t, get(t, srv.URL), " 10 ")
	assert.Contains(t, get(t, srv.URL), " 20 ")
	<-s.Done()
	assert.Empty(t, get(t, srv.URL))
}

func TestStepsRejects(t *testing.T) {
	_, err := NewSteps(nil, false)
	require.ErrorIs(t, err, errNoSteps)
	_, err = NewSteps([][]byte{[]byte("DCGM_FI_DEV_GPU_UTIL 1\n"), []byte("up 1\n")}, false)
	require.ErrorContains(t, err, "step 1")
	require.ErrorIs(t, err, errNoDCGMSeries)
}
