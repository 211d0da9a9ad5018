package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// The DCGM fields pivoted into a raw row (deploy/clickhouse/001-gpu-samples.sql).
const (
	metricProf   = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
	metricUtil   = "DCGM_FI_DEV_GPU_UTIL"
	metricFBUsed = "DCGM_FI_DEV_FB_USED"
	metricFBFree = "DCGM_FI_DEV_FB_FREE"
	metricPower  = "DCGM_FI_DEV_POWER_USAGE"
	metricTemp   = "DCGM_FI_DEV_GPU_TEMP"
	metricXID    = "DCGM_FI_DEV_XID_ERRORS"
)

const (
	fProf = iota
	fUtil
	fFBUsed
	fFBFree
	fPower
	fTemp
	fXID
	nFields
)

var fieldOf = map[string]int{
	metricProf: fProf, metricUtil: fUtil, metricFBUsed: fFBUsed, metricFBFree: fFBFree,
	metricPower: fPower, metricTemp: fTemp, metricXID: fXID,
}

// seriesKey is everything of a raw row but its time and values: the
// gpu_samples view's GROUP BY minus TimeUnix.
type seriesKey struct {
	hub, cluster, node, namespace, pod  string
	hwID, parent, index, model, profile string
	allocated                           bool
	fraction                            float64
	projectName, projectPI              string
}

// row is one pivoted raw sample.
type row struct {
	ts  int64
	sk  int // index into batch.keys
	v   [nFields]float64
	has [nFields]bool
}

func (r *row) busy() float64 {
	switch {
	case r.has[fProf]:
		return r.v[fProf]
	case r.has[fUtil]:
		return r.v[fUtil] / 100
	}
	return 0 // maxIf over no rows, as the view
}

type hourKey struct {
	hour                                     int64
	hub, cluster, node, namespace, pod, hwID string
	allocated                                bool
}

type hourAgg struct {
	lastTS                                 int64 // of the anyLast values
	projectName, projectPI, model, profile string
	fraction                               float64
	samples                                int64
	first, last                            int64 // of FB_USED; 0: none
	profSum                                float64
	profN                                  int64
	utilSum                                float64
	utilN                                  int64
}

type devKey struct{ hub, cluster, node, hwID, namespace string }

type devState struct {
	r         *row
	first     int64
	idleSince int64 // 0: not idle at the last row
	wholeIdle bool  // every row of the batch was idle under the same pod
}

type projKey struct{ hub, cluster, namespace string }

type projMeta struct {
	ts                      int64
	first                   int64
	id, name, pi, fos       string
	quota, allocation, reqs *float64
}

// batch is one WriteMetrics call aggregated in memory.
type batch struct {
	keys  []seriesKey
	index map[seriesKey]int
	rows  map[[2]int64]*row // (ts, sk)
	hours map[hourKey]*hourAgg
	projs map[projKey]*projMeta
}

func attrStr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

func attrFloat(m pcommon.Map, k string) *float64 {
	v, ok := m.Get(k)
	if !ok {
		return nil
	}
	var f float64
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		f = v.Double()
	case pcommon.ValueTypeInt:
		f = float64(v.Int())
	default:
		p, err := strconv.ParseFloat(v.AsString(), 64)
		if err != nil {
			return nil
		}
		f = p
	}
	return &f
}

func pointValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// resAttrs are a resource's attributes a raw row takes, read once per resource.
type resAttrs struct{ hub, cluster, node, namespace, pod, projectName, projectPI string }

func readRes(res pcommon.Map) resAttrs {
	return resAttrs{
		hub: attrStr(res, topology.AttrHubName), cluster: attrStr(res, topology.AttrK8sClusterName),
		node: attrStr(res, topology.AttrK8sNodeName), namespace: attrStr(res, topology.AttrK8sNamespaceName),
		pod: attrStr(res, topology.AttrK8sPodName), projectName: attrStr(res, topology.AttrProjectName),
		projectPI: attrStr(res, topology.AttrProjectPI),
	}
}

const nsPerHour = int64(time.Hour)

