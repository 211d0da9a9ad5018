package main

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// timestamped is what every metric data point type has.
type timestamped interface {
	Timestamp() pcommon.Timestamp
	SetTimestamp(pcommon.Timestamp)
	StartTimestamp() pcommon.Timestamp
	SetStartTimestamp(pcommon.Timestamp)
}

func shifted(ts pcommon.Timestamp, by time.Duration) pcommon.Timestamp {
	if ts == 0 { // unset stays unset
		return 0
	}
	return pcommon.NewTimestampFromTime(ts.AsTime().Add(by))
}

func shiftPoint(p timestamped, by time.Duration) {
	p.SetTimestamp(shifted(p.Timestamp(), by))
	p.SetStartTimestamp(shifted(p.StartTimestamp(), by))
}

// eachPoint calls f on every data point of md, of every metric type.
func eachPoint(md pmetric.Metrics, f func(timestamped)) {
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				eachPointOf(ms.At(k), f)
			}
		}
	}
}

func eachPointOf(m pmetric.Metric, f func(timestamped)) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for i := range m.Gauge().DataPoints().Len() {
			f(m.Gauge().DataPoints().At(i))
		}
	case pmetric.MetricTypeSum:
		for i := range m.Sum().DataPoints().Len() {
			f(m.Sum().DataPoints().At(i))
		}
	case pmetric.MetricTypeHistogram:
		for i := range m.Histogram().DataPoints().Len() {
			f(m.Histogram().DataPoints().At(i))
		}
	case pmetric.MetricTypeExponentialHistogram:
		for i := range m.ExponentialHistogram().DataPoints().Len() {
			f(m.ExponentialHistogram().DataPoints().At(i))
		}
	case pmetric.MetricTypeSummary:
		for i := range m.Summary().DataPoints().Len() {
			f(m.Summary().DataPoints().At(i))
		}
	case pmetric.MetricTypeEmpty:
	}
}

func shiftMetrics(md pmetric.Metrics, by time.Duration) {
	eachPoint(md, func(p timestamped) { shiftPoint(p, by) })
}

// lastMetricTime is the latest sample of the recording.
func lastMetricTime(all []pmetric.Metrics) time.Time {
	var last pcommon.Timestamp
	for _, md := range all {
		eachPoint(md, func(p timestamped) { last = max(last, p.Timestamp()) })
	}
	return last.AsTime()
}

func shiftTraces(td ptrace.Traces, by time.Duration) {
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				s := spans.At(k)
				s.SetStartTimestamp(shifted(s.StartTimestamp(), by))
				s.SetEndTimestamp(shifted(s.EndTimestamp(), by))
				for e := range s.Events().Len() {
					ev := s.Events().At(e)
					ev.SetTimestamp(shifted(ev.Timestamp(), by))
				}
			}
		}
	}
}
