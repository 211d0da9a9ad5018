package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// limit checks the page and returns the SQL LIMIT (0: a full page).
func limit(f gpustore.Filter) (int, error) {
	switch {
	case f.Limit < 0 || f.Limit > gpustore.MaxLimit:
		return 0, fmt.Errorf("%w: limit %d: want 0 to %d", gpustore.ErrBadQuery, f.Limit, gpustore.MaxLimit)
	case f.Offset < 0:
		return 0, fmt.Errorf("%w: offset %d: want 0 or more", gpustore.ErrBadQuery, f.Offset)
	case f.Limit == 0:
		return gpustore.MaxLimit, nil
	}
	return f.Limit, nil
}

func checkWindow(w gpustore.Window, required bool) error {
	if w.IsZero() {
		if required {
			return fmt.Errorf("%w: window is required", gpustore.ErrBadQuery)
		}
		return nil
	}
	switch {
	case w.From.IsZero() || w.To.IsZero():
		return fmt.Errorf("%w: window needs from and to", gpustore.ErrBadQuery)
	case !w.To.After(w.From):
		return fmt.Errorf("%w: window to %s is not after from %s", gpustore.ErrBadQuery,
			w.To.Format(time.RFC3339), w.From.Format(time.RFC3339))
	case w.To.Sub(w.From) > gpustore.MaxWindow:
		return fmt.Errorf("%w: window of %s is longer than %s", gpustore.ErrBadQuery, w.To.Sub(w.From), gpustore.MaxWindow)
	}
	return nil
}

// entityParams checks a list read and returns its parameters.
func entityParams(f gpustore.Filter) (params, error) {
	n, err := limit(f)
	if err != nil {
		return nil, err
	}
	if err := checkWindow(f.Window, false); err != nil {
		return nil, err
	}
	return scopeParams(f, n), nil
}

// Hubs lists the hubs seen.
func (s *Store) Hubs(ctx context.Context, f gpustore.Filter) ([]gpustore.Hub, error) {
	p, err := entityParams(f)
	if err != nil {
		return nil, err
	}
	if f.Scope.Empty() {
		return []gpustore.Hub{}, nil
	}
	rows, err := s.run(ctx, "hubs", p)
	if err != nil {
		return nil, err
	}
	out := make([]gpustore.Hub, 0, len(rows))
	for _, r := range rows {
		out = append(out, gpustore.Hub{Name: r.str("hub"), Clusters: r.int("clusters"), GPUs: r.int("gpus"), LastSeen: r.time("last_seen")})
	}
	return out, nil
}

// Clusters lists the clusters seen.
func (s *Store) Clusters(ctx context.Context, f gpustore.Filter) ([]gpustore.Cluster, error) {
	p, err := entityParams(f)
	if err != nil {
		return nil, err
	}
	if f.Scope.Empty() {
		return []gpustore.Cluster{}, nil
	}
	rows, err := s.run(ctx, "clusters", p)
	if err != nil {
		return nil, err
	}
	out := make([]gpustore.Cluster, 0, len(rows))
	for _, r := range rows {
		out = append(out, gpustore.Cluster{
			Hub: r.str("hub"), Name: r.str("cluster"), Nodes: r.int("nodes"), GPUs: r.int("gpus"),
			Slices: r.int("slices"), LastSeen: r.time("last_seen"),
		})
	}
	return out, nil
}

// Nodes lists the GPU nodes seen.
func (s *Store) Nodes(ctx context.Context, f gpustore.Filter) ([]gpustore.Node, error) {
	p, err := entityParams(f)
	if err != nil {
		return nil, err
	}
	if f.Scope.Empty() {
		return []gpustore.Node{}, nil
	}
	rows, err := s.run(ctx, "nodes", p)
	if err != nil {
		return nil, err
	}
	out := make([]gpustore.Node, 0, len(rows))
	for _, r := range rows {
		out = append(out, gpustore.Node{
			Hub: r.str("hub"), Cluster: r.str("cluster"), Name: r.str("node"), GPUs: r.int("gpus"),
			Slices: r.int("slices"), Models: r.strings("models"), LastSeen: r.time("last_seen"),
		})
	}
	return out, nil
}

