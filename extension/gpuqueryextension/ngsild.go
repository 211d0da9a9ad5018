package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// ldEntity is an NGSI-LD entity (ETSI GS CIM 009): id, type, and its
// Properties and Relationships by term.
type ldEntity map[string]any

// ldContextLink is the JSON-LD Link header of an application/json NGSI-LD body.
const ldContextRel = `; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`

func ngsiLDContext() ([]byte, error) { return topology.RenderNGSILDContext() }

func newEntity(id, typ string) ldEntity { return ldEntity{"id": id, "type": typ} }

// prop sets a Property observed at the entity's last sample; empty strings
// and nil pointers are left out (NGSI-LD has no null Property).
func (e ldEntity) prop(term string, value any, observedAt time.Time) {
	switch v := value.(type) {
	case string:
		if v == "" {
			return
		}
	case *float64:
		if v == nil {
			return
		}
		value = *v
	case []string:
		if len(v) == 0 {
			return
		}
	}
	p := map[string]any{"type": "Property", "value": value}
	if !observedAt.IsZero() {
		p["observedAt"] = observedAt.UTC().Format(time.RFC3339Nano)
	}
	e[term] = p
}

func (e ldEntity) rel(term, object string) {
	if object != "" {
		e[term] = map[string]any{"type": "Relationship", "object": object}
	}
}

func (a *api) hubsLD(_ context.Context, _ gpustore.Scope, hubs []gpustore.Hub) ([]ldEntity, error) {
	out := make([]ldEntity, 0, len(hubs))
	for _, h := range hubs {
		e := newEntity(topology.NGSILDHubID(h.Name), topology.NGSILDTypeHub)
		e.prop(topology.AttrHubName, h.Name, h.LastSeen)
		e.prop(topology.NGSILDClusterCount, h.Clusters, h.LastSeen)
		e.prop(topology.NGSILDGPUCount, h.GPUs, h.LastSeen)
		out = append(out, e)
	}
	return out, nil
}

func (a *api) clustersLD(_ context.Context, _ gpustore.Scope, cs []gpustore.Cluster) ([]ldEntity, error) {
	out := make([]ldEntity, 0, len(cs))
	for _, c := range cs {
		e := newEntity(topology.NGSILDClusterID(c.Name), topology.NGSILDTypeCluster)
		e.prop(topology.AttrK8sClusterName, c.Name, c.LastSeen)
		e.prop(topology.NGSILDNodeCount, c.Nodes, c.LastSeen)
		e.prop(topology.NGSILDGPUCount, c.GPUs, c.LastSeen)
		e.prop(topology.NGSILDSliceCount, c.Slices, c.LastSeen)
		e.rel(topology.NGSILDRelHub, topology.NGSILDHubID(c.Hub))
		out = append(out, e)
	}
	return out, nil
}

func (a *api) nodesLD(_ context.Context, _ gpustore.Scope, ns []gpustore.Node) ([]ldEntity, error) {
	out := make([]ldEntity, 0, len(ns))
	for _, n := range ns {
		e := newEntity(topology.NGSILDNodeID(n.Cluster, n.Name), topology.NGSILDTypeNode)
		e.prop(topology.AttrK8sNodeName, n.Name, n.LastSeen)
		e.prop(topology.NGSILDGPUCount, n.GPUs, n.LastSeen)
		e.prop(topology.NGSILDSliceCount, n.Slices, n.LastSeen)
		e.prop(topology.AttrHwModel, n.Models, n.LastSeen)
		e.rel(topology.NGSILDRelCluster, topology.NGSILDClusterID(n.Cluster))
		out = append(out, e)
	}
	return out, nil
}

func holderProps(e ldEntity, h *gpustore.Holder, at time.Time) {
	if h != nil {
		e.prop(topology.AttrK8sNamespaceName, h.Namespace, at)
		e.prop(topology.AttrK8sPodName, h.Pod, at)
	}
}

func (a *api) devicesLD(_ context.Context, _ gpustore.Scope, ds []gpustore.Device) ([]ldEntity, error) {
	out := make([]ldEntity, 0, len(ds))
	for _, d := range ds {
		e := newEntity(topology.NGSILDDeviceID(d.Cluster, d.Node, d.Index), topology.NGSILDTypeDevice)
		e.prop(topology.AttrHwID, d.ID, d.LastSeen)
		e.prop(topology.AttrNvidiaGPUIndex, d.Index, d.LastSeen)
		e.prop(topology.AttrHwModel, d.Model, d.LastSeen)
		e.prop(topology.NGSILDMIGEnabled, d.MIG, d.LastSeen)
		e.prop(topology.NGSILDSliceCount, d.Slices, d.LastSeen)
		e.prop(topology.NGSILDGPUState, string(d.State), d.LastSeen)
		e.prop(topology.NGSILDLastXID, d.LastXID, d.LastSeen)
		holderProps(e, d.Holder, d.LastSeen)
		e.rel(topology.NGSILDRelNode, topology.NGSILDNodeID(d.Cluster, d.Node))
		out = append(out, e)
	}
	return out, nil
}

