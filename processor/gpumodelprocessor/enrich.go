package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

import (
	"hash/maphash"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// Reasons a data point passes with part of the model missing.
const (
	reasonNoGPUIdentity     = "no_gpu_identity"
	reasonNoNode            = "no_node"
	reasonNoCluster         = "no_cluster"
	reasonUnknownMIGProfile = "unknown_mig_profile"
	reasonNodeUnresolved    = "node_unresolved"
	reasonNoProjectMetadata = "no_project_metadata"
	reasonUnsupportedType   = "unsupported_type"
)

// enrichment is what one DCGM label set becomes: its place in the topology
// and the data point attributes that replace the raw labels. Label sets repeat
// across every metric and scrape of a GPU, so enrichments are cached.
type enrichment struct {
	entity         topology.Entity
	attrs          pcommon.Map
	nodeUnresolved bool
	incomplete     []string
	// invalid is why the label set's points are refused: a name that would
	// take part in a Keycloak resource or tenant is not a Kubernetes name.
	invalid    error
	generation uint64
	// labels is the label set (see snapshot), so a point is recognized by
	// comparison rather than by hash alone.
	labels          []string
	resourceCluster string
	// shape, if not nil, lets rewrite reuse a point's label values.
	shape *shape
}

// enricher computes and caches enrichments.
type enricher struct {
	parser   topology.Parser
	meta     *metadataSources
	capacity int
	seed     maphash.Seed

	mu    sync.Mutex
	cache map[uint64]*enrichment
}

func newEnricher(parser topology.Parser, meta *metadataSources, capacity int) *enricher {
	return &enricher{parser: parser, meta: meta, capacity: capacity, seed: maphash.MakeSeed(), cache: map[uint64]*enrichment{}}
}

// batchCache remembers the label sets of one batch without locking: a label
// set recurs once per DCGM field in every scrape.
type batchCache struct {
	byHash     map[uint64]*seen
	all        []*seen
	generation uint64
	cells      []pcommon.Value
}

// seen is one label set met in the current batch.
type seen struct {
	en *enrichment
	// points counts the batch's DCGM points with this label set, so the
	// incomplete reasons are counted once per label set, not once per point.
	points int64
	// group is where the label set's points go in the input resource being
	// regrouped (resource is its index + 1), so groups are looked up once
	// per label set and resource, not once per point.
	group    *group
	resource int
}

func (e *enricher) newBatchCache() *batchCache {
	return &batchCache{byHash: map[uint64]*seen{}, generation: e.meta.generation(), cells: newCells()}
}

// enrich returns the label set of a data point, with its enrichment.
// resourceCluster is the k8s.cluster.name of the point's resource, if any.
func (e *enricher) enrich(bc *batchCache, labels pcommon.Map, resourceCluster string) *seen {
	key := e.hash(labels, resourceCluster)
	s, ok := bc.byHash[key]
	switch {
	case !ok:
		s = &seen{en: e.shared(key, labels, resourceCluster, bc.generation)}
		bc.byHash[key] = s
	case s.en.matches(labels, resourceCluster):
		return s
	default:
		// Two label sets with one hash: the second is not cached.
		s = &seen{en: e.compute(labels, resourceCluster, bc.generation)}
	}
	bc.all = append(bc.all, s)
	return s
}

// countIncomplete adds the incomplete reasons of every label set of the batch,
// once per point.
func (bc *batchCache) countIncomplete(counts *batchCounts) {
	for _, s := range bc.all {
		if s.en.invalid != nil {
			counts.refused += s.points
			counts.invalid = s.en.invalid
			continue
		}
		for _, r := range s.en.incomplete {
			counts.incomplete[r] += s.points
		}
	}
}

func (e *enricher) shared(key uint64, labels pcommon.Map, resourceCluster string, gen uint64) *enrichment {
	e.mu.Lock()
	cached, ok := e.cache[key]
	e.mu.Unlock()
	if ok && cached.generation == gen {
		if cached.matches(labels, resourceCluster) {
			return cached
		}
		// Two label sets with one hash: the second is not cached.
		return e.compute(labels, resourceCluster, gen)
	}
	en := e.compute(labels, resourceCluster, gen)
	e.mu.Lock()
	if len(e.cache) >= e.capacity {
		// Cheaper than LRU bookkeeping on every point; the working set of a
		// cluster refills in one scrape.
		clear(e.cache)
	}
	e.cache[key] = en
	e.mu.Unlock()
	return en
}

// hash identifies a label set: one maphash over the concatenated labels is
// several times cheaper than feeding the hash string by string.
func (e *enricher) hash(labels pcommon.Map, resourceCluster string) uint64 {
	var stack [1024]byte
	buf := append(stack[:0], resourceCluster...)
	for k, v := range labels.All() {
		buf = append(buf, 0)
		buf = append(buf, k...)
		buf = append(buf, 1)
		if v.Type() == pcommon.ValueTypeStr {
			buf = append(buf, v.Str()...)
		} else {
			buf = append(buf, v.AsString()...)
		}
	}
	return maphash.Bytes(e.seed, buf)
}

func (e *enricher) compute(labels pcommon.Map, resourceCluster string, gen uint64) *enrichment {
	parser := e.parser
	if resourceCluster != "" {
		parser.DefaultCluster = resourceCluster
	}
	ent := parser.Parse(mapLabels(labels))
	en := &enrichment{generation: gen, labels: snapshot(labels), resourceCluster: resourceCluster}
	if err := ent.ValidateNames(); err != nil {
		en.invalid = err
		return en
	}

	// DCGM puts the exporter pod's name in Hostname when NODE_NAME is unset:
	// find the pod's node in the metadata sources.
	if _, hasNodeLabel := labels.Get("node"); !hasNodeLabel && ent.Node != "" {
		if node, ok := e.meta.podNode(ent.Cluster, ent.Node); ok {
			ent.Node = node
		} else if topology.IsExporterPod(ent.Node) {
			en.nodeUnresolved = true
			en.incomplete = append(en.incomplete, reasonNodeUnresolved)
		}
	}
	if ent.Cluster == "" {
		en.incomplete = append(en.incomplete, reasonNoCluster)
	}
	if ent.Node == "" {
		en.incomplete = append(en.incomplete, reasonNoNode)
	}
	if ent.GPUUUID == "" && ent.GPUIndex == "" {
		en.incomplete = append(en.incomplete, reasonNoGPUIdentity)
	}
	en.entity = ent

	attrs := pcommon.NewMap()
	attrs.EnsureCapacity(labels.Len() + 8)
	for k, v := range labels.All() {
		if !parser.IsTopologyLabel(k) {
			v.CopyTo(attrs.PutEmpty(k))
		}
	}
	ent.PutGPU(attrs)
	attrs.PutBool(topology.AttrGPUAllocated, ent.Allocated())
	if fraction, ok := topology.SliceFraction(ent.GPUModel, ent.MIGProfile); ok {
		attrs.PutDouble(topology.AttrSliceFraction, fraction)
	} else {
		en.incomplete = append(en.incomplete, reasonUnknownMIGProfile)
	}
	topology.PutNonEmpty(attrs, topology.AttrNGSILDID, ent.NGSILDID())
	en.attrs = attrs
	en.shape = newShape(attrs, en.labels)
	return en
}
