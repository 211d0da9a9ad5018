package gpustore // import "github.com/nerc-project/ai-telemetry-collector/internal/gpustore"

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ErrNotFound is returned (wrapped) for one entity that does not exist or
// lies outside the caller's Scope: the two are indistinguishable on purpose,
// so the API answers 404 for both.
var ErrNotFound = errors.New("not found")

// ErrBadQuery is returned (wrapped) for a query a backend refuses (a window,
// step or aggregation outside the bounds below).
var ErrBadQuery = errors.New("bad query")

// ErrReadOnly is returned by a backend that the site reads but this
// distribution does not write (clickhouse: the contrib exporter writes it).
var ErrReadOnly = errors.New("backend is read-only here")

// ErrFull is returned (wrapped) by a write that failed for lack of space:
// the exporter counts it apart, since an operator has to act on it.
var ErrFull = errors.New("store is full")

// Reader is what the site reads. Every method applies f.Scope inside the
// backend's query.
type Reader interface {
	Hubs(ctx context.Context, f Filter) ([]Hub, error)
	Clusters(ctx context.Context, f Filter) ([]Cluster, error)
	Nodes(ctx context.Context, f Filter) ([]Node, error)
	Devices(ctx context.Context, f Filter) ([]Device, error)
	Slices(ctx context.Context, f Filter) ([]Slice, error)
	Projects(ctx context.Context, f Filter) ([]Project, error)
	Sessions(ctx context.Context, f Filter) ([]Session, error)
	GPUHours(ctx context.Context, q GPUHoursQuery) ([]GPUHoursRow, error)
	// Idle lists allocated-but-idle devices: at their last sample when
	// f.Window is zero, else the idle GPU-hours each accrued in the window.
	Idle(ctx context.Context, f Filter) ([]IdleAllocation, error)
	Utilization(ctx context.Context, q UtilizationQuery) ([]UtilizationPoint, error)
}

// Writer is what the embedded store's exporter writes: the gpumodel
// processor's enriched DCGM metrics and the Alertmanager receiver's spans.
// A write is all or nothing.
type Writer interface {
	WriteMetrics(ctx context.Context, md pmetric.Metrics) error
	WriteTraces(ctx context.Context, td ptrace.Traces) error
}

// Store is a backend: read, write, close.
type Store interface {
	Reader
	Writer
	Close() error
}

// Scope is what a caller may see. Managers of a cluster see everything of
// it (every device, free ones included, and every project on it); members
// of a project see the rows of their namespace on its cluster: the project,
// its sessions, the devices and slices its pods held (with only the samples
// its pods held them for) and its GPU-hours. The zero Scope sees nothing.
type Scope struct {
	// All sees everything: local mode, or a hub manager of every hub.
	All bool
	// Hubs: managers of a hub see every cluster of it.
	Hubs     []string
	Clusters []ClusterKey
	Projects []ProjectKey
}

// ClusterKey names a cluster.
type ClusterKey struct{ Hub, Cluster string }

// ProjectKey names a research project: a namespace on a cluster.
type ProjectKey struct{ Hub, Cluster, Namespace string }

// Empty says whether the scope sees nothing.
func (s Scope) Empty() bool {
	return !s.All && len(s.Hubs) == 0 && len(s.Clusters) == 0 && len(s.Projects) == 0
}

// Filter narrows a read. Empty strings match everything; the names are
// validated (internal/topology) by the API before they reach a backend.
type Filter struct {
	Scope     Scope
	Hub       string
	Cluster   string
	Node      string
	Namespace string
	// Device is a GPU's UUID or a slice's hw.id; for Devices and Slices it
	// selects that entity, for sessions and reports the samples on it (a
	// GPU's UUID includes its slices).
	Device string
	// Window bounds time: entities seen in it, sessions overlapping it,
	// samples in it. The zero Window means "the last sample" for entities
	// and Idle; reports require one.
	Window Window
	Limit  int
	Offset int
}

// Window is the half-open interval [From, To).
type Window struct{ From, To time.Time }

// IsZero says whether no window was given.
func (w Window) IsZero() bool { return w.From.IsZero() && w.To.IsZero() }

