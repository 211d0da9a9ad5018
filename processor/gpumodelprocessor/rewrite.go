package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

import "go.opentelemetry.io/collector/pdata/pcommon"

// cellCount bounds the label values rewrite reuses per point; DCGM series
// carry about 16 labels.
const cellCount = 32

// newCells returns empty values to hold a point's label values while its
// attributes are rewritten.
func newCells() []pcommon.Value {
	scratch := pcommon.NewMap()
	scratch.EnsureCapacity(cellCount)
	cells := make([]pcommon.Value, cellCount)
	for i := range cells {
		cells[i] = scratch.PutEmpty(string(rune('A' + i)))
	}
	return cells
}

// shape prepares rewrite: the attributes' keys with empty values, and the
// values in the same order. It is nil when a value is not a string, bool, int
// or double.
type shape struct {
	keys   pcommon.Map
	values []pcommon.Value
}

func newShape(attrs pcommon.Map) *shape {
	s := &shape{keys: pcommon.NewMap()}
	s.keys.EnsureCapacity(attrs.Len())
	for k, v := range attrs.All() {
		switch v.Type() {
		case pcommon.ValueTypeStr, pcommon.ValueTypeBool, pcommon.ValueTypeDouble, pcommon.ValueTypeInt:
		default:
			return nil
		}
		s.keys.PutEmpty(k)
		s.values = append(s.values, v)
	}
	return s
}

// rewrite replaces a point's labels with the enrichment's attributes: the
// result is what attrs.CopyTo(labels) gives, but the labels' string values are
// reused for the string attributes. pdata allocates a new value for each
// attribute it copies, which made copying cost as much as all the rest.
func (en *enrichment) rewrite(labels pcommon.Map, cells []pcommon.Value) {
	if en.shape == nil {
		en.attrs.CopyTo(labels)
		return
	}
	n := 0
	for _, v := range labels.All() {
		if n == len(cells) {
			break
		}
		if v.Type() == pcommon.ValueTypeStr {
			v.MoveTo(cells[n])
			n++
		}
	}
	// Copying empty values sets the keys and allocates nothing.
	en.shape.keys.CopyTo(labels)
	next, i := 0, 0
	for _, out := range labels.All() {
		v := en.shape.values[i]
		i++
		switch v.Type() {
		case pcommon.ValueTypeStr:
			if next < n {
				cells[next].MoveTo(out)
				next++
			}
			out.SetStr(v.Str())
		case pcommon.ValueTypeBool:
			out.SetBool(v.Bool())
		case pcommon.ValueTypeDouble:
			out.SetDouble(v.Double())
		default:
			out.SetInt(v.Int())
		}
	}
	// Cells not reused keep their value until the next point's overwrite it.
}
