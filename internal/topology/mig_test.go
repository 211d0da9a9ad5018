package topology

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSliceFraction(t *testing.T) {
	tests := []struct {
		model, profile string
		want           float64
		ok             bool
	}{
		{"NVIDIA A100-SXM4-80GB", "", 1, true},
		{"NVIDIA A100-SXM4-80GB", "3g.40gb", 3.0 / 7, true},
		{"NVIDIA A100-SXM4-40GB", "1g.5gb", 1.0 / 7, true},
		{"NVIDIA A100-SXM4-40GB", "1g.5gb+me", 1.0 / 7, true},
		{"NVIDIA A100-SXM4-80GB", "7g.80gb", 1, true},
		{"NVIDIA A30", "2g.12gb", 2.0 / 4, true},
		{"NVIDIA H100 80GB HBM3", "1c.2g.20gb", 1.0 / 7, true},
		{"NVIDIA GH200 480GB", "4g.48gb", 4.0 / 7, true},
		{"NVIDIA L40S", "1g.12gb", 0, false},
		{"NVIDIA A30", "7g.80gb", 0, false},
		{"NVIDIA A100-SXM4-80GB", "big", 0, false},
		{"NVIDIA A100-SXM4-80GB", "g.10gb", 0, false},
		{"NVIDIA A100-SXM4-80GB", "0g.10gb", 0, false},
		{"NVIDIA A100-SXM4-80GB", "3x.40gb", 0, false},
	}
	for _, tt := range tests {
		got, ok := SliceFraction(tt.model, tt.profile)
		assert.Equal(t, tt.ok, ok, "%s %s", tt.model, tt.profile)
		assert.InDelta(t, tt.want, got, 1e-12, "%s %s", tt.model, tt.profile)
	}
}

func TestNGSILDID(t *testing.T) {
	assert.Equal(t, "urn:ngsi-ld:GpuDevice:nerc-ocp-prod:wrk-10:3", Entity{Cluster: "nerc-ocp-prod", Node: "wrk-10", GPUIndex: "3"}.NGSILDID())
	assert.Empty(t, Entity{Node: "wrk-10", GPUIndex: "3"}.NGSILDID())
}
