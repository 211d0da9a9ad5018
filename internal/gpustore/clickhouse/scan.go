package clickhouse

import (
	"fmt"
	"reflect"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// record is one result row by column name. Rows are scanned into the
// driver's own type for each column (its ScanType), so a column's exact
// ClickHouse type (LowCardinality, SimpleAggregateFunction, Nullable, UInt8
// or Bool) does not matter to the readers below.
type record map[string]any

func scanAll(rows driver.Rows) ([]record, error) {
	types := rows.ColumnTypes()
	var out []record
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, t := range types {
			ptrs[i] = reflect.New(t.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := make(record, len(types))
		for i, t := range types {
			r[t.Name()] = reflect.ValueOf(ptrs[i]).Elem().Interface()
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// deref follows pointers; nil is nil.
func deref(v any) any {
	rv := reflect.ValueOf(v)
	for rv.IsValid() && rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil
	}
	return rv.Interface()
}

func (r record) str(k string) string {
	switch v := deref(r[k]).(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func (r record) float(k string) float64 {
	f, _ := r.optFloat(k)
	return f
}

func (r record) optFloat(k string) (float64, bool) {
	rv := reflect.ValueOf(deref(r[k]))
	switch {
	case !rv.IsValid():
		return 0, false
	case rv.CanFloat():
		return rv.Float(), true
	case rv.CanInt():
		return float64(rv.Int()), true
	case rv.CanUint():
		return float64(rv.Uint()), true
	case rv.Kind() == reflect.Bool:
		if rv.Bool() {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func (r record) int(k string) int { return int(r.float(k)) }

func (r record) bool(k string) bool { return r.float(k) != 0 }

func (r record) time(k string) time.Time {
	if t, ok := deref(r[k]).(time.Time); ok {
		return t.UTC()
	}
	return time.Time{}
}

func (r record) strings(k string) []string {
	if v, ok := deref(r[k]).([]string); ok {
		return v
	}
	return nil
}
