package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// maxIDs bounds id=a,b,c of one NGSI-LD query: each costs a read.
const maxIDs = 100

// queryableAttrs are the attributes an NGSI-LD q may test (attr==value),
// the filters a store applies.
var queryableAttrs = []string{
	topology.AttrHubName, topology.AttrK8sClusterName, topology.AttrK8sNodeName, topology.AttrK8sNamespaceName, topology.AttrHwID,
}

// ngsiEntities serves /ngsi-ld/v1/entities?type=&id=&q=&limit=&offset=.
func (a *api) ngsiEntities(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := rq.query
	typ := q.get(paramType)
	if q.has(paramType) && !slices.Contains(topology.NGSILDTypes, typ) {
		return badParam(paramType, "unknown type (types: %s)", strings.Join(topology.NGSILDTypes, ", "))
	}
	f := gpustore.Filter{Scope: rq.scope}
	var err error
	if f.Limit, err = q.intParam(paramLimit, defaultLimit, 1, gpustore.MaxLimit); err != nil {
		return err
	}
	if f.Offset, err = q.intParam(paramOffset, 0, 0, maxOffset); err != nil {
		return err
	}
	if err := parseQ(q.get(paramQ), &f); err != nil {
		return err
	}
	ld := rq.mediaType == mediaLDJSON
	if q.has(paramID) {
		ids := strings.Split(q.get(paramID), ",")
		if len(ids) > maxIDs {
			return badParam(paramID, "at most %d ids", maxIDs)
		}
		var out []ldEntity
		for _, id := range ids {
			ref, err := topology.ParseNGSILDID(id)
			if err != nil {
				return badParam(paramID, "%v", err)
			}
			if typ != "" && ref.Type != typ {
				continue
			}
			e, err := a.resolve(r.Context(), rq.scope, ref)
			if err != nil {
				if isNotFound(err) {
					continue
				}
				return err
			}
			out = append(out, e)
		}
		out = out[min(f.Offset, len(out)):]
		out = out[:min(f.Limit, len(out))]
		return writeNGSILD(w, r, nonNil(out), ld)
	}
	if typ == "" {
		return badParam(paramType, "type or id is required")
	}
	out, err := a.listLD(r.Context(), typ, f)
	if err != nil {
		return err
	}
	if len(out) >= f.Limit {
		w.Header().Add("Link", "<"+nextURL(r, f.Limit, f.Offset)+`>; rel="next"`)
	}
	return writeNGSILD(w, r, nonNil(out), ld)
}

func nonNil(es []ldEntity) []ldEntity {
	if es == nil {
		return []ldEntity{}
	}
	return es
}

func isNotFound(err error) bool { return errors.Is(err, gpustore.ErrNotFound) }

// ngsiEntity serves /ngsi-ld/v1/entities/{id}.
func (a *api) ngsiEntity(w http.ResponseWriter, r *http.Request, rq *request) error {
	ref, err := topology.ParseNGSILDID(r.PathValue(paramID))
	if err != nil {
		return badParam(paramID, "%v", err)
	}
	e, err := a.resolve(r.Context(), rq.scope, ref)
	if err != nil {
		return err
	}
	return writeNGSILD(w, r, e, rq.mediaType == mediaLDJSON)
}

// parseQ reads NGSI-LD's simple q: attr==value terms joined by ';'.
func parseQ(s string, f *gpustore.Filter) error {
	if s == "" {
		return nil
	}
	for _, term := range strings.Split(s, ";") {
		attr, value, ok := strings.Cut(term, "==")
		if !ok {
			return badParam(paramQ, "each term must be attribute==value (terms joined by ';')")
		}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		var err error
		switch attr {
		case topology.AttrHubName:
			err, f.Hub = topology.ValidateName(topology.KindHub, value), value
		case topology.AttrK8sClusterName:
			err, f.Cluster = topology.ValidateName(topology.KindCluster, value), value
		case topology.AttrK8sNodeName:
			err, f.Node = topology.ValidateName(topology.KindNode, value), value
		case topology.AttrK8sNamespaceName:
			err, f.Namespace = topology.ValidateName(topology.KindNamespace, value), value
		case topology.AttrHwID:
			if !devicePattern.MatchString(value) {
				return badParam(paramQ, "%s must be a GPU UUID, optionally /<GPU instance id>", attr)
			}
			f.Device = value
		default:
			return badParam(paramQ, "attribute %q cannot be queried (queryable: %s)", truncate(attr), strings.Join(queryableAttrs, ", "))
		}
		if err != nil {
			return badParam(paramQ, "%v", err)
		}
	}
	return nil
}

