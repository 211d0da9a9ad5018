package promqlreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver"

import (
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver/internal/metadata"
)

// converted is a query result as OTLP metrics, without the samples at or
// before the query's cursor.
type converted struct {
	metrics pmetric.Metrics
	points  int        // data points in metrics
	skipped int        // samples at or before the cursor
	future  int        // samples stamped after the query's evaluation time
	newest  model.Time // latest sample emitted; 0 when none
}

// convert turns each series into gauge points named by __name__ (the query's
// name when the series has none, e.g. an aggregation or a scalar), with every
// other label as an attribute, exactly as the series carries it: the gpumodel
// processor reads the same labels as from a scrape (exported_*, MIG, ...).
// Samples at or before cursor were emitted before and are skipped. Samples
// stamped after until (the evaluation time) are skipped too: a skewed clock
// or a non-compliant API would otherwise move the cursor into the future and
// make every later sample look already emitted.
func convert(q query, res *result, cursor, until model.Time, version string) converted {
	out := converted{metrics: pmetric.NewMetrics()}
	rm := out.metrics.ResourceMetrics().AppendEmpty()
	if q.cluster != "" {
		rm.Resource().Attributes().PutStr(topology.AttrK8sClusterName, q.cluster)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	sm.Scope().SetVersion(version)
	byName := map[model.LabelValue]pmetric.NumberDataPointSlice{}
	for _, s := range res.streams {
		var dps pmetric.NumberDataPointSlice
		var attrs pcommon.Map // the series' first point's, copied to the others
		first := true
		for _, v := range s.Values {
			if v.Timestamp <= cursor {
				out.skipped++
				continue
			}
			if v.Timestamp > until {
				out.future++
				continue
			}
			if first {
				dps = pointsFor(sm, byName, s.Metric, q.name)
			}
			dp := dps.AppendEmpty()
			dp.SetTimestamp(pcommon.Timestamp(int64(v.Timestamp) * 1e6)) //nolint:gosec // v.Timestamp > cursor >= 0
			dp.SetDoubleValue(float64(v.Value))
			if first {
				putLabels(dp.Attributes(), s.Metric)
				attrs = dp.Attributes()
				first = false
			} else {
				attrs.CopyTo(dp.Attributes())
			}
			out.points++
			out.newest = max(out.newest, v.Timestamp)
		}
	}
	return out
}

func pointsFor(sm pmetric.ScopeMetrics, byName map[model.LabelValue]pmetric.NumberDataPointSlice, m model.Metric, fallback string) pmetric.NumberDataPointSlice {
	name, ok := m[model.MetricNameLabel]
	if !ok || name == "" {
		name = model.LabelValue(fallback)
	}
	if dps, ok := byName[name]; ok {
		return dps
	}
	metric := sm.Metrics().AppendEmpty()
	metric.SetName(string(name))
	dps := metric.SetEmptyGauge().DataPoints()
	byName[name] = dps
	return dps
}

func putLabels(attrs pcommon.Map, m model.Metric) {
	attrs.EnsureCapacity(len(m))
	for k, v := range m {
		if k == model.MetricNameLabel {
			continue
		}
		attrs.PutStr(string(k), string(v))
	}
}
