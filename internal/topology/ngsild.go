package topology // import "github.com/nerc-project/ai-telemetry-collector/internal/topology"

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// NGSI-LD entity types of the GPU model (ETSI GS CIM 009). GpuDevice is the
// existing platform's type; the others follow its spelling.
const (
	NGSILDTypeHub     = "Hub"
	NGSILDTypeCluster = "Cluster"
	NGSILDTypeNode    = "GpuNode"
	NGSILDTypeDevice  = "GpuDevice"
	NGSILDTypeSlice   = "GpuSlice"
	NGSILDTypeProject = "Project"
)

// NGSILDTypes lists the entity types, in the model's order.
var NGSILDTypes = []string{
	NGSILDTypeHub, NGSILDTypeCluster, NGSILDTypeNode, NGSILDTypeDevice, NGSILDTypeSlice, NGSILDTypeProject,
}

// Properties and Relationships of the NGSI-LD entities that are not
// attributes of the vocabulary (those keep their attribute names: an entity
// of type GpuDevice has a k8s.node.name Property, and so on).
const (
	NGSILDClusterCount = "clusterCount"
	NGSILDNodeCount    = "nodeCount"
	NGSILDGPUCount     = "gpuCount"
	NGSILDSliceCount   = "sliceCount"
	NGSILDMIGEnabled   = "migEnabled"
	NGSILDGPUState     = "gpuState"
	NGSILDLastXID      = "lastXid"

	// Relationships: slice -> device -> node -> cluster -> hub, project -> cluster.
	NGSILDRelHub     = "inHub"
	NGSILDRelCluster = "inCluster"
	NGSILDRelNode    = "onNode"
	NGSILDRelDevice  = "partOfDevice"
)

// ngsildTerm is a term the entities use beyond Vocabulary.
type ngsildTerm struct {
	Term, Type, Description string
}

// ngsildTerms documents the terms above; the served @context is generated
// from them and Vocabulary.
var ngsildTerms = []ngsildTerm{
	{NGSILDClusterCount, "int", "Clusters of the hub."},
	{NGSILDNodeCount, "int", "GPU nodes of the cluster."},
	{NGSILDGPUCount, "int", "Whole GPUs seen."},
	{NGSILDSliceCount, "int", "MIG slices seen."},
	{NGSILDMIGEnabled, "boolean", "Whether the GPU is in MIG mode."},
	{NGSILDGPUState, "string", "in_use, idle, free or error, at the last sample."},
	{NGSILDLastXID, "int", "Last XID error the GPU reported (0: none)."},
	{NGSILDRelHub, "", "The hub a cluster belongs to."},
	{NGSILDRelCluster, "", "The cluster a node or project is on."},
	{NGSILDRelNode, "", "The node a GPU is on."},
	{NGSILDRelDevice, "", "The GPU a MIG slice is part of."},
}

// NGSI-LD core terms (ETSI GS CIM 009, the core @context), the subset the
// entities use: the served context carries them so that it expands without
// fetching the core context from the network.
const ngsildCoreIRI = "https://uri.etsi.org/ngsi-ld/"

// NGSILDContextPath is where the API serves the @context.
const NGSILDContextPath = "/ngsi-ld/v1/context.jsonld"

func ngsildPrefix(typ string) string { return "urn:ngsi-ld:" + typ + ":" }

// NGSILDHubID and the functions below build entity ids from validated names
// (a Kubernetes name holds no ':', so the ids parse back unambiguously).
func NGSILDHubID(hub string) string { return ngsildPrefix(NGSILDTypeHub) + hub }

// NGSILDClusterID is the id of a cluster.
func NGSILDClusterID(cluster string) string { return ngsildPrefix(NGSILDTypeCluster) + cluster }

// NGSILDNodeID is the id of a GPU node.
func NGSILDNodeID(cluster, node string) string {
	return ngsildPrefix(NGSILDTypeNode) + cluster + ":" + node
}

// NGSILDDeviceID is the id of a GPU, as Entity.NGSILDID spells it.
func NGSILDDeviceID(cluster, node, index string) string {
	return ngsildPrefix(NGSILDTypeDevice) + cluster + ":" + node + ":" + index
}

// NGSILDSliceID is the id of a MIG slice: its GPU's id and GPU instance id.
func NGSILDSliceID(cluster, node, index, gpuInstance string) string {
	return ngsildPrefix(NGSILDTypeSlice) + cluster + ":" + node + ":" + index + ":" + gpuInstance
}

