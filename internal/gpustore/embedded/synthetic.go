package embedded // import "github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// SyntheticFleet is a generated data set the size of a production fleet,
// for the benchmarks and the site's load target (test/siteload): GPUs on
// 8-GPU nodes (500 a cluster) of hub moc, each held by one of 200 projects
// 7 hours in 10 at a busy ratio that changes hourly. The hours before the
// last RawHours are written in SQL straight into the hourly rollup (9.6 M
// series-hours for 1,000 GPUs over 400 days would take hours through
// WriteMetrics); the last RawHours are scrapes every 30 s through
// WriteMetrics, as the exporter writes them (raw samples, rollup, latest
// state, projects); the usage sessions are one a held run of hours.
type SyntheticFleet struct {
	GPUs     int
	Days     int
	RawHours int
	Start    time.Time // on the hour
}

// Synthetic fleet constants, shared with the tests that check against it.
const (
	SyntheticGPUsPerNode    = 8
	SyntheticProjects       = 200
	SyntheticModel          = "NVIDIA A100-SXM4-80GB"
	syntheticGPUsPerCluster = 500
	syntheticScrape         = 30 * time.Second
)

// End is the data set's last instant: its stores' "now".
func (f SyntheticFleet) End() time.Time { return f.Start.AddDate(0, 0, f.Days) }

// Held is whether GPU i is allocated during the hour starting at unix
// second hour, and the busy ratio it runs at then (the SQL below computes
// the same).
func (f SyntheticFleet) Held(i int, hour int64) (bool, float64) {
	h := hour / 3600
	return (h*7+int64(i)*13)%10 < 7, float64((h*31+int64(i)*17)%100) / 100
}

// Names of GPU i.
func (SyntheticFleet) Cluster(i int) string {
	return fmt.Sprintf("cluster-%d", i/syntheticGPUsPerCluster)
}

func (SyntheticFleet) Node(i int) string { return fmt.Sprintf("gpu-node-%03d", i/SyntheticGPUsPerNode) }

func (SyntheticFleet) Project(i int) string { return fmt.Sprintf("project-%03d", i%SyntheticProjects) }
func (SyntheticFleet) Pod(i int) string     { return fmt.Sprintf("job-%04d-0", i) }
func (SyntheticFleet) UUID(i int) string    { return fmt.Sprintf("GPU-%08x-0000-4000-8000-%012x", i, i) }

func (SyntheticFleet) projectName(i int) string {
	return fmt.Sprintf("Research project %d", i%SyntheticProjects)
}

func (SyntheticFleet) projectPI(i int) string {
	return fmt.Sprintf("pi-%02d@example.edu", i%SyntheticProjects%50)
}

var errSyntheticFleet = errors.New("synthetic fleet: GPUs, days and a start on the hour are required, raw hours within the days")

// BuildSynthetic writes the fleet into a new store file at path (replacing
// any file there only once it is complete).
func BuildSynthetic(ctx context.Context, path string, f SyntheticFleet) error {
	if f.GPUs <= 0 || f.Days <= 0 || f.RawHours < 0 || f.RawHours > 24*f.Days || !f.Start.Equal(f.Start.Truncate(time.Hour)) {
		return errSyntheticFleet
	}
	tmp := path + ".tmp"
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
		_ = os.Remove(p)
	}
	end := f.End()
	rawFrom := end.Add(-time.Duration(f.RawHours) * time.Hour)
	clock := rawFrom
	cfg := NewDefaultConfig()
	cfg.Path, cfg.Now = tmp, func() time.Time { return clock }
	s, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	if err := f.rollupInSQL(ctx, s, rawFrom); err != nil {
		return err
	}
	if err := f.scrapes(ctx, s, rawFrom, &clock); err != nil {
		return err
	}
	if err := f.sessions(ctx, s); err != nil {
		return err
	}
	clock = end
	if _, err := s.rollAll(ctx); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// rollupInSQL fills the hourly rollup before the raw hours, and marks their