func (b *batch) add(res *resAttrs, name string, dp pmetric.NumberDataPoint) {
	a := dp.Attributes()
	hw := attrStr(a, topology.AttrHwID)
	if hw == "" {
		return // not a GPU's point (gpu_samples: hw.id != '')
	}
	k := seriesKey{
		hub: res.hub, cluster: res.cluster, node: res.node, namespace: res.namespace, pod: res.pod,
		hwID: hw, parent: attrStr(a, topology.AttrHwParent),
		index: attrStr(a, topology.AttrNvidiaGPUIndex), model: attrStr(a, topology.AttrHwModel),
		profile: attrStr(a, topology.AttrNvidiaMIGProfile), allocated: attrStr(a, topology.AttrGPUAllocated) == "true",
		fraction:    1, // toFloat64OrDefault(..., 1)
		projectName: res.projectName, projectPI: res.projectPI,
	}
	if f := attrFloat(a, topology.AttrSliceFraction); f != nil {
		k.fraction = *f
	}
	sk, ok := b.index[k]
	if !ok {
		sk = len(b.keys)
		b.keys = append(b.keys, k)
		b.index[k] = sk
	}
	ts := sampleTime(dp.Timestamp())
	v := pointValue(dp)
	f := fieldOf[name]
	r := b.rows[[2]int64{ts, int64(sk)}]
	if r == nil {
		r = &row{ts: ts, sk: sk}
		b.rows[[2]int64{ts, int64(sk)}] = r
	}
	if !r.has[f] || v > r.v[f] {
		r.v[f] = v // maxIf: the larger of duplicates
	}
	r.has[f] = true

	// The hourly rollup reads FB_USED (the clock), PROF and GPU_UTIL.
	if f != fFBUsed && f != fProf && f != fUtil {
		return
	}
	hk := hourKey{
		hour: floorDiv(ts, nsPerHour) * 3600, hub: k.hub, cluster: k.cluster, node: k.node,
		namespace: k.namespace, pod: k.pod, hwID: hw, allocated: k.allocated,
	}
	h := b.hours[hk]
	if h == nil {
		h = &hourAgg{lastTS: -1 << 62, fraction: k.fraction}
		b.hours[hk] = h
	}
	if ts >= h.lastTS {
		h.lastTS, h.projectName, h.projectPI, h.model, h.profile = ts, k.projectName, k.projectPI, k.model, k.profile
	}
	if k.fraction > h.fraction {
		h.fraction = k.fraction
	}
	switch f {
	case fFBUsed:
		h.samples++
		if h.first == 0 || ts < h.first {
			h.first = ts
		}
		if ts > h.last {
			h.last = ts
		}
	case fProf:
		h.profSum += v
		h.profN++
	case fUtil:
		h.utilSum += v / 100
		h.utilN++
	}
}

func (b *batch) project(res pcommon.Map, ts int64) {
	ns := attrStr(res, topology.AttrK8sNamespaceName)
	if ns == "" {
		return
	}
	k := projKey{attrStr(res, topology.AttrHubName), attrStr(res, topology.AttrK8sClusterName), ns}
	p := b.projs[k]
	if p == nil {
		p = &projMeta{ts: -1 << 62, first: ts}
		b.projs[k] = p
	}
	if ts < p.first {
		p.first = ts
	}
	if ts >= p.ts {
		p.ts = ts
		p.id, p.name = attrStr(res, topology.AttrProjectID), attrStr(res, topology.AttrProjectName)
		p.pi, p.fos = attrStr(res, topology.AttrProjectPI), attrStr(res, topology.AttrProjectFieldOfScience)
		p.quota = attrFloat(res, topology.AttrProjectGPUQuota)
		p.allocation = attrFloat(res, topology.AttrProjectGPUAllocation)
		p.reqs = attrFloat(res, topology.AttrProjectGPURequests)
	}
}