// stateOf maps the queries' state_rank.
func stateOf(rank int) gpustore.State {
	switch rank {
	case 4:
		return gpustore.StateError
	case 3:
		return gpustore.StateInUse
	case 2:
		return gpustore.StateIdle
	}
	return gpustore.StateFree
}

func holder(r record) *gpustore.Holder {
	if r.str("holder_pod") == "" && r.str("holder_namespace") == "" {
		return nil
	}
	return &gpustore.Holder{Namespace: r.str("holder_namespace"), Pod: r.str("holder_pod")}
}

// Devices lists whole GPUs with state, holder and XID of their last sample.
func (s *Store) Devices(ctx context.Context, f gpustore.Filter) ([]gpustore.Device, error) {
	p, err := entityParams(f)
	if err != nil {
		return nil, err
	}
	if f.Scope.Empty() {
		return []gpustore.Device{}, nil
	}
	rows, err := s.run(ctx, "devices", p)
	if err != nil {
		return nil, err
	}
	out := make([]gpustore.Device, 0, len(rows))
	for _, r := range rows {
		out = append(out, gpustore.Device{
			Hub: r.str("hub"), Cluster: r.str("cluster"), Node: r.str("node"), ID: r.str("id"),
			Index: r.str("gpu_index"), Model: r.str("model"), MIG: r.bool("mig"), Slices: r.int("slices"),
			State: stateOf(r.int("state_rank")), Holder: holder(r), LastXID: r.int("last_xid"),
			LastSeen: r.time("last_seen"),
		})
	}
	return out, nil
}

// Slices lists MIG slices with state and holder of their last sample.
func (s *Store) Slices(ctx context.Context, f gpustore.Filter) ([]gpustore.Slice, error) {
	p, err := entityParams(f)
	if err != nil {
		return nil, err
	}
	if f.Scope.Empty() {
		return []gpustore.Slice{}, nil
	}
	rows, err := s.run(ctx, "slices", p)
	if err != nil {
		return nil, err
	}
	out := make([]gpustore.Slice, 0, len(rows))
	for _, r := range rows {
		out = append(out, gpustore.Slice{
			Hub: r.str("hub"), Cluster: r.str("cluster"), Node: r.str("node"), ID: r.str("id"),
			Parent: r.str("parent"), Profile: r.str("profile"), Fraction: r.float("fraction"),
			Model: r.str("model"), State: stateOf(r.int("state_rank")), Holder: holder(r),
			LastSeen: r.time("last_seen"),
		})
	}
	return out, nil
}

func optFloat(r record, k string) *float64 {
	if v, ok := r.optFloat(k); ok {
		return &v
	}
	return nil
}

// Projects lists research projects with their metadata.
func (s *Store) Projects(ctx context.Context, f gpustore.Filter) ([]gpustore.Project, error) {
	p, err := entityParams(f)
	if err != nil {
		return nil, err
	}
	if f.Scope.Empty() {
		return []gpustore.Project{}, nil
	}
	rows, err := s.run(ctx, "projects", p)
	if err != nil {
		return nil, err
	}
	out := make([]gpustore.Project, 0, len(rows))
	for _, r := range rows {
		out = append(out, gpustore.Project{
			Hub: r.str("hub"), Cluster: r.str("cluster"), Namespace: r.str("namespace"), ID: r.str("id"),
			Name: r.str("name"), PI: r.str("pi"), FieldOfScience: r.str("field_of_science"),
			GPUQuota: optFloat(r, "gpu_quota"), GPUAllocation: optFloat(r, "gpu_allocation"),
			GPURequests: optFloat(r, "gpu_requests"), LastSeen: r.time("last_seen"),
		})
	}
	return out, nil
}

