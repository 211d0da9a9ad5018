package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

import "go.opentelemetry.io/collector/pdata/pcommon"

// snapshot keeps a label set as (key, value) pairs to recognize it again by
// comparison; nil when a value is not a string.
func snapshot(labels pcommon.Map) []string {
	kv := make([]string, 0, 2*labels.Len())
	for k, v := range labels.All() {
		if v.Type() != pcommon.ValueTypeStr {
			return nil
		}
		kv = append(kv, k, v.Str())
	}
	return kv
}

// same reports whether labels is the label set the enrichment was computed
// from. DCGM series come in the same order for every field of a scrape, so the
// label set of a point is usually that of the point at the same position in
// the previous metric: comparing with it costs less than hashing and a map
// lookup.
func (en *enrichment) same(labels pcommon.Map) bool {
	kv := en.labels
	if kv == nil || 2*labels.Len() != len(kv) {
		return false
	}
	i := 0
	for k, v := range labels.All() {
		// Str is "" for any other type: only then is the type looked at.
		s := v.Str()
		if s != kv[i+1] || k != kv[i] || (s == "" && v.Type() != pcommon.ValueTypeStr) {
			return false
		}
		i += 2
	}
	return true
}

// matches checks a hash hit: the label set and resource cluster are those the
// enrichment was computed from (or, for labels that are not all strings,
// trusts the hash).
func (en *enrichment) matches(labels pcommon.Map, resourceCluster string) bool {
	return en.resourceCluster == resourceCluster && (en.labels == nil || en.same(labels))
}
