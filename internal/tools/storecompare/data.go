package main

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// The GPU-hours constants of internal/gpustore (MaxSampleIntervalS,
// LoneSampleIntervalS), repeated because this module must not import the
// collector's module (DuckDB's cgo would enter its graph the other way round).
const (
	maxSampleIntervalS  = 900
	loneSampleIntervalS = 30
	scrapeIntervalS     = 30
	samplesPerHour      = 3600 / scrapeIntervalS
	// SamplesPerGPUDay is one GPU scraped every 30 s for a day.
	samplesPerGPUDay = 86400 / scrapeIntervalS
	hubName          = "nerc"
	clusters         = 2
	gpusPerNode      = 8
)

// start is the first hour of the generated rollup window (a month start, so
// the report's first month is whole).
var start = time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)

// Size is the generated data set: GPUs (devices: every tenth a MIG slice)
// held by Projects over Days of hourly rollups.
type Size struct {
	GPUs, Days, Projects int
}

func (s Size) key() string { return fmt.Sprintf("g%d-d%d-p%d", s.GPUs, s.Days, s.Projects) }

// RollupRows is how many hourly rollup rows the size generates: every
// device is held every hour.
func (s Size) RollupRows() int { return s.GPUs * s.Days * 24 }

// device is one GPU or MIG slice with its precomputed strings.
type device struct {
	cluster, node, hwID, model, profile string
	fraction                            float64
}

type topology struct {
	size     Size
	devices  []device
	projects []string // namespace
	pis      []string
}

func newTopology(s Size) *topology {
	t := &topology{size: s}
	for g := range s.GPUs {
		d := device{
			cluster:  fmt.Sprintf("nerc-ocp-%d", g*clusters/s.GPUs),
			node:     fmt.Sprintf("gpu-node-%04d", g/gpusPerNode),
			hwID:     fmt.Sprintf("GPU-%08x-%04x-%04x-%04x-%012x", mix(uint64(g))&0xffffffff, g&0xffff, 0x4a11, 0x8b00, mix(uint64(g)+7)&0xffffffffffff),
			model:    "NVIDIA A100-SXM4-40GB",
			fraction: 1,
		}
		if g%gpusPerNode >= 4 {
			d.model = "NVIDIA H100 80GB HBM3"
		}
		if g%10 == 9 { // a MIG slice: hw.id "{GPU UUID}/{GPU instance id}"
			d.hwID += "/1"
			d.profile = "3g.40gb"
			d.fraction = 3.0 / 7
		}
		t.devices = append(t.devices, d)
	}
	for p := range s.Projects {
		t.projects = append(t.projects, fmt.Sprintf("proj-%03d", p))
		t.pis = append(t.pis, fmt.Sprintf("pi-%03d@example.edu", p%97))
	}
	return t
}

// mix is splitmix64: deterministic pseudo-random values without state.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func unit(x uint64) float64 { return float64(mix(x)>>11) / (1 << 53) }

// project of device g on day d: every device moves to another project each
// day, each project holds GPUs/Projects devices a day.
func (t *topology) project(g, d int) int { return (g + d*7) % t.size.Projects }

// devicesOf lists the devices project p holds on day d, ascending.
func (t *topology) devicesOf(p, d int) []int {
	P := t.size.Projects
	r := ((p-d*7)%P + P) % P
	var gs []int
	for g := r; g < t.size.GPUs; g += P {
		gs = append(gs, g)
	}
	return gs
}

// RollupRow is one row of the hourly rollup: a device-pod-hour. Hour is in
// unix seconds, FirstSeen and LastSeen in unix nanoseconds.
type RollupRow struct {
	Hour                                     int64
	Hub, Cluster, Node, HWID, Namespace, Pod string
	Samples                                  int64
	FirstSeen, LastSeen                      int64
	Fraction, BusySum                        float64
	PI, Model, Profile                       string
}

func (t *topology) rollupRow(g, h int) RollupRow {
	d := h / 24
	dev := &t.devices[g]
	p := t.project(g, d)
	hour := start.Unix() + int64(h)*3600
	n := int64(samplesPerHour)
	offset := int64(g % scrapeIntervalS)
	switch mix(uint64(g)<<20|uint64(h)) % 53 {
	case 0: // a lone sample
		n = 1
	case 1: // the pod started mid-hour
		n = 40
		offset += 80 * scrapeIntervalS
	}
	first := (hour + offset) * int64(time.Second)
	last := first + (n-1)*scrapeIntervalS*int64(time.Second)
	return RollupRow{
		Hour: hour, Hub: hubName, Cluster: dev.cluster, Node: dev.node, HWID: dev.hwID,
		Namespace: t.projects[p], Pod: fmt.Sprintf("%s-train-%d-%d", t.projects[p], g, d/2),
		Samples: n, FirstSeen: first, LastSeen: last,
		Fraction: dev.fraction, BusySum: float64(n) * unit(uint64(g)<<32|uint64(h)),
		PI: t.pis[p], Model: dev.model, Profile: dev.profile,
	}
}

// eachRollupTimeOrder yields every rollup row hour by hour, devices
// ascending: the order a live store writes them.
func (t *topology) eachRollupTimeOrder(yield func(*RollupRow) error) error {
	for h := range t.size.Days * 24 {
		for g := range t.size.GPUs {
			r := t.rollupRow(g, h)
			if err := yield(&r); err != nil {
				return err
			}
		}
	}
	return nil
}

