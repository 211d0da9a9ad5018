package gpumodelprocessor

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// pairs lists a map's entries in order: rewrite must give exactly what
// CopyTo gives, order included.
func pairs(m pcommon.Map) []string {
	var out []string
	for k, v := range m.All() {
		out = append(out, fmt.Sprintf("%s=%s:%s", k, v.Type(), v.AsString()))
	}
	return out
}

func newMap(t *testing.T, raw ...any) pcommon.Map {
	t.Helper()
	m := pcommon.NewMap()
	for i := 0; i < len(raw); i += 2 {
		require.NoError(t, m.PutEmpty(raw[i].(string)).FromRaw(raw[i+1]))
	}
	return m
}

func TestRewriteEqualsCopy(t *testing.T) {
	manyLabels := []any{}
	manyAttrs := []any{}
	for i := range cellCount + 8 {
		manyLabels = append(manyLabels, fmt.Sprintf("l%02d", i), fmt.Sprintf("v%02d", i))
		if i%3 == 0 {
			// Values of labels past the cells too.
			manyAttrs = append(manyAttrs, fmt.Sprintf("a%02d", i), fmt.Sprintf("v%02d", i))
		}
	}
	tests := []struct {
		name          string
		labels, attrs []any
	}{
		{
			name:   "values taken as they are, written, bool and double",
			labels: []any{"UUID", "GPU-1", "gpu", "0", "modelName", "NVIDIA A100-SXM4-80GB", "Hostname", "wrk-1"},
			attrs:  []any{"hw.type", "gpu", "hw.id", "GPU-1", "hw.model", "NVIDIA A100-SXM4-80GB", "nvidia.gpu.index", "0", "aitelemetry.gpu.allocated", false, "aitelemetry.gpu.slice.fraction", 1.0},
		},
		{
			name:   "one label value used by two attributes",
			labels: []any{"UUID", "GPU-1", "gpu", "0"},
			attrs:  []any{"hw.id", "GPU-1", "hw.parent", "GPU-1", "nvidia.gpu.index", "0"},
		},
		{
			name:   "more attributes than labels",
			labels: []any{"UUID", "GPU-1"},
			attrs:  []any{"a", "x", "b", "y", "hw.id", "GPU-1", "c", "z", "d", int64(7)},
		},
		{
			name:   "no labels",
			labels: nil,
			attrs:  []any{"hw.type", "gpu"},
		},
		{
			name:   "more labels than cells",
			labels: manyLabels,
			attrs:  manyAttrs,
		},
		{
			name:   "labels that are not all strings",
			labels: []any{"UUID", "GPU-1", "weird", true, "pci_bus_id", int64(17)},
			attrs:  []any{"hw.id", "GPU-1", "weird", true, "pci_bus_id", int64(17), "hw.type", "gpu"},
		},
	}
	// One set of cells for every case and point, as in a batch: values left
	// in cells by one point must never reach another.
	cells := newCells()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := newMap(t, tt.attrs...)
			labels := newMap(t, tt.labels...)
			en := &enrichment{attrs: attrs, labels: snapshot(labels)}
			en.shape = newShape(attrs, en.labels)
			require.NotNil(t, en.shape)
			for point := range 3 {
				got := newMap(t, tt.labels...)
				en.rewrite(got, cells)
				assert.Equal(t, pairs(attrs), pairs(got), "point %d", point)
			}
		})
	}
}

// TestRewriteSharesNoValue: a point's rewritten attributes are its own. Setting
// one must change neither the cached enrichment nor another point.
func TestRewriteSharesNoValue(t *testing.T) {
	labels := []any{"UUID", "GPU-1", "gpu", "0", "Hostname", "wrk-1"}
	attrs := newMap(t, "hw.type", "gpu", "hw.id", "GPU-1", "nvidia.gpu.index", "0", "aitelemetry.gpu.allocated", true)
	l := newMap(t, labels...)
	en := &enrichment{attrs: attrs, labels: snapshot(l)}
	en.shape = newShape(attrs, en.labels)
	cells := newCells()
	first, second := newMap(t, labels...), newMap(t, labels...)
	en.rewrite(first, cells)
	en.rewrite(second, cells)
	for k, v := range first.All() {
		switch v.Type() {
		case pcommon.ValueTypeStr:
			v.SetStr("changed")
		case pcommon.ValueTypeBool:
			v.SetBool(false)
		}
		want, _ := attrs.Get(k)
		got, _ := second.Get(k)
		assert.Equal(t, want.AsRaw(), got.AsRaw(), k)
	}
	assert.Equal(t, map[string]any{"hw.type": "gpu", "hw.id": "GPU-1", "nvidia.gpu.index": "0", "aitelemetry.gpu.allocated": true}, attrs.AsRaw())
}
