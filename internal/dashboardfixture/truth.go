package dashboardfixture // import "github.com/nerc-project/ai-telemetry-collector/internal/dashboardfixture"

import (
	"fmt"
	"sort"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// ProjectTruth is what the schedule says one project held, computed from
// the schedule alone (not from the pipeline the tests check): GPU-hours as
// docs/dashboards.md defines them (allocation hours × fraction, × busy for
// used; idle when busy is below the threshold), the whole GPUs and the MIG
// slices it held (sorted hw.ids), and its allocations (one session each).
type ProjectTruth struct {
	Allocated, Used, Idle float64
	GPUs, Slices          []string
	Sessions              int
}

// Truth is the schedule's ground truth per namespace.
func (s *Schedule) Truth() (map[string]*ProjectTruth, error) {
	out := map[string]*ProjectTruth{}
	for _, a := range s.Allocations {
		tr := out[a.Namespace]
		if tr == nil {
			tr = &ProjectTruth{}
			out[a.Namespace] = tr
		}
		d, err := s.device(a.Device)
		if err != nil {
			return nil, err
		}
		fraction, ok := topology.SliceFraction(d.Model, d.MIGProfile)
		if !ok {
			return nil, fmt.Errorf("%w: no fraction for %s %s", errBadSchedule, d.Model, d.MIGProfile)
		}
		if d.MIGProfile != "" {
			tr.Slices = appendOnce(tr.Slices, a.Device)
		} else {
			tr.GPUs = appendOnce(tr.GPUs, a.Device)
		}
		gh := a.Hours * fraction
		tr.Allocated += gh
		tr.Used += gh * a.Busy
		if a.Busy < gpustore.IdleBusyThreshold {
			tr.Idle += gh
		}
		tr.Sessions++
	}
	for _, tr := range out {
		sort.Strings(tr.GPUs)
		sort.Strings(tr.Slices)
	}
	return out, nil
}

func appendOnce(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}