// NGSILDProjectID is the id of a research project.
func NGSILDProjectID(cluster, namespace string) string {
	return ngsildPrefix(NGSILDTypeProject) + cluster + ":" + namespace
}

// ErrInvalidNGSILDID is returned (wrapped) for an id that is not one of the
// forms above with valid names.
var ErrInvalidNGSILDID = errors.New("not a valid NGSI-LD id of the GPU model")

// NGSILDRef is a parsed entity id: its type and the names it holds.
type NGSILDRef struct {
	Type                                   string
	Hub, Cluster, Node, Index, GPUInstance string
	Namespace                              string
}

// ParseNGSILDID parses an id built by the functions above, checking every name.
func ParseNGSILDID(id string) (NGSILDRef, error) {
	rest, ok := strings.CutPrefix(id, "urn:ngsi-ld:")
	if !ok {
		return NGSILDRef{}, fmt.Errorf("%w: must start with \"urn:ngsi-ld\" and a colon", ErrInvalidNGSILDID)
	}
	parts := strings.Split(rest, ":")
	want := map[string][]string{
		NGSILDTypeHub:     {KindHub},
		NGSILDTypeCluster: {KindCluster},
		NGSILDTypeNode:    {KindCluster, KindNode},
		NGSILDTypeDevice:  {KindCluster, KindNode, KindGPUIndex},
		NGSILDTypeSlice:   {KindCluster, KindNode, KindGPUIndex, KindGPUIndex},
		NGSILDTypeProject: {KindCluster, KindNamespace},
	}
	kinds, ok := want[parts[0]]
	if !ok {
		return NGSILDRef{}, fmt.Errorf("%w: unknown type %q", ErrInvalidNGSILDID, truncate(parts[0]))
	}
	if len(parts)-1 != len(kinds) {
		return NGSILDRef{}, fmt.Errorf("%w: a %s id has %d parts after its type", ErrInvalidNGSILDID, parts[0], len(kinds))
	}
	for i, k := range kinds {
		if err := ValidateName(k, parts[i+1]); err != nil {
			return NGSILDRef{}, fmt.Errorf("%w: %w", ErrInvalidNGSILDID, err)
		}
	}
	ref := NGSILDRef{Type: parts[0]}
	switch ref.Type {
	case NGSILDTypeHub:
		ref.Hub = parts[1]
	case NGSILDTypeProject:
		ref.Cluster, ref.Namespace = parts[1], parts[2]
	default:
		ref.Cluster = parts[1]
		if len(parts) > 2 {
			ref.Node = parts[2]
		}
		if len(parts) > 3 {
			ref.Index = parts[3]
		}
		if len(parts) > 4 {
			ref.GPUInstance = parts[4]
		}
	}
	return ref, nil
}

// RenderNGSILDContext renders the NGSI-LD @context the API serves: the NGSI-LD
// core terms it uses, every attribute of Vocabulary (the same IRIs as
// docs/vocabulary.jsonld), the entity types and the terms above. Unlike
// docs/vocabulary.jsonld it carries no rdfs:comment inside term definitions:
// JSON-LD 1.1 refuses any other entry there (invalid term definition).
func RenderNGSILDContext() ([]byte, error) {
	ctx := map[string]any{
		"ngsi-ld":      ngsildCoreIRI,
		"xsd":          "http://www.w3.org/2001/XMLSchema#",
		"id":           "@id",
		"type":         "@type",
		"value":        "ngsi-ld:hasValue",
		"object":       map[string]string{"@id": "ngsi-ld:hasObject", "@type": "@id"},
		"Property":     "ngsi-ld:Property",
		"Relationship": "ngsi-ld:Relationship",
		"DateTime":     "ngsi-ld:DateTime",
		"observedAt":   map[string]string{"@id": "ngsi-ld:observedAt", "@type": "DateTime"},
	}
	for _, a := range Vocabulary {
		if strings.Contains(a.Key, "<") {
			continue // prefixes are not terms
		}
		ctx[a.Key] = termIRI(a.Key, a.IRI)
	}
	for _, t := range NGSILDTypes {
		ctx[t] = projectIRI + "ngsi-ld-" + strings.ToLower(t)
	}
	for _, t := range ngsildTerms {
		ctx[t.Term] = projectIRI + "ngsi-ld-" + strings.ToLower(t.Term)
	}
	out, err := json.MarshalIndent(map[string]any{"@context": ctx}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// termIRI is an attribute's IRI, as RenderJSONLD builds it.
func termIRI(key, iri string) string {
	if iri == "" {
		iri = projectIRI
	}
	return iri + anchor(key)
}
