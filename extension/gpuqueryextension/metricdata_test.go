package gpuqueryextension

import "go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

func metricdatatestIgnore() []metricdatatest.Option {
	return []metricdatatest.Option{metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars()}
}
