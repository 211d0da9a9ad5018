package promqlreceiver

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Answers in the Prometheus HTTP API's format (docs: querying/api), as
// Prometheus, Thanos and prom-keycloak-proxy send them.
const (
	vectorDoc = `{"status":"success","data":{"resultType":"vector","result":[
	  {"metric":{"__name__":"DCGM_FI_PROF_GR_ENGINE_ACTIVE","GPU_I_ID":"1","GPU_I_PROFILE":"3g.40gb","Hostname":"gpu-a100-node-1",
	    "UUID":"GPU-6b0d","cluster":"nerc-ocp-prod","device":"nvidia1","exported_container":"notebook",
	    "exported_namespace":"team-b","exported_pod":"jupyter-alice-0","gpu":"1","modelName":"NVIDIA A100-SXM4-80GB",
	    "namespace":"nvidia-gpu-operator","pod":"nvidia-dcgm-exporter-x7k2p"},"value":[1764320400.123,"0.381124"]},
	  {"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","UUID":"GPU-aaaa","gpu":"0"},"value":[1764320400,"NaN"]},
	  {"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","UUID":"GPU-bbbb","gpu":"1"},"value":[1764320400,"+Inf"]}
	]}}`
	matrixDoc = `{"status":"success","data":{"resultType":"matrix","result":[
	  {"metric":{"__name__":"DCGM_FI_DEV_POWER_USAGE","UUID":"GPU-aaaa"},"values":[[1764320100,"61.5"],[1764320400,"300"]]},
	  {"metric":{"UUID":"GPU-bbbb"},"values":[[1764320400,"2"]]}
	]},"warnings":["PromQL info: metric might not be a counter"]}`
	scalarDoc     = `{"status":"success","data":{"resultType":"scalar","result":[1764320400.5,"42"]}}`
	stringDoc     = `{"status":"success","data":{"resultType":"string","result":[1764320400,"hello"]}}`
	errorDoc      = `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected end of input"}`
	histogramDoc  = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"h"},"histogram":[1764320400,{"count":"3","sum":"5","buckets":[[0,"0","1","3"]]}]}]}}`
	emptyVector   = `{"status":"success","data":{"resultType":"vector","result":[]}}`
	unknownStatus = `{"status":"partial"}`
)

func TestDecodeResponse(t *testing.T) {
	type sample struct {
		metric string
		ts     model.Time
		value  float64
	}
	tests := []struct {
		name            string
		doc             string
		want            []sample
		wantUnsupported int
		wantWarnings    int
		wantErr         error
	}{
		{name: "vector", doc: vectorDoc, want: []sample{
			{"DCGM_FI_PROF_GR_ENGINE_ACTIVE", 1764320400123, 0.381124},
			{"DCGM_FI_DEV_GPU_UTIL", 1764320400000, math.NaN()},
			{"DCGM_FI_DEV_GPU_UTIL", 1764320400000, math.Inf(1)},
		}},
		{name: "matrix", doc: matrixDoc, wantWarnings: 1, want: []sample{
			{"DCGM_FI_DEV_POWER_USAGE", 1764320100000, 61.5},
			{"DCGM_FI_DEV_POWER_USAGE", 1764320400000, 300},
			{"", 1764320400000, 2},
		}},
		{name: "scalar", doc: scalarDoc, want: []sample{{"", 1764320400500, 42}}},
		{name: "empty vector", doc: emptyVector},
		{name: "native histogram", doc: histogramDoc, wantUnsupported: 1},
		{name: "string", doc: stringDoc, wantErr: errUnsupported},
		{name: "error document", doc: errorDoc, wantErr: errAPI},
		{name: "unknown status", doc: unknownStatus, wantErr: errDecode},
		{name: "not JSON", doc: `<html>502 Bad Gateway</html>`, wantErr: errDecode},
		{name: "truncated", doc: vectorDoc[:200], wantErr: errDecode},
		{name: "bad value", doc: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`, wantErr: errDecode},
		{name: "unknown result type", doc: `{"status":"success","data":{"resultType":"table","result":[]}}`, wantErr: errDecode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := decodeResponse(strings.NewReader(tt.doc))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			var got []sample
			for _, s := range res.streams {
				for _, v := range s.Values {
					got = append(got, sample{string(s.Metric[model.MetricNameLabel]), v.Timestamp, float64(v.Value)})
				}
			}
			require.Len(t, got, len(tt.want))
			for i := range got {
				assert.Equal(t, tt.want[i].metric, got[i].metric)
				assert.Equal(t, tt.want[i].ts, got[i].ts)
				if math.IsNaN(tt.want[i].value) {
					assert.True(t, math.IsNaN(got[i].value))
				} else {
					assert.Equal(t, tt.want[i].value, got[i].value) //nolint:testifylint // exact decimal values
				}
			}
			assert.Equal(t, tt.wantUnsupported, res.unsupported)
			assert.Len(t, res.warnings, tt.wantWarnings)
		})
	}
}

func TestAPIErrorNamesPrometheusMessage(t *testing.T) {
	_, err := decodeResponse(strings.NewReader(errorDoc))
	require.ErrorIs(t, err, errAPI)
	assert.Contains(t, err.Error(), "bad_data")
	assert.Contains(t, err.Error(), "parse error")
	assert.Equal(t, "api_error", reasonOf(err))
}
