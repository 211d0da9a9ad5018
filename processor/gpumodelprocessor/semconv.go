package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// OpenTelemetry hardware semantic-convention metrics (development), derived
// from DCGM fields with the conversions the conventions ask for.
const (
	semconvUtilization = "hw.gpu.utilization"
	semconvMemoryUsage = "hw.gpu.memory.usage"
	semconvMemoryLimit = "hw.gpu.memory.limit"
	semconvPower       = "hw.power"
	semconvEnergy      = "hw.energy"

	mebibyte = 1 << 20
)

// frameBufferField is each field the memory limit adds up, as a bit.
var frameBufferField = map[string]uint8{
	"DCGM_FI_DEV_FB_USED":     1,
	"DCGM_FI_DEV_FB_FREE":     2,
	"DCGM_FI_DEV_FB_RESERVED": 4,
}

const allFrameBufferFields = 1 | 2 | 4

type derivation struct {
	name, unit, description, task string
	scale                         float64
	// slicesOnly: GR_ENGINE_ACTIVE stands in for GPU_UTIL, which DCGM does not
	// report for MIG slices; on whole GPUs GPU_UTIL is used.
	slicesOnly bool
	sum        bool
}

var derivations = map[string]derivation{
	"DCGM_FI_DEV_GPU_UTIL":                 {name: semconvUtilization, unit: "1", description: "Fraction of time the GPU was busy.", task: "general", scale: 0.01},
	"DCGM_FI_PROF_GR_ENGINE_ACTIVE":        {name: semconvUtilization, unit: "1", description: "Fraction of time the GPU was busy.", task: "general", scale: 1, slicesOnly: true},
	"DCGM_FI_DEV_ENC_UTIL":                 {name: semconvUtilization, unit: "1", description: "Fraction of time the GPU was busy.", task: "encoder", scale: 0.01},
	"DCGM_FI_DEV_DEC_UTIL":                 {name: semconvUtilization, unit: "1", description: "Fraction of time the GPU was busy.", task: "decoder", scale: 0.01},
	"DCGM_FI_DEV_FB_USED":                  {name: semconvMemoryUsage, unit: "By", description: "GPU memory used.", scale: mebibyte},
	"DCGM_FI_DEV_POWER_USAGE":              {name: semconvPower, unit: "W", description: "Instantaneous power drawn by the GPU.", scale: 1},
	"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": {name: semconvEnergy, unit: "J", description: "Energy consumed by the GPU.", scale: 0.001, sum: true},
}

// addSemconvMetrics appends the semantic-convention metrics derived from the
// DCGM metrics of one scope; the DCGM metrics stay.
func addSemconvMetrics(sm pmetric.ScopeMetrics) {
	metrics := sm.Metrics()
	derived := map[string]pmetric.Metric{}
	target := func(d derivation) pmetric.NumberDataPointSlice {
		m, ok := derived[d.name]
		if !ok {
			m = pmetric.NewMetric()
			m.SetName(d.name)
			m.SetUnit(d.unit)
			m.SetDescription(d.description)
			if d.sum {
				s := m.SetEmptySum()
				s.SetIsMonotonic(true)
				s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			} else {
				m.SetEmptyGauge()
			}
			derived[d.name] = m
		}
		if d.sum {
			return m.Sum().DataPoints()
		}
		return m.Gauge().DataPoints()
	}
	// Frame buffer fields by GPU or slice and time, for the memory limit:
	// their sum is the memory's size only when all three are there (with
	// FB_USED alone the "limit" would be the usage).
	type fbKey struct {
		hwID string
		ts   pcommon.Timestamp
	}
	limits := map[fbKey]float64{}
	limitFields := map[fbKey]uint8{}
	limitAttrs := map[fbKey]pcommon.Map{}
	var limitOrder []fbKey

	n := metrics.Len()
	for i := 0; i < n; i++ {
		m := metrics.At(i)
		name := strings.ToUpper(m.Name())
		dps, ok := numberPoints(m)
		if !ok {
			continue
		}
		for _, dp := range dps.All() {
			switch name {
			case "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED":
				id, _ := dp.Attributes().Get(topology.AttrHwID)
				k := fbKey{hwID: id.Str(), ts: dp.Timestamp()}
				if _, seen := limits[k]; !seen {
					limitOrder = append(limitOrder, k)
					limitAttrs[k] = dp.Attributes()
				}
				limits[k] += numberValue(dp) * mebibyte
				limitFields[k] |= frameBufferField[name]
			}
			d, ok := derivations[name]
			if !ok {
				continue
			}
			_, isSlice := dp.Attributes().Get(topology.AttrNvidiaMIGGPUInstanceID)
			if d.slicesOnly && !isSlice {
				continue
			}
			out := target(d).AppendEmpty()
			dp.Attributes().CopyTo(out.Attributes())
			if d.task != "" {
				out.Attributes().PutStr(topology.AttrHwGPUTask, d.task)
			}
			out.SetStartTimestamp(dp.StartTimestamp())
			out.SetTimestamp(dp.Timestamp())
			out.SetDoubleValue(numberValue(dp) * d.scale)
		}
	}
	for _, k := range limitOrder {
		if limitFields[k] == allFrameBufferFields {
			dps := target(derivation{name: semconvMemoryLimit, unit: "By", description: "Size of the GPU memory (used, free and reserved frame buffer)."})
			out := dps.AppendEmpty()
			limitAttrs[k].CopyTo(out.Attributes())
			out.SetTimestamp(k.ts)
			out.SetDoubleValue(limits[k])
		}
	}
	for _, name := range []string{semconvUtilization, semconvMemoryUsage, semconvMemoryLimit, semconvPower, semconvEnergy} {
		if m, ok := derived[name]; ok {
			m.MoveTo(metrics.AppendEmpty())
		}
	}
}