// Sessions lists usage sessions overlapping the window (all without one).
func (s *Store) Sessions(ctx context.Context, f gpustore.Filter) ([]gpustore.Session, error) {
	p, err := entityParams(f)
	if err != nil {
		return nil, err
	}
	if f.Scope.Empty() {
		return []gpustore.Session{}, nil
	}
	now := s.now().UTC()
	p["now"] = formatTime(now)
	rows, err := s.run(ctx, "sessions", p)
	if err != nil {
		return nil, err
	}
	out := make([]gpustore.Session, 0, len(rows))
	for _, r := range rows {
		x := gpustore.Session{
			TraceID: r.str("trace_id"), SpanID: r.str("span_id"), Kind: gpustore.SessionKind(r.str("kind")),
			Hub: r.str("hub"), Cluster: r.str("cluster"), Node: r.str("node"), Namespace: r.str("namespace"),
			Pod: r.str("pod"), Device: r.str("device"), Profile: r.str("profile"), Fraction: r.float("fraction"),
			Start: r.time("start"), Busy: optFloat(r, "busy"),
		}
		end := r.time("end_time")
		if r.bool("closed") {
			x.End = &end
		}
		x.DurationS = end.Sub(x.Start).Seconds()
		out = append(out, x)
	}
	return out, nil
}

// validKeys are the aggregation keys of the GPU-hours report.
var validKeys = []string{
	gpustore.KeyProject, gpustore.KeyPI, gpustore.KeyCluster, gpustore.KeyNode,
	gpustore.KeyModel, gpustore.KeyProfile, gpustore.KeyDevice,
}

// keyColumn is the query's column of each key.
var keyColumn = map[string]string{
	gpustore.KeyProject: "k_project", gpustore.KeyPI: "k_pi", gpustore.KeyCluster: "k_cluster",
	gpustore.KeyNode: "k_node", gpustore.KeyModel: "k_model", gpustore.KeyProfile: "k_profile",
	gpustore.KeyDevice: "k_device",
}

