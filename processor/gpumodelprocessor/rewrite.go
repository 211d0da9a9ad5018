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

// shape prepares rewrite: the attributes' keys with empty values, then, in
// the same order, how each value is set. It is nil when a value is not a
// string, bool, int or double.
type shape struct {
	keys  pcommon.Map
	attrs []attrPlan
	// spare are the positions of the labels no attribute takes as they are, in
	// order: their values are reused for the strings written anew.
	spare []int
	// take[i] says whether label i's value is reused: a position in some
	// attrPlan.from or in spare.
	take []bool
}

// attrPlan is how rewrite sets one attribute's value.
type attrPlan struct {
	kind pcommon.ValueType
	// from is the position of the label whose value equals this string
	// attribute's (hw.id is the UUID label's value, and so on), or -1: that
	// value moves to the attribute as it is, without a write.
	from int
	str  string
	b    bool
	d    float64
	i    int64
}

// newShape prepares rewrite for attrs; labels is the label set they were
// computed from (see snapshot), or nil when it is not known.
func newShape(attrs pcommon.Map, labels []string) *shape {
	s := &shape{keys: pcommon.NewMap()}
	s.keys.EnsureCapacity(attrs.Len())
	s.take = make([]bool, min(len(labels)/2, cellCount))
	written := 0
	for k, v := range attrs.All() {
		a := attrPlan{kind: v.Type(), from: -1}
		switch a.kind {
		case pcommon.ValueTypeStr:
			a.str = v.Str()
			for i, taken := range s.take {
				if !taken && labels[2*i+1] == a.str {
					a.from, s.take[i] = i, true
					break
				}
			}
			if a.from < 0 {
				written++
			}
		case pcommon.ValueTypeBool:
			a.b = v.Bool()
		case pcommon.ValueTypeDouble:
			a.d = v.Double()
		case pcommon.ValueTypeInt:
			a.i = v.Int()
		default:
			return nil
		}
		s.attrs = append(s.attrs, a)
		s.keys.PutEmpty(k)
	}
	if labels == nil {
		// Positions unknown: any of the first labels may hold a string.
		s.take = make([]bool, cellCount)
	}
	// Only as many other values as there are strings to write are taken out
	// of the labels; the rest are dropped with them.
	for i, taken := range s.take {
		if len(s.spare) == written {
			break
		}
		if !taken {
			s.spare = append(s.spare, i)
			s.take[i] = true
		}
	}
	return s
}

// rewrite replaces a point's labels with the enrichment's attributes: the
// result is what attrs.CopyTo(labels) gives, but the labels' string values are
// reused. pdata allocates a new value for each attribute it copies and writing
// into a value costs about as much, which made copying cost as much as all the
// rest; an attribute whose value a label already has takes that label's value
// untouched.
func (en *enrichment) rewrite(labels pcommon.Map, cells []pcommon.Value) {
	s := en.shape
	if s == nil {
		en.attrs.CopyTo(labels)
		return
	}
	// Cell i holds the value of label i, if taken.
	n := 0
	for _, v := range labels.All() {
		if n == len(s.take) {
			break
		}
		if s.take[n] {
			v.MoveTo(cells[n])
		}
		n++
	}
	// Copying empty values sets the keys and allocates nothing.
	s.keys.CopyTo(labels)
	j, spare := 0, 0
	for _, out := range labels.All() {
		a := &s.attrs[j]
		j++
		switch a.kind {
		case pcommon.ValueTypeStr:
			if a.from >= 0 && a.from < n {
				cells[a.from].MoveTo(out)
				continue
			}
			if spare < len(s.spare) {
				// A cell's value belongs to no point's attributes, so even
				// one this point did not fill is safe to reuse.
				cells[s.spare[spare]].MoveTo(out)
				spare++
			}
			out.SetStr(a.str)
		case pcommon.ValueTypeBool:
			out.SetBool(a.b)
		case pcommon.ValueTypeDouble:
			out.SetDouble(a.d)
		default:
			out.SetInt(a.i)
		}
	}
	// Cells not reused keep their value until the next point's overwrite it.
}
