package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

import (
	"context"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor/internal/metadata"
)

type gpuModelProcessor struct {
	cfg       *Config
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder

	meta     *metadataSources
	file     *fileSource
	ksm      *ksmSource
	k8s      *kubernetesSource
	enricher *enricher
}

func newGPUModelProcessor(set processor.Settings, cfg *Config) (*gpuModelProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	parser := topology.Parser{ClusterLabel: cfg.Cluster.Label, DefaultCluster: cfg.Cluster.Name, HubCluster: cfg.Cluster.HubCluster}
	p := &gpuModelProcessor{cfg: cfg, logger: set.Logger, telemetry: tb, meta: &metadataSources{}}
	if cfg.Metadata.File.Path != "" {
		p.file = newFileSource(cfg.Metadata.File.Path, cfg.Metadata.File.ReloadInterval,
			func(n int) {
				tb.ProcessorGpumodelMetadataUpdates.Add(context.Background(), 1, withSourceFile)
				set.Logger.Info("Loaded project metadata file", zap.String("path", cfg.Metadata.File.Path), zap.Int("projects", n))
			},
			func(err error) {
				tb.ProcessorGpumodelMetadataErrors.Add(context.Background(), 1, withSourceFile)
				set.Logger.Warn("Project metadata file not reloaded; keeping the last good content", zap.Error(err))
			})
		p.meta.sources = append(p.meta.sources, p.file)
	}
	if cfg.Metadata.Kubernetes.Enabled {
		cluster := cfg.Metadata.Kubernetes.Cluster
		if cluster == "" {
			cluster = cfg.Cluster.Name
		}
		p.k8s = newKubernetesSource(cfg.Metadata.Kubernetes.AuthType, cluster, cfg.Metadata.Kubernetes.Pods, set.Logger)
		p.meta.sources = append(p.meta.sources, p.k8s)
	}
	if cfg.Metadata.KubeStateMetrics.Enabled {
		p.ksm = newKSMSource(parser)
		p.meta.sources = append(p.meta.sources, p.ksm)
	}
	p.enricher = newEnricher(parser, p.meta, cfg.CacheSize)
	return p, nil
}

func (p *gpuModelProcessor) start(ctx context.Context, _ component.Host) error {
	if p.file != nil {
		if err := p.file.start(); err != nil {
			return err
		}
	}
	if p.k8s != nil {
		if err := p.k8s.start(ctx); err != nil {
			p.telemetry.ProcessorGpumodelMetadataErrors.Add(ctx, 1, withSourceK8s)
			return err
		}
		p.telemetry.ProcessorGpumodelMetadataUpdates.Add(ctx, 1, withSourceK8s)
	}
	return nil
}

func (p *gpuModelProcessor) shutdown(context.Context) error {
	if p.file != nil {
		p.file.shutdown()
	}
	if p.k8s != nil {
		p.k8s.shutdown()
	}
	p.telemetry.Shutdown()
	return nil
}

// isDCGMSeries recognizes DCGM exporter metrics, in both namespaces.
func isDCGMSeries(name string) bool {
	return strings.HasPrefix(name, "DCGM_FI_") || strings.HasPrefix(name, "dcgm_fi_")
}

// processMetrics regroups DCGM data points so each (cluster, node, namespace,
// pod, container) has its own resource, replaces their raw labels with the
// model's attributes, and passes every other metric unchanged.
func (p *gpuModelProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	rms := md.ResourceMetrics()
	if p.ksm != nil {
		p.learn(ctx, rms)
	}
	p.record(ctx, p.enrichBatch(rms))
	return md, nil
}

// enrichBatch regroups and enriches the DCGM data points of one batch in place
// and returns what it counted.
func (p *gpuModelProcessor) enrichBatch(rms pmetric.ResourceMetricsSlice) batchCounts {
	counts := batchCounts{incomplete: map[string]int64{}}
	bc := p.enricher.newBatchCache()
	original := rms.Len()
	for i := 0; i < original; i++ {
		p.regroup(rms, rms.At(i), i+1, bc, &counts)
	}
	bc.countIncomplete(&counts)
	rms.RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		for _, sm := range rm.ScopeMetrics().All() {
			if sm.Metrics().Len() > 0 {
				return false
			}
		}
		return true
	})
	return counts
}

