// Package telemetrytest reads the components' own telemetry in tests.
package telemetrytest // import "github.com/nerc-project/ai-telemetry-collector/internal/telemetrytest"

import (
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// SumCounter is the sum of an int64 counter's data points that carry all the
// given attributes; 0 while the counter has not been recorded.
func SumCounter(tel *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) int64 {
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var sum int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		match := true
		for _, a := range attrs {
			if v, ok := dp.Attributes.Value(a.Key); !ok || v != a.Value {
				match = false
				break
			}
		}
		if match {
			sum += dp.Value
		}
	}
	return sum
}
