package topology // import "github.com/nerc-project/ai-telemetry-collector/internal/topology"

import (
	"strconv"
	"strings"
)

// migSlicesByModel is how many compute slices ("g") a GPU model splits into
// under MIG, from NVIDIA's MIG user guide: the A30 has 4, the Ampere, Hopper and
// Blackwell data-center GPUs 7. Longer names are matched first.
var migSlicesByModel = []struct {
	model  string
	slices int
}{
	{"A30", 4},
	{"A100", 7},
	{"A800", 7},
	{"H100", 7},
	{"H800", 7},
	{"H200", 7},
	{"H20", 7},
	{"GH200", 7},
	{"B200", 7},
	{"GB200", 7},
	{"B300", 7},
	{"RTX PRO 6000", 4},
}

// SliceFraction is the share of the whole GPU a data point covers: 1 for a
// whole GPU, and for a MIG slice its compute slices over the model's (a
// "3g.40gb" slice of an A100 is 3/7). ok is false when the profile or the model
// is not known; callers count that and leave the fraction out.
func SliceFraction(model, profile string) (fraction float64, ok bool) {
	if profile == "" {
		return 1, true
	}
	g, ok := profileComputeSlices(profile)
	if !ok {
		return 0, false
	}
	total := modelSlices(model)
	if total == 0 || g > total {
		return 0, false
	}
	return float64(g) / float64(total), true
}

// profileComputeSlices reads N from "Ng.Mgb", "Ng.Mgb+me" or "Nc.Mg.Kgb" (a
// compute instance profile, where N counts compute slices too).
func profileComputeSlices(profile string) (int, bool) {
	head, _, found := strings.Cut(profile, ".")
	if !found || len(head) < 2 {
		return 0, false
	}
	unit := head[len(head)-1]
	if unit != 'g' && unit != 'c' {
		return 0, false
	}
	n, err := strconv.Atoi(head[:len(head)-1])
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

func modelSlices(model string) int {
	upper := strings.ToUpper(model)
	best, bestLen := 0, 0
	for _, m := range migSlicesByModel {
		if strings.Contains(upper, m.model) && len(m.model) > bestLen {
			best, bestLen = m.slices, len(m.model)
		}
	}
	return best
}

// NGSILDID is the NGSI-LD id of the entity's GPU device, as the existing
// platform names devices: urn:ngsi-ld:GpuDevice:{cluster}:{node}:{index}. It is
// empty when any part is unknown.
func (e Entity) NGSILDID() string {
	if e.Cluster == "" || e.Node == "" || e.GPUIndex == "" {
		return ""
	}
	return NGSILDDeviceID(e.Cluster, e.Node, e.GPUIndex)
}