// WriteMetrics stores the enriched DCGM gauges: raw rows, the hourly rollup
// and the latest-state tables, in one transaction.
func (s *Store) WriteMetrics(ctx context.Context, md pmetric.Metrics) error {
	b := &batch{
		index: map[seriesKey]int{}, rows: map[[2]int64]*row{},
		hours: map[hourKey]*hourAgg{}, projs: map[projKey]*projMeta{},
	}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		ra := readRes(res)
		var latest int64
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if _, ok := fieldOf[m.Name()]; !ok || m.Type() != pmetric.MetricTypeGauge {
					continue
				}
				dps := m.Gauge().DataPoints()
				for p := 0; p < dps.Len(); p++ {
					dp := dps.At(p)
					b.add(&ra, m.Name(), dp)
					if ts := nanos(dp.Timestamp()); ts > latest {
						latest = ts
					}
				}
			}
		}
		if latest > 0 {
			b.project(res, latest)
		}
	}
	if len(b.rows) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("write metrics: %w", errClosed)
	}
	if err := s.writeBatch(ctx, b); err != nil {
		return writeError("write metrics", err)
	}
	if err := s.retention(ctx); err != nil {
		return writeError("write metrics", err)
	}
	return nil
}

// nullable is a raw value to bind: NULL when absent, an integer when whole.
func nullable(has bool, v float64) any {
	if !has {
		return nil
	}
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return int64(v)
	}
	return v
}

func (s *Store) writeBatch(ctx context.Context, b *batch) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()

	// Series ids: the committed cache, else insert-or-find. New ids join the
	// cache only after the commit (a rolled-back id must not be reused).
	ids := make([]int64, len(b.keys))
	fresh := map[seriesKey]int64{}
	var insSeries, getSeries *sql.Stmt
	for i, k := range b.keys {
		if id, ok := s.series[k]; ok {
			ids[i] = id
			continue
		}
		if insSeries == nil {
			if insSeries, err = tx.PrepareContext(ctx, `INSERT INTO series (hub, cluster, node, namespace, pod, hw_id,
				parent, gpu_index, model, profile, allocated, fraction, project_name, project_pi)
				VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`); err != nil {
				return err
			}
			if getSeries, err = tx.PrepareContext(ctx, `SELECT id FROM series WHERE hub=? AND cluster=? AND node=?
				AND namespace=? AND pod=? AND hw_id=? AND parent=? AND gpu_index=? AND model=? AND profile=?
				AND allocated=? AND fraction=? AND project_name=? AND project_pi=?`); err != nil {
				return err
			}
		}
		args := []any{
			k.hub, k.cluster, k.node, k.namespace, k.pod, k.hwID, k.parent, k.index, k.model, k.profile,
			k.allocated, k.fraction, k.projectName, k.projectPI,
		}
		if _, err := insSeries.ExecContext(ctx, args...); err != nil {
			return err
		}
		if err := getSeries.QueryRowContext(ctx, args...).Scan(&ids[i]); err != nil {
			return err
		}
		fresh[k] = ids[i]
	}

	// Raw rows, in time order (appends to the (ts, series) b-tree).
	rows := make([]*row, 0, len(b.rows))
	for _, r := range b.rows {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].ts != rows[j].ts {
			return rows[i].ts < rows[j].ts
		}
		return ids[rows[i].sk] < ids[rows[j].sk]
	})
	err = execRows(ctx, tx, `INSERT INTO samples (ts, series, prof, util, fb_used, fb_free, power, temp, xid) VALUES `,
		` ON CONFLICT DO UPDATE SET
		prof = coalesce(max(prof, excluded.prof), prof, excluded.prof),
		util = coalesce(max(util, excluded.util), util, excluded.util),
		fb_used = coalesce(max(fb_used, excluded.fb_used), fb_used, excluded.fb_used),
		fb_free = coalesce(max(fb_free, excluded.fb_free), fb_free, excluded.fb_free),
		power = coalesce(max(power, excluded.power), power, excluded.power),
		temp = coalesce(max(temp, excluded.temp), temp, excluded.temp),
		xid = coalesce(max(xid, excluded.xid), xid, excluded.xid)`, 9, len(rows), func(i int, args []any) {
			r := rows[i]
			args[0], args[1] = r.ts, ids[r.sk]
			for f := 0; f < nFields; f++ {
				args[2+f] = nullable(r.has[f], r.v[f])
			}
		})
	if err != nil {
		return err
	}

	if err := s.writeHours(ctx, tx, b); err != nil {
		return err
	}
	if err := markStale(ctx, tx, b.hours); err != nil {
		return err
	}
	if err := s.writeDevices(ctx, tx, b, rows); err != nil {
		return err
	}
	if err := s.writeProjects(ctx, tx, b); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for k, id := range fresh {
		s.series[k] = id
	}
	return nil
}