// slicesLD needs each slice's GPU index for its id and its device's: the
// devices of the slices' nodes are read once per node.
func (a *api) slicesLD(ctx context.Context, scope gpustore.Scope, ss []gpustore.Slice) ([]ldEntity, error) {
	index := map[string]string{}
	read := map[[2]string]bool{}
	for _, s := range ss {
		key := [2]string{s.Cluster, s.Node}
		if read[key] {
			continue
		}
		read[key] = true
		ds, err := a.reader.Devices(ctx, gpustore.Filter{Scope: scope, Hub: s.Hub, Cluster: s.Cluster, Node: s.Node, Limit: gpustore.MaxLimit})
		if err != nil {
			return nil, wrapStore("devices", err)
		}
		for _, d := range ds {
			index[d.ID] = d.Index
		}
	}
	out := make([]ldEntity, 0, len(ss))
	for _, s := range ss {
		idx, ok := index[s.Parent]
		_, gi, _ := strings.Cut(s.ID, "/")
		if !ok || topology.ValidateName(topology.KindGPUIndex, gi) != nil {
			continue // no id can be built for it: its GPU is not readable
		}
		e := newEntity(topology.NGSILDSliceID(s.Cluster, s.Node, idx, gi), topology.NGSILDTypeSlice)
		e.prop(topology.AttrHwID, s.ID, s.LastSeen)
		e.prop(topology.AttrNvidiaMIGProfile, s.Profile, s.LastSeen)
		e.prop(topology.AttrSliceFraction, s.Fraction, s.LastSeen)
		e.prop(topology.AttrHwModel, s.Model, s.LastSeen)
		e.prop(topology.NGSILDGPUState, string(s.State), s.LastSeen)
		holderProps(e, s.Holder, s.LastSeen)
		e.rel(topology.NGSILDRelDevice, topology.NGSILDDeviceID(s.Cluster, s.Node, idx))
		out = append(out, e)
	}
	return out, nil
}

func (a *api) projectsLD(_ context.Context, _ gpustore.Scope, ps []gpustore.Project) ([]ldEntity, error) {
	out := make([]ldEntity, 0, len(ps))
	for _, p := range ps {
		e := newEntity(topology.NGSILDProjectID(p.Cluster, p.Namespace), topology.NGSILDTypeProject)
		e.prop(topology.AttrK8sNamespaceName, p.Namespace, p.LastSeen)
		e.prop(topology.AttrProjectID, p.ID, p.LastSeen)
		e.prop(topology.AttrProjectName, p.Name, p.LastSeen)
		e.prop(topology.AttrProjectPI, p.PI, p.LastSeen)
		e.prop(topology.AttrProjectFieldOfScience, p.FieldOfScience, p.LastSeen)
		e.prop(topology.AttrProjectGPUQuota, p.GPUQuota, p.LastSeen)
		e.prop(topology.AttrProjectGPUAllocation, p.GPUAllocation, p.LastSeen)
		e.prop(topology.AttrProjectGPURequests, p.GPURequests, p.LastSeen)
		e.rel(topology.NGSILDRelCluster, topology.NGSILDClusterID(p.Cluster))
		out = append(out, e)
	}
	return out, nil
}

// writeNGSILD writes entities: application/ld+json with the @context inline
// (each entity of an array carries it, as CIM 009 6.3.5 asks).
func writeNGSILD(w http.ResponseWriter, r *http.Request, v any, ld bool) error {
	ctxURL := contextURL(r)
	if ld {
		switch e := v.(type) {
		case ldEntity:
			e["@context"] = ctxURL
		case []ldEntity:
			for _, x := range e {
				x["@context"] = ctxURL
			}
		}
		body, err := json.Marshal(v)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", mediaLDJSON)
		_, err = w.Write(body)
		return ignoreWriteErr(err)
	}
	w.Header().Add("Link", "<"+ctxURL+">"+ldContextRel)
	return writeJSON(w, http.StatusOK, v)
}

// contextURL is the absolute URL of the served @context: a JSON-LD
// processor resolves a relative one against the document, which an API
// client may not know.
func contextURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + topology.NGSILDContextPath
}
