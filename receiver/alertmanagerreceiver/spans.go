package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

const (
	labelAlertName = "alertname"
	labelSeverity  = "severity"
	// fallbackSpanName names spans of alerts that have no alertname.
	fallbackSpanName = "alertmanager.alert"
	// startSpanSuffix names the marker span emitted when a session starts.
	startSpanSuffix = ".start"
	scopeName       = "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"
)

// spanBuilder turns alerts into spans, one resource per (cluster, namespace, pod).
type spanBuilder struct {
	serviceName string
	hub         string
	spanNames   map[string]string
	parser      topology.Parser
	version     string
}

// spanBatch holds the spans of one notification; each request builds its own,
// so notifications are built concurrently.
type spanBatch struct {
	*spanBuilder
	traces    ptrace.Traces
	resources map[resourceKey]ptrace.SpanSlice
	count     int
}

type resourceKey struct{ cluster, namespace, pod string }

func newSpanBuilder(cfg *Config, version string) *spanBuilder {
	return &spanBuilder{
		serviceName: cfg.ServiceName,
		hub:         cfg.Hub,
		spanNames:   cfg.SpanNames,
		parser: topology.Parser{
			ClusterLabel:   cfg.ClusterLabel,
			DefaultCluster: cfg.Cluster,
			HubCluster:     cfg.HubCluster,
		},
		version: version,
	}
}

// newBatch starts the spans of one notification.
func (b *spanBuilder) newBatch() *spanBatch {
	return &spanBatch{spanBuilder: b, traces: ptrace.NewTraces(), resources: map[resourceKey]ptrace.SpanSlice{}}
}

// spanName is the configured name for the alert, or its alertname.
func (b *spanBuilder) spanName(a *alert) string {
	alertName := a.Labels[labelAlertName]
	if name, ok := b.spanNames[alertName]; ok {
		return name
	}
	if alertName == "" {
		return fallbackSpanName
	}
	return alertName
}

// addStart adds the short marker span of a session that started: it sits
// under the session span's ID at startsAt, so a running session is searchable.
func (b *spanBatch) addStart(n *notification, a *alert, acc accepted, ids sessionIDs) {
	span := b.spansFor(acc.entity).AppendEmpty()
	b.count++
	span.SetTraceID(ids.trace)
	span.SetSpanID(ids.start)
	span.SetParentSpanID(ids.session)
	span.SetName(b.spanName(a) + startSpanSuffix)
	span.SetKind(ptrace.SpanKindInternal)
	ts := pcommon.NewTimestampFromTime(sessionStart(a))
	span.SetStartTimestamp(ts)
	span.SetEndTimestamp(ts)
	b.putAttributes(span.Attributes(), n, a, acc, statusFiring)
}

// addSession adds the span of a whole session, from startsAt to endsAt.
func (b *spanBatch) addSession(n *notification, a *alert, acc accepted, ids sessionIDs) {
	span := b.spansFor(acc.entity).AppendEmpty()
	b.count++
	span.SetTraceID(ids.trace)
	span.SetSpanID(ids.session)
	span.SetName(b.spanName(a))
	span.SetKind(ptrace.SpanKindInternal)
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(sessionStart(a)))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(a.EndsAt))
	b.putAttributes(span.Attributes(), n, a, acc, statusResolved)
}

func (b *spanBatch) spansFor(e topology.Entity) ptrace.SpanSlice {
	key := resourceKey{cluster: e.Cluster, namespace: e.Namespace, pod: e.Pod}
	if spans, ok := b.resources[key]; ok {
		return spans
	}
	rs := b.traces.ResourceSpans().AppendEmpty()
	attrs := rs.Resource().Attributes()
	attrs.PutStr("service.name", b.serviceName)
	topology.PutNonEmpty(attrs, topology.AttrK8sClusterName, e.Cluster)
	topology.PutNonEmpty(attrs, topology.AttrK8sNamespaceName, e.Namespace)
	topology.PutNonEmpty(attrs, topology.AttrK8sPodName, e.Pod)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(scopeName)
	ss.Scope().SetVersion(b.version)
	b.resources[key] = ss.Spans()
	return ss.Spans()
}

// putAttributes maps an alert into the shared topology vocabulary; labels
// without a topology meaning keep their name under alertmanager.label.
func (b *spanBuilder) putAttributes(attrs pcommon.Map, n *notification, a *alert, acc accepted, status string) {
	e := acc.entity
	// Each label becomes at most one attribute (topology labels often none),
	// plus a dozen fixed ones: one allocation, not several growths.
	attrs.EnsureCapacity(12 + len(a.Labels) + len(a.Annotations))
	e.PutWorkload(attrs)
	e.PutGPU(attrs)
	topology.PutNonEmpty(attrs, topology.AttrHubName, b.hub)
	topology.PutNonEmpty(attrs, topology.AttrKeycloakResource, acc.resource)

	topology.PutNonEmpty(attrs, topology.AttrAlertName, a.Labels[labelAlertName])
	topology.PutNonEmpty(attrs, topology.AttrAlertSeverity, a.Labels[labelSeverity])
	attrs.PutStr(topology.AttrAlertStatus, status)
	attrs.PutStr(topology.AttrAlertFingerprint, a.Fingerprint)
	topology.PutNonEmpty(attrs, topology.AttrAlertGeneratorURL, a.GeneratorURL)
	topology.PutNonEmpty(attrs, topology.AttrExternalURL, n.ExternalURL)
	topology.PutNonEmpty(attrs, topology.AttrReceiver, n.Receiver)
	topology.PutNonEmpty(attrs, topology.AttrGroupKey, n.GroupKey)
	for name, value := range a.Labels {
		if name == labelAlertName || name == labelSeverity || b.parser.IsTopologyLabel(name) {
			continue
		}
		attrs.PutStr(topology.AttrLabelPrefix+name, value)
	}
	for name, value := range a.Annotations {
		attrs.PutStr(topology.AttrAnnotationPrefix+name, value)
	}
}

// annotationActiveAt carries Prometheus' activeAt (Unix seconds), which the
// project's rules put on their alerts: Prometheus sends Alertmanager
// startsAt = the moment the alert fired, `for:` after the condition began.
const annotationActiveAt = "active_at"

// maxActiveAtLead bounds how far before startsAt an active_at is believed;
// no rule waits longer than this in `for:`.
const maxActiveAtLead = 7 * 24 * time.Hour

// sessionStart is when the session began: active_at when the alert carries a
// plausible one (not after startsAt, not absurdly earlier), else startsAt.
// The session's IDs stay derived from startsAt, Alertmanager's identity.
func sessionStart(a *alert) time.Time {
	v, ok := a.Annotations[annotationActiveAt]
	if !ok {
		return a.StartsAt
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || secs <= 0 || secs > float64(maxSpanTime.Unix()) {
		return a.StartsAt
	}
	t := time.Unix(0, int64(secs*float64(time.Second))).UTC()
	if t.After(a.StartsAt) || a.StartsAt.Sub(t) > maxActiveAtLead {
		return a.StartsAt
	}
	return t
}
