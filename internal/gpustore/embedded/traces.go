package embedded

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// startSuffix marks the span the Alertmanager receiver emits when a session
// opens; its parent span id is the id the final span will have.
const startSuffix = ".start"

type sessionRow struct {
	traceID, spanID, kind                              string
	hub, cluster, node, namespace, pod, device, parent string
	profile                                            string
	fraction                                           float64
	start, end                                         int64
	final                                              bool
}

// spanAttr reads a span attribute, else the resource's.
func spanAttr(span, res pcommon.Map, k string) string {
	if v := attrStr(span, k); v != "" {
		return v
	}
	return attrStr(res, k)
}

// WriteTraces stores the usage sessions (gpu.usage, gpu.idle and their
// .start spans), idempotent on (trace id, session span id).
func (s *Store) WriteTraces(ctx context.Context, td ptrace.Traces) error {
	var rows []sessionRow
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		res := rss.At(i).Resource().Attributes()
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				if r, ok := sessionOf(spans.At(k), res); ok {
					rows = append(rows, r)
				}
			}
		}
	}
	if len(rows) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("write traces: %w", errClosed)
	}
	if err := s.writeSessions(ctx, rows); err != nil {
		return writeError("write traces", err)
	}
	return nil
}

func sessionOf(sp ptrace.Span, res pcommon.Map) (sessionRow, bool) {
	name := sp.Name()
	kind, final := name, true
	if strings.HasSuffix(name, startSuffix) {
		kind, final = strings.TrimSuffix(name, startSuffix), false
	}
	if kind != string(gpustore.SessionUsage) && kind != string(gpustore.SessionIdle) {
		return sessionRow{}, false
	}
	id := sp.SpanID()
	if !final && !sp.ParentSpanID().IsEmpty() {
		id = sp.ParentSpanID()
	}
	if sp.TraceID().IsEmpty() || id.IsEmpty() {
		return sessionRow{}, false
	}
	a := sp.Attributes()
	get := func(k string) string { return spanAttr(a, res, k) }
	r := sessionRow{
		traceID: sp.TraceID().String(), spanID: id.String(), kind: kind,
		hub: get(topology.AttrHubName), cluster: get(topology.AttrK8sClusterName), node: get(topology.AttrK8sNodeName),
		namespace: get(topology.AttrK8sNamespaceName), pod: get(topology.AttrK8sPodName),
		device: get(topology.AttrHwID), parent: get(topology.AttrHwParent), profile: get(topology.AttrNvidiaMIGProfile),
		start: nanos(sp.StartTimestamp()), final: final,
	}
	// The receiver's spans carry no fraction: derive it as the gpumodel
	// processor does (internal/topology), 1 when unknown.
	r.fraction = 1
	if f := attrFloat(a, topology.AttrSliceFraction); f != nil {
		r.fraction = *f
	} else if f, ok := topology.SliceFraction(get(topology.AttrHwModel), r.profile); ok {
		r.fraction = f
	}
	if final {
		r.end = nanos(sp.EndTimestamp())
	}
	return r, true
}

func (s *Store) writeSessions(ctx context.Context, rows []sessionRow) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	// A final span completes the session (whether its start span came
	// first, later or never); a start span only opens one not yet stored.
	st, err := tx.PrepareContext(ctx, `INSERT INTO sessions (trace_id, span_id, kind, hub, cluster, node, namespace,
		pod, device, parent, profile, fraction, start, end) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT DO UPDATE SET kind = excluded.kind, hub = excluded.hub, cluster = excluded.cluster,
		node = excluded.node, namespace = excluded.namespace, pod = excluded.pod, device = excluded.device,
		parent = excluded.parent, profile = excluded.profile, fraction = excluded.fraction,
		start = excluded.start, end = excluded.end
		WHERE excluded.end IS NOT NULL`)
	if err != nil {
		return err
	}
	for _, r := range rows {
		var end any
		if r.final {
			end = r.end
		}
		if _, err := st.ExecContext(ctx, r.traceID, r.spanID, r.kind, r.hub, r.cluster, r.node, r.namespace, r.pod,
			r.device, r.parent, r.profile, r.fraction, r.start, end); err != nil {
			return err
		}
	}
	return tx.Commit()
}
