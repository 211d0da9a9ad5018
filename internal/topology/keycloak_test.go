package topology

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseResource(t *testing.T) {
	long := strings.Repeat("a", 64) // one more than a DNS label holds
	tests := []struct {
		name string
		want Resource // zero: refused
	}{
		{"HUB-moc", Resource{Kind: ResourceHub, Hub: "moc"}},
		{"HUB-moc-CLUSTER-nerc-ocp-prod", Resource{Kind: ResourceCluster, Hub: "moc", Cluster: "nerc-ocp-prod"}},
		{"HUB-moc-CLUSTER-ocp.example.org", Resource{Kind: ResourceCluster, Hub: "moc", Cluster: "ocp.example.org"}},
		{
			"HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a",
			Resource{Kind: ResourceProject, Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: "team-a"},
		},
		{
			"HUB-moc-CLUSTER-nerc-ocp-prod-AINODE-wrk-10.nerc.org",
			Resource{Kind: ResourceNode, Hub: "moc", Cluster: "nerc-ocp-prod", Node: "wrk-10.nerc.org"},
		},
		{
			"HUB-moc-CLUSTER-nerc-ocp-prod-AINODE-wrk-10-GPUDEVICE-3",
			Resource{Kind: ResourceGPUDevice, Hub: "moc", Cluster: "nerc-ocp-prod", Node: "wrk-10", GPUIndex: "3"},
		},
		// Names hyphenated like markers, in lower case, are names.
		{
			"HUB-moc-CLUSTER-x-cluster-y-PROJECT-p-project-q",
			Resource{Kind: ResourceProject, Hub: "moc", Cluster: "x-cluster-y", Namespace: "p-project-q"},
		},

		// prom-keycloak-proxy's hub list and other applications' resources.
		{"HUB", Resource{}},
		{"HUB-", Resource{}},
		{"Default Resource", Resource{}},
		{"team-a-dashboard", Resource{}},
		{"hub-moc", Resource{}},
		// Empty or invalid names at any level.
		{"HUB--CLUSTER-c", Resource{}},
		{"HUB-moc-CLUSTER-", Resource{}},
		{"HUB-moc-CLUSTER-c-PROJECT-", Resource{}},
		{"HUB-moc-CLUSTER-c-AINODE-", Resource{}},
		{"HUB-moc-CLUSTER-c-AINODE-n-GPUDEVICE-", Resource{}},
		{"HUB-moc-CLUSTER-c-AINODE-n-GPUDEVICE-x", Resource{}},
		{"HUB-MOC", Resource{}},
		{"HUB-moc.x", Resource{}}, // a hub is a label, no dots
		{"HUB-moc-CLUSTER-c-PROJECT-team.a", Resource{}},
		{"HUB-moc-CLUSTER-c-PROJECT-" + long, Resource{}},
		// A second marker is never folded into a name.
		{"HUB-moc-CLUSTER-c-PROJECT-a-PROJECT-b", Resource{}},
		{"HUB-moc-CLUSTER-a-CLUSTER-b", Resource{}},
		{"HUB-moc-CLUSTER-c-AINODE-n-PROJECT-p", Resource{}},
		{"HUB-moc-CLUSTER-c-PROJECT-p-AINODE-n", Resource{}},
		{"HUB-moc-CLUSTER-c-AINODE-n-GPUDEVICE-0-GPUDEVICE-1", Resource{}},
		{"HUB-moc-PROJECT-p", Resource{}},
		// Keycloak's separators and other bytes never pass.
		{"HUB-moc-CLUSTER-c-PROJECT-a#GET", Resource{}},
		{"HUB-moc-CLUSTER-c,d", Resource{}},
		{"HUB-moc-CLUSTER-c-PROJECT-a\n", Resource{}},
		{"", Resource{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResource(tt.name)
			if tt.want == (Resource{}) {
				require.ErrorIs(t, err, ErrInvalidResource)
				assert.Equal(t, Resource{}, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.name, got.Name(), "parses back to the builder's spelling")
		})
	}
}

// FuzzParseResource: whatever parses names only valid names and spells
// itself back; nothing panics.
func FuzzParseResource(f *testing.F) {
	for _, s := range []string{
		"HUB-moc", "HUB-moc-CLUSTER-c-PROJECT-p", "HUB-moc-CLUSTER-c-AINODE-n-GPUDEVICE-0", "HUB-a-CLUSTER--PROJECT-",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		r, err := ParseResource(name)
		if err != nil {
			return
		}
		require.Equal(t, name, r.Name())
		require.NoError(t, ValidateName(KindHub, r.Hub))
		if r.Kind != ResourceHub {
			require.NoError(t, ValidateName(KindCluster, r.Cluster))
		}
	})
}
