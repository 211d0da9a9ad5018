package promqlreceiver

import (
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func TestConvert(t *testing.T) {
	res, err := decodeResponse(strings.NewReader(vectorDoc + ""))
	require.NoError(t, err)
	q := query{id: "dcgm/nerc-ocp-prod", name: "dcgm", cluster: "nerc-ocp-prod"}
	out := convert(q, res, 0, model.Latest, "1.2.3")
	require.Equal(t, 3, out.points)
	assert.Equal(t, model.Time(1764320400123), out.newest)

	rm := out.metrics.ResourceMetrics().At(0)
	assert.Equal(t, map[string]any{"k8s.cluster.name": "nerc-ocp-prod"}, rm.Resource().Attributes().AsRaw())
	sm := rm.ScopeMetrics().At(0)
	assert.Equal(t, "1.2.3", sm.Scope().Version())
	require.Equal(t, 2, sm.Metrics().Len(), "one metric per __name__")
	m := sm.Metrics().At(0)
	assert.Equal(t, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", m.Name())
	require.Equal(t, pmetric.MetricTypeGauge, m.Type())
	dp := m.Gauge().DataPoints().At(0)
	assert.Equal(t, int64(1764320400123)*1e6, int64(dp.Timestamp()), "the sample's own timestamp, to the millisecond")
	assert.InDelta(t, 0.381124, dp.DoubleValue(), 1e-12)
	assert.Equal(t, map[string]any{
		"GPU_I_ID": "1", "GPU_I_PROFILE": "3g.40gb", "Hostname": "gpu-a100-node-1", "UUID": "GPU-6b0d",
		"cluster": "nerc-ocp-prod", "device": "nvidia1", "exported_container": "notebook",
		"exported_namespace": "team-b", "exported_pod": "jupyter-alice-0", "gpu": "1",
		"modelName": "NVIDIA A100-SXM4-80GB", "namespace": "nvidia-gpu-operator", "pod": "nvidia-dcgm-exporter-x7k2p",
	}, dp.Attributes().AsRaw(), "every label but __name__, as the series carries it")
	assert.Equal(t, 2, sm.Metrics().At(1).Gauge().DataPoints().Len())
}

func TestConvertSkipsAtOrBeforeCursor(t *testing.T) {
	res, err := decodeResponse(strings.NewReader(matrixDoc))
	require.NoError(t, err)
	tests := []struct {
		name        string
		cursor      model.Time
		wantPoints  int
		wantSkipped int
		wantNewest  model.Time
	}{
		{"no cursor", 0, 3, 0, 1764320400000},
		{"between samples", 1764320100000, 2, 1, 1764320400000},
		{"at the newest", 1764320400000, 0, 3, 0},
		{"after every sample", 1764320500000, 0, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := convert(query{name: "q"}, res, tt.cursor, model.Latest, "")
			assert.Equal(t, tt.wantPoints, out.points)
			assert.Equal(t, tt.wantSkipped, out.skipped)
			assert.Equal(t, tt.wantNewest, out.newest)
			assert.Equal(t, tt.wantPoints, out.metrics.DataPointCount())
			assert.Equal(t, 0, out.metrics.ResourceMetrics().At(0).Resource().Attributes().Len(), "no cluster: no resource attribute")
		})
	}
}

func TestConvertNamesUnnamedSeriesAfterTheQuery(t *testing.T) {
	res, err := decodeResponse(strings.NewReader(scalarDoc))
	require.NoError(t, err)
	out := convert(query{name: "gpus_busy"}, res, 0, model.Latest, "")
	require.Equal(t, 1, out.points)
	m := out.metrics.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	assert.Equal(t, "gpus_busy", m.Name())
	assert.Equal(t, 0, m.Gauge().DataPoints().At(0).Attributes().Len())
}