// Aggregation keys of the GPU-hours report (GPUHoursRow.Keys).
//
// Every backend answers alike (internal/gpustore/testdata/conformance.json):
//   - A key's value is one column, never joined: KeyProject is the namespace,
//     and a row grouped by it also carries KeyCluster and "hub" (a project is a
//     namespace on a cluster of a hub); KeyCluster carries "hub", KeyNode
//     carries KeyCluster and "hub". The API and CSV show them as columns.
//   - Rows exist only for groups with allocated samples, sorted by Start, then
//     by hub, cluster, project, pi, node, model, profile, device; a stepped
//     row's Start and End are its step clipped to the window.
//   - A DCGM sample's time is its whole second (the ClickHouse exporter stores
//     metric times as DateTime): points of a series within one second are one
//     sample, a window's [From, To) compares that second, and every time read
//     from samples (LastSeen, Since, a bucket's samples) is whole seconds.
//     Raw reports read the samples in [From, To) that the scope sees: the
//     scope applies before intervals are computed.
//   - A sample without DCGM_FI_PROF_GR_ENGINE_ACTIVE or DCGM_FI_DEV_GPU_UTIL
//     has busy 0 (so it is idle), in raw samples and rollups alike.
//   - The rollup counts the whole hours the window touches. A series-hour's
//     interval is (last - first) / (samples - 1); a lone sample in its hour
//     takes the largest such interval of the series-hours of its node (hub,
//     cluster, node) in that same hour that the scope sees, else
//     LoneSampleIntervalS; capped at MaxSampleIntervalS. Per hour, so an
//     hour's value does not depend on the window it is read in. A
//     series-hour is idle when its mean busy is below IdleBusyThreshold.
//
// Entities and series (the same conformance):
//   - With a window, Devices and Slices show their last sample in it (state,
//     holder, LastXID, LastSeen); Hubs, Clusters and Nodes count what was seen
//     in it but their LastSeen is the last time the scope saw them at all;
//     Projects are those with first_seen < To and last_seen >= From.
//   - Utilization buckets are ceil((To - From) / q.MaxPoints) rounded up to whole
//     seconds, at least 1 s, from From; a bucket's Time is its start.
//   - An empty answer is an empty list, never nil (JSON []).
const (
	KeyProject = "project" // namespace; the row also has cluster and hub
	// KeyHub is not an aggregation key: it qualifies the project, cluster
	// and node keys in a row.
	KeyHub     = "hub"
	KeyPI      = "pi"
	KeyCluster = "cluster"
	KeyNode    = "node"
	KeyModel   = "model"
	KeyProfile = "profile" // MIG profile, "" for whole GPUs
	KeyDevice  = "device"
)

// Step of a stepped report, in UTC calendar units.
type Step string

// Steps.
const (
	StepNone  Step = ""
	StepDay   Step = "day"
	StepWeek  Step = "week" // ISO weeks, starting Monday
	StepMonth Step = "month"
)

// Source chooses what a report is computed from.
type Source string

// Sources of the GPU-hours report.
const (
	// SourceAuto reads the rollup where it answers the window
	// (ReadsRollup), raw samples otherwise.
	SourceAuto   Source = ""
	SourceRaw    Source = "raw"
	SourceRollup Source = "rollup"
)

// NowSlack is how close to now a window's end counts as now: the rollup's
// current hour then holds at most this much of samples past the end.
const NowSlack = 30 * time.Second

// ReadsRollup says whether a GPU-hours report of source s over w reads the
// rollup, for every backend alike. SourceAuto does where raw samples are
// gone (the window starts before now - rawRetention) and where the
// rollup's whole hours are the window: it starts on the hour and ends on
// the hour or now (within NowSlack), as a duration window does
// (extension/gpuqueryextension/internal/window). Raw samples cost a row per
// scrape and device (2.9 million for a day of 1,000 GPUs), the rollup a row
// per hour.
func ReadsRollup(s Source, w Window, now time.Time, rawRetention time.Duration) bool {
	switch s {
	case SourceRaw:
		return false
	case SourceRollup:
		return true
	}
	if w.From.Before(now.Add(-rawRetention)) {
		return true
	}
	onHour := func(t time.Time) bool { return t.Equal(t.Truncate(time.Hour)) }
	return onHour(w.From) && (onHour(w.To) || !w.To.Before(now.Add(-NowSlack)))
}

// GPUHoursQuery is the GPU-hours report: Window is required, Aggregate
// lists keys (none: one total row per step).
type GPUHoursQuery struct {
	Filter
	Aggregate []string
	Step      Step
	Source    Source
}

// UtilizationQuery is a utilization series of a device or project over a
// window, in at most MaxPoints buckets.
type UtilizationQuery struct {
	Filter
	MaxPoints int
}

// Bounds every backend enforces (the API checks them first, for clear
// errors; a backend refuses with ErrBadQuery anyway).
const (
	// MaxWindow is the longest window a report reads: 400 days of rollups.
	MaxWindow = 400 * 24 * time.Hour
	// MaxSteps bounds a stepped report's rows per key combination.
	MaxSteps = 400
	// MaxPoints bounds a utilization series.
	MaxPoints = 2000
	// MaxLimit bounds a page.
	MaxLimit = 1000
)

// The GPU-hours definitions of docs/dashboards.md.
const (
	// MaxSampleIntervalS caps what one sample stands for (three ACM
	// intervals), so a gap in the data does not count as usage.
	MaxSampleIntervalS = 900
	// LoneSampleIntervalS is what a device's only sample in a window stands for.
	LoneSampleIntervalS = 30
	// IdleBusyThreshold: samples below it are idle.
	IdleBusyThreshold = 0.05
)