func nullTS(ts int64) any {
	if ts == 0 {
		return nil
	}
	return ts
}

func (s *Store) writeHours(ctx context.Context, tx *sql.Tx, b *batch) error {
	keys := make([]hourKey, 0, len(b.hours))
	for k := range b.hours {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].hour < keys[j].hour })
	return execRows(ctx, tx, `INSERT INTO hourly (hour, hub, cluster, node, namespace, pod, hw_id, allocated,
		project_name, project_pi, model, profile, fraction, samples, first_seen, last_seen, last_any, prof_sum, prof_n,
		util_sum, util_n) VALUES `, ` ON CONFLICT DO UPDATE SET
		project_name = CASE WHEN excluded.last_any >= last_any THEN excluded.project_name ELSE project_name END,
		project_pi = CASE WHEN excluded.last_any >= last_any THEN excluded.project_pi ELSE project_pi END,
		model = CASE WHEN excluded.last_any >= last_any THEN excluded.model ELSE model END,
		profile = CASE WHEN excluded.last_any >= last_any THEN excluded.profile ELSE profile END,
		last_any = max(last_any, excluded.last_any),
		fraction = max(fraction, excluded.fraction),
		samples = samples + excluded.samples,
		first_seen = coalesce(min(first_seen, excluded.first_seen), first_seen, excluded.first_seen),
		last_seen = coalesce(max(last_seen, excluded.last_seen), last_seen, excluded.last_seen),
		prof_sum = prof_sum + excluded.prof_sum, prof_n = prof_n + excluded.prof_n,
		util_sum = util_sum + excluded.util_sum, util_n = util_n + excluded.util_n`, 21, len(keys),
		func(i int, args []any) {
			k := keys[i]
			h := b.hours[k]
			copy(args, []any{
				k.hour, k.hub, k.cluster, k.node, k.namespace, k.pod, k.hwID, k.allocated,
				h.projectName, h.projectPI, h.model, h.profile, h.fraction, h.samples, nullTS(h.first), nullTS(h.last),
				h.lastTS, h.profSum, h.profN, h.utilSum, h.utilN,
			})
		})
}

func isIdle(r *row, k *seriesKey) bool {
	return k.allocated && r.busy() < gpustore.IdleBusyThreshold
}

func (s *Store) writeDevices(ctx context.Context, tx *sql.Tx, b *batch, rows []*row) error {
	// rows are in time order: the last row per (device, namespace) wins, and
	// the idle run in progress at it is tracked for IdleAllocation.Since.
	devs := map[devKey]*devState{}
	var order []devKey
	for _, r := range rows {
		k := &b.keys[r.sk]
		dk := devKey{k.hub, k.cluster, k.node, k.hwID, k.namespace}
		d := devs[dk]
		if d == nil {
			d = &devState{first: r.ts, wholeIdle: true}
			devs[dk] = d
			order = append(order, dk)
		}
		idle := isIdle(r, k)
		switch {
		case !idle:
			d.idleSince, d.wholeIdle = 0, false
		case d.r != nil && d.idleSince != 0 && b.keys[d.r.sk].pod == k.pod:
			// the run goes on
		default:
			if d.r != nil {
				d.wholeIdle = false
			}
			d.idleSince = r.ts
		}
		d.r = r
	}
	return execRows(ctx, tx, `INSERT INTO device_last (hub, cluster, node, hw_id, namespace, pod, parent,
		gpu_index, model, profile, fraction, allocated, busy, xid, ts, first_seen, idle_since, idle_whole) VALUES `,
		` ON CONFLICT DO UPDATE SET
		idle_since = CASE WHEN excluded.idle_since IS NULL THEN NULL
			WHEN excluded.idle_whole AND idle_since IS NOT NULL AND pod = excluded.pod THEN idle_since
			ELSE excluded.idle_since END,
		idle_whole = excluded.idle_whole,
		pod = excluded.pod, parent = excluded.parent, gpu_index = excluded.gpu_index, model = excluded.model,
		profile = excluded.profile, fraction = excluded.fraction, allocated = excluded.allocated,
		busy = excluded.busy, xid = excluded.xid, ts = excluded.ts, first_seen = min(first_seen, excluded.first_seen)
		WHERE excluded.ts >= ts`, 18, len(order), func(i int, args []any) {
			dk := order[i]
			d := devs[dk]
			k := &b.keys[d.r.sk]
			copy(args, []any{
				dk.hub, dk.cluster, dk.node, dk.hwID, dk.namespace, k.pod, k.parent,
				k.index, k.model, k.profile, k.fraction, k.allocated, d.r.busy(), d.r.v[fXID], d.r.ts, d.first,
				nullTS(d.idleSince), d.wholeIdle && d.idleSince != 0,
			})
		})
}