// eachRollupKeyOrder yields every rollup row in the order of SQLite's
// primary key (hub, cluster, namespace, hour, node, hw_id, pod), so that the
// bulk load appends to the B-tree instead of inserting at random.
func (t *topology) eachRollupKeyOrder(yield func(*RollupRow) error) error {
	cl := map[string]bool{}
	var names []string
	for _, d := range t.devices {
		if !cl[d.cluster] {
			cl[d.cluster] = true
			names = append(names, d.cluster)
		}
	}
	sort.Strings(names)
	rows := make([]RollupRow, 0, 16)
	for _, c := range names {
		for p := range t.size.Projects { // proj-%03d sorts as p does
			for h := range t.size.Days * 24 {
				rows = rows[:0]
				for _, g := range t.devicesOf(p, h/24) {
					if t.devices[g].cluster == c {
						rows = append(rows, t.rollupRow(g, h))
					}
				}
				sort.Slice(rows, func(i, j int) bool {
					if rows[i].Node != rows[j].Node {
						return rows[i].Node < rows[j].Node
					}
					return rows[i].HWID < rows[j].HWID
				})
				for i := range rows {
					if err := yield(&rows[i]); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// Sample is one raw sample of the store: a device at one scrape. Time is in
// unix nanoseconds.
type Sample struct {
	Time                                     int64
	Hub, Cluster, Node, HWID, Namespace, Pod string
	Allocated                                bool
	Fraction, Busy                           float64
	FBUsed                                   int64
	Power                                    float64
	Temp, XID                                int64
	Model, Profile                           string
}

// fillBatch overwrites batch with the scrape at index i of every device.
func (t *topology) fillBatch(batch []Sample, i int) {
	ts := start.Add(time.Duration(i) * scrapeIntervalS * time.Second).UnixNano()
	d := i / samplesPerGPUDay
	for g := range batch {
		dev := &t.devices[g]
		p := t.project(g, d)
		u := unit(uint64(g)<<32 | uint64(i))
		s := &batch[g]
		s.Time, s.Hub, s.Cluster, s.Node, s.HWID = ts, hubName, dev.cluster, dev.node, dev.hwID
		s.Namespace, s.Pod, s.Allocated = t.projects[p], t.projects[p]+"-train", g%17 != 0
		s.Fraction, s.Busy = dev.fraction, math.Round(u*1000)/1000
		s.FBUsed = int64(20000 + u*20000)
		s.Power = math.Round((60+u*300)*10) / 10
		s.Temp = int64(30 + u*50)
		s.XID = 0
		if mix(uint64(g)^uint64(i)<<16)%100000 == 0 {
			s.XID = 79
		}
		s.Model, s.Profile = dev.model, dev.profile
	}
}

// ReportRow is one row of the monthly GPU-hours report by project.
type ReportRow struct {
	Month                   string // YYYY-MM, UTC
	Hub, Cluster, Namespace string
	GPUHours, UsedHours     float64
}

// rowHours is the GPU-hours and used GPU-hours of one rollup row, the
// definition the SQL of every engine implements (docs/dashboards.md).
func rowHours(r *RollupRow) (allocated, used float64) {
	dt := float64(loneSampleIntervalS)
	if r.Samples > 1 {
		dt = math.Min(float64(r.LastSeen-r.FirstSeen)/1e9/float64(r.Samples-1), maxSampleIntervalS)
	}
	return float64(r.Samples) * dt * r.Fraction / 3600, r.BusySum * dt * r.Fraction / 3600
}

// referenceReport computes the report in Go from the generator, for the
// check that every engine's SQL gives the same answer.
// It makes one pass for all of qs.
func referenceReport(t *topology, qs ...ReportQuery) ([][]ReportRow, error) {
	type key struct{ m, hub, c, ns string }
	sums := make([]map[key]*ReportRow, len(qs))
	for i := range sums {
		sums[i] = map[key]*ReportRow{}
	}
	err := t.eachRollupTimeOrder(func(r *RollupRow) error {
		a, u := rowHours(r)
		for i, q := range qs {
			if r.Hour < q.From.Unix() || r.Hour >= q.To.Unix() ||
				(q.Namespace != "" && (r.Hub != q.Hub || r.Cluster != q.Cluster || r.Namespace != q.Namespace)) {
				continue
			}
			k := key{time.Unix(r.Hour, 0).UTC().Format("2006-01"), r.Hub, r.Cluster, r.Namespace}
			s := sums[i][k]
			if s == nil {
				s = &ReportRow{Month: k.m, Hub: k.hub, Cluster: k.c, Namespace: k.ns}
				sums[i][k] = s
			}
			s.GPUHours += a
			s.UsedHours += u
		}
		return nil
	})
	out := make([][]ReportRow, len(qs))
	for i := range sums {
		out[i] = make([]ReportRow, 0, len(sums[i]))
		for _, s := range sums[i] {
			out[i] = append(out[i], *s)
		}
		sortReport(out[i])
	}
	return out, err
}

func sortReport(rows []ReportRow) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Month != b.Month {
			return a.Month < b.Month
		}
		if a.Hub != b.Hub {
			return a.Hub < b.Hub
		}
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		return a.Namespace < b.Namespace
	})
}

// sameReport says where two reports differ beyond float rounding.
func sameReport(a, b []ReportRow) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d rows, want %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Month != y.Month || x.Hub != y.Hub || x.Cluster != y.Cluster || x.Namespace != y.Namespace ||
			!approxEqual(x.GPUHours, y.GPUHours) || !approxEqual(x.UsedHours, y.UsedHours) {
			return fmt.Errorf("row %d: %+v, want %+v", i, x, y)
		}
	}
	return nil
}

func approxEqual(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