// steps is how many UTC calendar steps of size st the window touches
// (counted as the embedded backend does; at most gpustore.MaxSteps+1).
func steps(w gpustore.Window, st gpustore.Step) int {
	if st == gpustore.StepNone {
		return 1
	}
	t := w.From.UTC()
	t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch st {
	case gpustore.StepWeek: // back to Monday
		t = t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
	case gpustore.StepMonth:
		t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	n := 0
	for ; t.Before(w.To) && n <= gpustore.MaxSteps; n++ {
		switch st {
		case gpustore.StepDay:
			t = t.AddDate(0, 0, 1)
		case gpustore.StepWeek:
			t = t.AddDate(0, 0, 7)
		default:
			t = t.AddDate(0, 1, 0)
		}
	}
	return n
}

// GPUHours is the GPU-hours report, from raw samples or the hourly rollup.
func (s *Store) GPUHours(ctx context.Context, q gpustore.GPUHoursQuery) ([]gpustore.GPUHoursRow, error) {
	n, err := limit(q.Filter)
	if err != nil {
		return nil, err
	}
	if err := checkWindow(q.Window, true); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, k := range q.Aggregate {
		if !slices.Contains(validKeys, k) {
			return nil, fmt.Errorf("%w: aggregate %q: want one of %v", gpustore.ErrBadQuery, k, validKeys)
		}
		if seen[k] {
			return nil, fmt.Errorf("%w: aggregate %q given twice", gpustore.ErrBadQuery, k)
		}
		seen[k] = true
	}
	switch q.Step {
	case gpustore.StepNone, gpustore.StepDay, gpustore.StepWeek, gpustore.StepMonth:
	default:
		return nil, fmt.Errorf("%w: step %q: want day, week or month", gpustore.ErrBadQuery, q.Step)
	}
	if k := steps(q.Window, q.Step); k > gpustore.MaxSteps {
		return nil, fmt.Errorf("%w: %d %s steps: at most %d", gpustore.ErrBadQuery, k, q.Step, gpustore.MaxSteps)
	}
	switch q.Source {
	case gpustore.SourceAuto, gpustore.SourceRaw, gpustore.SourceRollup:
	default:
		return nil, fmt.Errorf("%w: source %q: want raw or rollup", gpustore.ErrBadQuery, q.Source)
	}
	name := "gpu_hours_raw"
	if gpustore.ReadsRollup(q.Source, q.Window, s.now(), s.cfg.RawRetention) {
		name = "gpu_hours_rollup"
	}
	if q.Scope.Empty() {
		return []gpustore.GPUHoursRow{}, nil
	}
	p := scopeParams(q.Filter, n)
	p["keys"] = keysParam(q.Aggregate)
	p["step"] = string(q.Step)
	rows, err := s.run(ctx, name, p)
	if err != nil {
		return nil, err
	}
	out := make([]gpustore.GPUHoursRow, 0, len(rows))
	for _, r := range rows {
		keys := make(map[string]string, len(q.Aggregate)+2)
		for _, k := range q.Aggregate {
			keys[k] = r.str(keyColumn[k])
		}
		// a project is a namespace on a cluster of a hub, a node a node of a
		// cluster: the row names them apart (gpustore.KeyProject)
		if seen[gpustore.KeyProject] || seen[gpustore.KeyNode] {
			keys[gpustore.KeyHub], keys[gpustore.KeyCluster] = r.str("k_hub"), r.str("k_cluster")
		} else if seen[gpustore.KeyCluster] {
			keys[gpustore.KeyHub] = r.str("k_hub")
		}
		out = append(out, gpustore.GPUHoursRow{
			Start: r.time("start"), End: r.time("end"), Keys: keys, Allocated: r.float("allocated"),
			Used: r.float("used"), Idle: r.float("idle"), Devices: r.int("devices"),
		})
	}
	return out, nil
}

// Idle lists allocated-but-idle GPUs and slices: now, or over the window.
func (s *Store) Idle(ctx context.Context, f gpustore.Filter) ([]gpustore.IdleAllocation, error) {
	p, err := entityParams(f)
	if err != nil {
		return nil, err
	}
	if f.Scope.Empty() {
		return []gpustore.IdleAllocation{}, nil
	}
	name, frac := "idle_window", "max_fraction"
	if f.Window.IsZero() {
		name, frac = "idle_now", "fraction"
	}
	rows, err := s.run(ctx, name, p)
	if err != nil {
		return nil, err
	}
	out := make([]gpustore.IdleAllocation, 0, len(rows))
	for _, r := range rows {
		out = append(out, gpustore.IdleAllocation{
			Hub: r.str("hub"), Cluster: r.str("cluster"), Node: r.str("node"), Device: r.str("device"),
			Namespace: r.str("namespace"), Pod: r.str("pod"), Fraction: r.float(frac),
			IdleHours: r.float("idle_hours"), Since: r.time("since"), LastSeen: r.time("last_seen"),
		})
	}
	return out, nil
}

// Utilization is a device's or project's series in at most MaxPoints buckets.
func (s *Store) Utilization(ctx context.Context, q gpustore.UtilizationQuery) ([]gpustore.UtilizationPoint, error) {
	if err := checkWindow(q.Window, true); err != nil {
		return nil, err
	}
	points := q.MaxPoints
	switch {
	case points < 0 || points > gpustore.MaxPoints:
		return nil, fmt.Errorf("%w: max_points %d: want 1 to %d", gpustore.ErrBadQuery, points, gpustore.MaxPoints)
	case points == 0:
		points = gpustore.MaxPoints
	}
	if q.Scope.Empty() {
		return []gpustore.UtilizationPoint{}, nil
	}
	// whole seconds, at least one: ceil(window / points) in integers, as
	// the embedded backend cuts them
	per := int64(points) * int64(time.Second)
	bucket := max(1, (q.Window.To.Sub(q.Window.From).Nanoseconds()+per-1)/per)
	p := scopeParams(q.Filter, gpustore.MaxLimit)
	p["bucket_s"] = strconv.FormatInt(bucket, 10)
	rows, err := s.run(ctx, "utilization", p)
	if err != nil {
		return nil, err
	}
	out := make([]gpustore.UtilizationPoint, 0, len(rows))
	for _, r := range rows {
		out = append(out, gpustore.UtilizationPoint{
			Time: r.time("time"), Busy: r.float("busy"), FBUsedMiB: r.float("fb_used_mib"),
			PowerW: r.float("power_w"), TempC: r.float("temp_c"), Samples: r.int("samples"),
		})
	}
	return out, nil
}