type batchCounts struct {
	enriched   int64
	incomplete map[string]int64
	// refused points, and the last reason seen (for the log).
	refused int64
	invalid error
}

func (p *gpuModelProcessor) learn(ctx context.Context, rms pmetric.ResourceMetricsSlice) {
	learned := 0
	for _, rm := range rms.All() {
		cluster := resourceCluster(rm.Resource())
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if isKSMSeries(m.Name()) {
					learned += p.ksm.learn(m, cluster)
				}
			}
		}
	}
	if learned > 0 {
		p.ksm.expire()
		p.telemetry.ProcessorGpumodelMetadataUpdates.Add(ctx, int64(learned), withSourceKSM)
	}
}

func resourceCluster(r pcommon.Resource) string {
	if v, ok := r.Attributes().Get(topology.AttrK8sClusterName); ok {
		return v.Str()
	}
	return ""
}

// setResource puts the topology position and the project's metadata on a
// group's resource.
func (p *gpuModelProcessor) setResource(attrs pcommon.Map, e topology.Entity, nodeUnresolved bool) {
	var proj project
	known := false
	if e.Namespace != "" {
		proj, known = p.meta.project(projectKey{cluster: e.Cluster, namespace: e.Namespace})
	}
	// Room for what is put below: hub, workload (6), unresolved flag, Keycloak
	// resource, then the project's 7.
	added := 9
	if known {
		added += 7
	}
	attrs.EnsureCapacity(attrs.Len() + added)
	topology.PutNonEmpty(attrs, topology.AttrHubName, p.cfg.Hub)
	e.PutWorkload(attrs)
	if nodeUnresolved {
		attrs.PutBool(topology.AttrNodeUnresolved, true)
	}
	topology.PutNonEmpty(attrs, topology.AttrKeycloakResource, e.Resource(p.cfg.Hub))
	if !known {
		return
	}
	topology.PutNonEmpty(attrs, topology.AttrProjectID, proj.ID)
	topology.PutNonEmpty(attrs, topology.AttrProjectName, proj.Name)
	topology.PutNonEmpty(attrs, topology.AttrProjectPI, proj.PI)
	topology.PutNonEmpty(attrs, topology.AttrProjectFieldOfScience, proj.FieldOfScience)
	if proj.Allocation.set {
		attrs.PutDouble(topology.AttrProjectGPUAllocation, proj.Allocation.value)
	}
	if proj.Quota.set {
		attrs.PutDouble(topology.AttrProjectGPUQuota, proj.Quota.value)
	}
	if proj.Requests.set {
		attrs.PutDouble(topology.AttrProjectGPURequests, proj.Requests.value)
	}
}

func (p *gpuModelProcessor) record(ctx context.Context, counts batchCounts) {
	if enriched := counts.enriched - counts.refused; enriched > 0 {
		p.telemetry.ProcessorGpumodelDatapointsEnriched.Add(ctx, enriched)
	}
	if counts.refused > 0 {
		p.telemetry.ProcessorGpumodelDatapointsRefused.Add(ctx, counts.refused, withReasonInvalidName)
		p.logger.Warn("DCGM data points refused: a name of their topology is not a Kubernetes name",
			zap.Int64("points", counts.refused), zap.Error(counts.invalid))
	}
	for reason, n := range counts.incomplete {
		p.telemetry.ProcessorGpumodelDatapointsIncomplete.Add(ctx, n, metric.WithAttributes(attribute.String("reason", reason)))
	}
}

var withReasonInvalidName = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "invalid_name")))

var (
	withSourceFile = metric.WithAttributeSet(attribute.NewSet(attribute.String("source", "file")))
	withSourceKSM  = metric.WithAttributeSet(attribute.NewSet(attribute.String("source", "kube_state_metrics")))
	withSourceK8s  = metric.WithAttributeSet(attribute.NewSet(attribute.String("source", "kubernetes")))
)