func (s *Store) writeProjects(ctx context.Context, tx *sql.Tx, b *batch) error {
	if len(b.projs) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO projects (hub, cluster, namespace, id, name, pi, field_of_science,
		gpu_quota, gpu_allocation, gpu_requests, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT DO UPDATE SET
		id = excluded.id, name = excluded.name, pi = excluded.pi, field_of_science = excluded.field_of_science,
		gpu_quota = excluded.gpu_quota, gpu_allocation = excluded.gpu_allocation, gpu_requests = excluded.gpu_requests,
		first_seen = min(first_seen, excluded.first_seen), last_seen = excluded.last_seen
		WHERE excluded.last_seen >= last_seen`)
	if err != nil {
		return err
	}
	for k, p := range b.projs {
		if _, err := st.ExecContext(ctx, k.hub, k.cluster, k.namespace, p.id, p.name, p.pi, p.fos,
			ptr(p.quota), ptr(p.allocation), ptr(p.reqs), p.first, p.ts); err != nil {
			return err
		}
	}
	return nil
}

func ptr(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// rowsPerStatement bounds a multi-row INSERT (SQLite's default limit is
// 32766 bound parameters): fewer statements, the same rows.
const rowsPerStatement = 100

// execRows inserts n rows of ncols columns, rowsPerStatement to a statement;
// fill writes row i's values into args.
func execRows(ctx context.Context, tx *sql.Tx, head, tail string, ncols, n int, fill func(i int, args []any)) error {
	stmts := map[int]*sql.Stmt{}
	args := make([]any, 0, rowsPerStatement*ncols)
	for lo := 0; lo < n; lo += rowsPerStatement {
		hi := min(lo+rowsPerStatement, n)
		st := stmts[hi-lo]
		if st == nil {
			var err error
			if st, err = tx.PrepareContext(ctx, head+placeholders(hi-lo, ncols)+tail); err != nil {
				return err
			}
			stmts[hi-lo] = st
		}
		args = args[:(hi-lo)*ncols]
		for i := lo; i < hi; i++ {
			fill(i, args[(i-lo)*ncols:(i-lo+1)*ncols])
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// floorDiv is a / b rounded down (times before 1970 stay in their hour).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// nanos is a timestamp as stored: ns since 1970, clamped to int64 (a time
// past the year 2262 is bad input, kept in range rather than wrapped).
// sampleTime is a DCGM point's time in whole seconds (as ns): the
// ClickHouse exporter stores metric times as DateTime, so both backends see
// a sample at its second, and points of a series within one second are one
// sample (the larger value, as gpu_samples' maxIf).
func sampleTime(ts pcommon.Timestamp) int64 {
	return nanos(ts) / int64(time.Second) * int64(time.Second)
}

func nanos(ts pcommon.Timestamp) int64 {
	if uint64(ts) > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(ts) //nolint:gosec // checked above
}