// listLD reads one page of entities of a type.
func (a *api) listLD(ctx context.Context, typ string, f gpustore.Filter) ([]ldEntity, error) {
	switch typ {
	case topology.NGSILDTypeHub:
		return readLD(ctx, f, "hubs", a.reader.Hubs, a.hubsLD)
	case topology.NGSILDTypeCluster:
		return readLD(ctx, f, "clusters", a.reader.Clusters, a.clustersLD)
	case topology.NGSILDTypeNode:
		return readLD(ctx, f, "nodes", a.reader.Nodes, a.nodesLD)
	case topology.NGSILDTypeDevice:
		return readLD(ctx, f, "devices", a.reader.Devices, a.devicesLD)
	case topology.NGSILDTypeSlice:
		return readLD(ctx, f, "slices", a.reader.Slices, a.slicesLD)
	default:
		return readLD(ctx, f, "projects", a.reader.Projects, a.projectsLD)
	}
}

func readLD[T any](ctx context.Context, f gpustore.Filter, op string, read func(context.Context, gpustore.Filter) ([]T, error), ld toLD[T]) ([]ldEntity, error) {
	items, err := read(ctx, f)
	if err != nil {
		return nil, wrapStore(op, err)
	}
	return ld(ctx, f.Scope, items[:min(len(items), f.Limit)])
}

// resolve reads the entity an id names, within the scope.
func (a *api) resolve(ctx context.Context, scope gpustore.Scope, ref topology.NGSILDRef) (ldEntity, error) {
	f := gpustore.Filter{Scope: scope, Hub: ref.Hub, Cluster: ref.Cluster, Node: ref.Node, Namespace: ref.Namespace, Limit: gpustore.MaxLimit}
	var (
		out []ldEntity
		err error
	)
	switch ref.Type {
	case topology.NGSILDTypeHub:
		out, err = findLD(ctx, f, "hubs", a.reader.Hubs, a.hubsLD, func(h gpustore.Hub) bool { return h.Name == ref.Hub })
	case topology.NGSILDTypeCluster:
		out, err = findLD(ctx, f, "clusters", a.reader.Clusters, a.clustersLD, func(c gpustore.Cluster) bool { return c.Name == ref.Cluster })
	case topology.NGSILDTypeNode:
		out, err = findLD(ctx, f, "nodes", a.reader.Nodes, a.nodesLD, func(n gpustore.Node) bool { return n.Cluster == ref.Cluster && n.Name == ref.Node })
	case topology.NGSILDTypeDevice:
		out, err = findLD(ctx, f, "devices", a.reader.Devices, a.devicesLD, func(d gpustore.Device) bool {
			return d.Cluster == ref.Cluster && d.Node == ref.Node && d.Index == ref.Index
		})
	case topology.NGSILDTypeSlice:
		id := ""
		ds, derr := a.reader.Devices(ctx, f)
		if derr != nil {
			return nil, wrapStore("devices", derr)
		}
		for _, d := range ds {
			if d.Cluster == ref.Cluster && d.Node == ref.Node && d.Index == ref.Index {
				id = d.ID + "/" + ref.GPUInstance
			}
		}
		if id == "" {
			return nil, gpustore.ErrNotFound
		}
		f.Device = id
		out, err = findLD(ctx, f, "slices", a.reader.Slices, a.slicesLD, func(s gpustore.Slice) bool { return s.ID == id })
	default:
		out, err = findLD(ctx, f, "projects", a.reader.Projects, a.projectsLD, func(p gpustore.Project) bool {
			return p.Cluster == ref.Cluster && p.Namespace == ref.Namespace
		})
	}
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, gpustore.ErrNotFound
	}
	return out[0], nil
}

func findLD[T any](ctx context.Context, f gpustore.Filter, op string, read func(context.Context, gpustore.Filter) ([]T, error), ld toLD[T], match func(T) bool) ([]ldEntity, error) {
	items, err := read(ctx, f)
	if err != nil {
		return nil, wrapStore(op, err)
	}
	items = keep(items, match)
	if len(items) == 0 {
		return nil, nil
	}
	return ld(ctx, f.Scope, items[:1])
}
