package topology

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNGSILDIDsRoundTrip: every id built from names parses back to them.
func TestNGSILDIDsRoundTrip(t *testing.T) {
	tests := []struct {
		id   string
		want NGSILDRef
	}{
		{NGSILDHubID("moc"), NGSILDRef{Type: NGSILDTypeHub, Hub: "moc"}},
		{NGSILDClusterID("nerc-ocp-prod"), NGSILDRef{Type: NGSILDTypeCluster, Cluster: "nerc-ocp-prod"}},
		{NGSILDNodeID("nerc-ocp-prod", "wrk-10.example"), NGSILDRef{Type: NGSILDTypeNode, Cluster: "nerc-ocp-prod", Node: "wrk-10.example"}},
		{NGSILDDeviceID("c", "n", "3"), NGSILDRef{Type: NGSILDTypeDevice, Cluster: "c", Node: "n", Index: "3"}},
		{NGSILDSliceID("c", "n", "3", "13"), NGSILDRef{Type: NGSILDTypeSlice, Cluster: "c", Node: "n", Index: "3", GPUInstance: "13"}},
		{NGSILDProjectID("c", "team-a"), NGSILDRef{Type: NGSILDTypeProject, Cluster: "c", Namespace: "team-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := ParseNGSILDID(tt.id)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	// the data's own attribute and the API name a GPU alike
	assert.Equal(t, NGSILDDeviceID("c", "n", "0"), Entity{Cluster: "c", Node: "n", GPUIndex: "0"}.NGSILDID())
}

func TestParseNGSILDIDRefuses(t *testing.T) {
	for _, id := range []string{
		"", "urn:ngsi-ld:", "GpuDevice:c:n:0", "urn:ngsi-ld:Car:1", "urn:ngsi-ld:GpuDevice:c:n",
		"urn:ngsi-ld:GpuDevice:c:n:0:1", "urn:ngsi-ld:GpuDevice:C:n:0", "urn:ngsi-ld:GpuDevice:c:n:x",
		"urn:ngsi-ld:Project:c:team_a", "urn:ngsi-ld:Hub:moc'--",
	} {
		_, err := ParseNGSILDID(id)
		assert.ErrorIs(t, err, ErrInvalidNGSILDID, id)
	}
}

// TestNGSILDContextTerms: the context maps every vocabulary attribute, type
// and entity term, with no entry JSON-LD 1.1 refuses in a term definition.
func TestNGSILDContextTerms(t *testing.T) {
	out, err := RenderNGSILDContext()
	require.NoError(t, err)
	var doc struct {
		Context map[string]any `json:"@context"`
	}
	require.NoError(t, json.Unmarshal(out, &doc))
	for _, a := range Vocabulary {
		if !strings.Contains(a.Key, "<") { // prefixes are not terms
			assert.Contains(t, doc.Context, a.Key)
		}
	}
	for _, ty := range NGSILDTypes {
		assert.Contains(t, doc.Context, ty)
	}
	for _, term := range ngsildTerms {
		assert.Contains(t, doc.Context, term.Term)
	}
	for term, def := range doc.Context {
		if m, ok := def.(map[string]any); ok {
			for k := range m {
				assert.Contains(t, []string{"@id", "@type"}, k, term)
			}
		}
	}
}