// days and months stale as WriteMetrics would.
func (f SyntheticFleet) rollupInSQL(ctx context.Context, s *Store, to time.Time) error {
	if !f.Start.Before(to) {
		return nil
	}
	if _, err := s.w.ExecContext(ctx, `
	WITH RECURSIVE h(hour) AS (SELECT ? UNION ALL SELECT hour + 3600 FROM h WHERE hour + 3600 < ?),
	g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?),
	x AS (SELECT hour, i, ((hour / 3600) * 7 + i * 13) % 10 < 7 AS held,
		((hour / 3600) * 31 + i * 17) % 100 / 100.0 AS busy FROM h, g)
	INSERT INTO hourly SELECT hour, 'moc', printf('cluster-%d', i / 500), printf('gpu-node-%03d', i / 8),
		CASE WHEN held THEN printf('project-%03d', i % 200) ELSE '' END,
		CASE WHEN held THEN printf('job-%04d-0', i) ELSE '' END,
		printf('GPU-%08x-0000-4000-8000-%012x', i, i), held,
		CASE WHEN held THEN printf('Research project %d', i % 200) ELSE '' END,
		CASE WHEN held THEN printf('pi-%02d@example.edu', i % 200 % 50) ELSE '' END,
		?, '', 1.0, 120, hour * 1000000000, (hour + 3570) * 1000000000, (hour + 3570) * 1000000000,
		120 * busy, 120, 120 * busy, 120
	FROM x ORDER BY hour, i`, f.Start.Unix(), to.Unix(), f.GPUs, SyntheticModel); err != nil {
		return fmt.Errorf("synthetic rollup: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO daily_state (day, fresh, through)
		SELECT d, 0, d FROM (SELECT DISTINCT hour - (hour % 86400 + 86400) % 86400 AS d FROM hourly)`); err != nil {
		return fmt.Errorf("synthetic rollup: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO monthly_state (month, fresh, through)
		SELECT m, 0, m FROM (SELECT DISTINCT CAST(strftime('%s', day, 'unixepoch', 'start of month') AS INTEGER) AS m FROM daily_state)`); err != nil {
		return fmt.Errorf("synthetic rollup: %w", err)
	}
	return nil
}

// scrapes writes one scrape every 30 s from from to the end through
// WriteMetrics, the store's clock following the scrapes. Who holds a GPU
// changes only on the hour: each hour's scrape is built once and restamped.
func (f SyntheticFleet) scrapes(ctx context.Context, s *Store, from time.Time, clock *time.Time) error {
	var md pmetric.Metrics
	var pts []pmetric.NumberDataPoint
	for at := from; at.Before(f.End()); at = at.Add(syntheticScrape) {
		if pts == nil || at.Unix()%3600 == 0 {
			md = f.Scrape(at)
			pts = DataPoints(md)
		}
		ts := pcommon.NewTimestampFromTime(at)
		for _, dp := range pts {
			dp.SetTimestamp(ts)
		}
		*clock = at
		if err := s.WriteMetrics(ctx, md); err != nil {
			return fmt.Errorf("synthetic scrape at %s: %w", at.Format(time.RFC3339), err)
		}
	}
	return nil
}

// DataPoints are the points of a Scrape, to restamp them.
func DataPoints(md pmetric.Metrics) []pmetric.NumberDataPoint {
	var pts []pmetric.NumberDataPoint
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			pts = append(pts, ms.At(j).Gauge().DataPoints().At(0))
		}
	}
	return pts
}

