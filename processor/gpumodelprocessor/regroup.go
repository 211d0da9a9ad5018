package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

import (
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

type groupKey struct{ cluster, node, namespace, pod, container, podUID string }

// group collects the DCGM data points of one topology position taken out of
// one input resource.
type group struct {
	entity topology.Entity
	rm     pmetric.ResourceMetrics
	count  int64

	// Input scopes and metrics are visited in order, each once, so a group
	// only ever appends to the scope and metric it saw last: no lookups.
	scope  int // index + 1 of the input scope gsm copies
	gsm    pmetric.ScopeMetrics
	metric int // stamp of the input metric dps copies
	dps    pmetric.NumberDataPointSlice
	// points the group took from its previous metric: the next one is
	// usually the same size (a pod's GPUs report every field).
	lastPoints int
}

// regroup moves the DCGM data points of one input resource into one new
// resource per topology position, in order of first appearance, replacing
// their labels with the enrichment's attributes. resource is rm's index + 1.
func (p *gpuModelProcessor) regroup(rms pmetric.ResourceMetricsSlice, rm pmetric.ResourceMetrics, resource int, bc *batchCache, counts *batchCounts) {
	cluster := resourceCluster(rm.Resource())
	var order []*group
	var groups map[groupKey]*group
	stamp := 0
	// The label sets of the previous and the current metric's points, by
	// position (see enrichment.same).
	var prev, cur []*seen
	for si, sm := range rm.ScopeMetrics().All() {
		dcgm := 0
		for _, m := range sm.Metrics().All() {
			if isDCGMSeries(m.Name()) {
				dcgm++
			}
		}
		if dcgm == 0 {
			continue
		}
		sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
			if !isDCGMSeries(m.Name()) {
				return false
			}
			dps, ok := numberPoints(m)
			if !ok {
				counts.incomplete[reasonUnsupportedType]++
				return false
			}
			stamp++
			prev, cur = cur, prev[:0]
			for i, dp := range dps.All() {
				var s *seen
				if i < len(prev) && prev[i].en.same(dp.Attributes()) {
					s = prev[i]
				} else {
					s = p.enricher.enrich(bc, dp.Attributes(), cluster)
				}
				cur = append(cur, s)
				s.points++
				if s.en.invalid != nil {
					continue // refused: removed with the input metric
				}
				if s.resource != resource {
					e := s.en.entity
					key := groupKey{e.Cluster, e.Node, e.Namespace, e.Pod, e.Container, e.PodUID}
					g, ok := groups[key]
					if !ok {
						if groups == nil {
							groups = map[groupKey]*group{}
						}
						g = &group{entity: e, rm: pmetric.NewResourceMetrics()}
						rm.Resource().CopyTo(g.rm.Resource())
						g.rm.SetSchemaUrl(rm.SchemaUrl())
						p.setResource(g.rm.Resource().Attributes(), e, s.en.nodeUnresolved)
						groups[key] = g
						order = append(order, g)
					}
					s.group, s.resource = g, resource
				}
				g := s.group
				if g.metric != stamp {
					g.startMetric(si, sm, m, dcgm, stamp)
				}
				dst := g.dps.AppendEmpty()
				dp.MoveTo(dst)
				s.en.rewrite(dst.Attributes(), bc.cells)
				g.count++
				g.lastPoints++
			}
			counts.enriched += int64(dps.Len())
			return true
		})
	}
	rms.EnsureCapacity(rms.Len() + len(order))
	for _, g := range order {
		if g.entity.Namespace != "" {
			if _, ok := p.meta.project(projectKey{cluster: g.entity.Cluster, namespace: g.entity.Namespace}); !ok {
				counts.incomplete[reasonNoProjectMetadata] += g.count
			}
		}
		if p.cfg.SemconvMetrics {
			for _, sm := range g.rm.ScopeMetrics().All() {
				addSemconvMetrics(sm)
			}
		}
		g.rm.MoveTo(rms.AppendEmpty())
	}
}

// startMetric gives the group its copy of input metric m (the stamp-th DCGM
// metric of the resource, in input scope si holding dcgm DCGM metrics),
// creating its copy of the scope on the first metric from it.
func (g *group) startMetric(si int, sm pmetric.ScopeMetrics, m pmetric.Metric, dcgm, stamp int) {
	if g.scope != si+1 {
		g.gsm = g.rm.ScopeMetrics().AppendEmpty()
		sm.Scope().CopyTo(g.gsm.Scope())
		g.gsm.SetSchemaUrl(sm.SchemaUrl())
		g.gsm.Metrics().EnsureCapacity(dcgm)
		g.scope = si + 1
	}
	target := g.gsm.Metrics().AppendEmpty()
	target.SetName(m.Name())
	target.SetDescription(m.Description())
	target.SetUnit(m.Unit())
	m.Metadata().CopyTo(target.Metadata())
	if m.Type() == pmetric.MetricTypeGauge {
		g.dps = target.SetEmptyGauge().DataPoints()
	} else {
		sum := target.SetEmptySum()
		sum.SetAggregationTemporality(m.Sum().AggregationTemporality())
		sum.SetIsMonotonic(m.Sum().IsMonotonic())
		g.dps = sum.DataPoints()
	}
	if g.lastPoints > 1 {
		g.dps.EnsureCapacity(g.lastPoints)
	}
	g.metric, g.lastPoints = stamp, 0
}