// Scrape is one enriched scrape of the fleet at t as the gpumodel processor
// emits it: per GPU a resource (with its pod and project's metadata while
// held) and the 7 DCGM fields in DCGM's units (a ratio, whole percent, whole
// MiB, watts, whole °C).
func (f SyntheticFleet) Scrape(t time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	ts := pcommon.NewTimestampFromTime(t)
	hour := t.Unix() - t.Unix()%3600
	for g := 0; g < f.GPUs; g++ {
		cluster, node, uuid, index := f.Cluster(g), f.Node(g), f.UUID(g), strconv.Itoa(g%SyntheticGPUsPerNode)
		ngsiID := "urn:ngsi-ld:GpuDevice:" + cluster + ":" + node + ":" + index
		rm := md.ResourceMetrics().AppendEmpty()
		res := rm.Resource().Attributes()
		res.PutStr(topology.AttrHubName, "moc")
		res.PutStr(topology.AttrK8sClusterName, cluster)
		res.PutStr(topology.AttrK8sNodeName, node)
		held, busy := f.Held(g, hour)
		if held {
			p := g % SyntheticProjects
			res.PutStr(topology.AttrK8sNamespaceName, f.Project(g))
			res.PutStr(topology.AttrK8sPodName, f.Pod(g))
			res.PutStr(topology.AttrProjectID, strconv.Itoa(1000+p))
			res.PutStr(topology.AttrProjectName, f.projectName(g))
			res.PutStr(topology.AttrProjectPI, f.projectPI(g))
			res.PutStr(topology.AttrProjectFieldOfScience, "Computer and Information Sciences")
			res.PutDouble(topology.AttrProjectGPUAllocation, 4)
		} else {
			busy = 0
		}
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		fb := float64(int(40000 * busy))
		vals := []float64{busy, float64(int(busy * 100)), fb, 81920 - fb, 60 + 300*busy, float64(int(35 + 40*busy)), 0}
		for i, name := range []string{metricProf, metricUtil, metricFBUsed, metricFBFree, metricPower, metricTemp, metricXID} {
			m := ms.AppendEmpty()
			m.SetName(name)
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(vals[i])
			a := dp.Attributes()
			a.PutBool(topology.AttrGPUAllocated, held)
			a.PutDouble(topology.AttrSliceFraction, 1)
			a.PutStr(topology.AttrNGSILDID, ngsiID)
			a.PutStr(topology.AttrHwDriverVersion, "550.90.07")
			a.PutStr(topology.AttrHwID, uuid)
			a.PutStr(topology.AttrHwModel, SyntheticModel)
			a.PutStr(topology.AttrHwName, "nvidia"+index)
			a.PutStr(topology.AttrHwType, topology.HwTypeGPU)
			a.PutStr(topology.AttrHwVendor, topology.HwVendorNVIDIA)
			a.PutStr(topology.AttrNvidiaGPUIndex, index)
		}
	}
	return md
}

// sessions writes a gpu.usage session per run of held hours, the run still
// going at the end left open, as the Alertmanager receiver's spans would.
func (f SyntheticFleet) sessions(ctx context.Context, s *Store) error {
	from, end := f.Start.Unix(), f.End().Unix()
	var rows []sessionRow
	for g := 0; g < f.GPUs; g++ {
		start := int64(-1)
		for h := from; h <= end; h += 3600 {
			held := false
			if h < end {
				held, _ = f.Held(g, h)
			}
			switch {
			case held && start < 0:
				start = h
			case !held && start >= 0:
				sum := sha256.Sum256([]byte(f.UUID(g) + "/" + strconv.FormatInt(start, 10)))
				r := sessionRow{
					traceID: hex.EncodeToString(sum[:16]), spanID: hex.EncodeToString(sum[16:24]),
					kind: "gpu.usage", hub: "moc", cluster: f.Cluster(g), node: f.Node(g), namespace: f.Project(g),
					pod: f.Pod(g), device: f.UUID(g), fraction: 1, start: start * 1e9, end: h * 1e9, final: h < end,
				}
				rows = append(rows, r)
				start = -1
			}
		}
	}
	if err := s.writeSessions(ctx, rows); err != nil {
		return fmt.Errorf("synthetic sessions: %w", err)
	}
	return nil
}

// rollAll brings every stale day and month up to date at once (the writer
// spreads that over its retention passes); it returns how many.
func (s *Store) rollAll(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := s.now().Add(-s.cfg.RollupRetention).Truncate(time.Hour).Unix()
	total := 0
	for {
		n, err := s.roll(ctx, cut, daysPerPass, monthsPerPass)
		if err != nil || n == 0 {
			return total, err
		}
		total += n
	}
}
