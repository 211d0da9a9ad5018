package topology

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		kind, value string
		ok          bool
	}{
		{KindHub, "moc", true},
		{KindHub, "MOC", false},
		{KindCluster, "nerc-ocp-prod", true},
		{KindCluster, "ocp.example.org", true},
		{KindCluster, "nerc-ocp-prod-PROJECT-team-a#GET#", false},
		{KindCluster, "nerc-ocp-prod-PROJECT-team-a", false},
		{KindCluster, "prod,GET", false},
		{KindCluster, "prod\n", false},
		{KindCluster, "", false},
		{KindCluster, strings.Repeat("a", 254), false},
		{KindNamespace, "team-a", true},
		{KindNamespace, "team.a", false},
		{KindNamespace, "team-a#GET", false},
		{KindNamespace, "Team-A", false},
		{KindNamespace, strings.Repeat("a", 64), false},
		{KindNode, "wrk-10.nerc.mghpcc.org", true},
		{KindNode, "wrk 10", false},
		{KindGPUIndex, "0", true},
		{KindGPUIndex, "15", true},
		{KindGPUIndex, "-1", false},
		{KindGPUIndex, "0#GET", false},
		{KindGPUIndex, "12345", false},
		{"pod", "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.value, func(t *testing.T) {
			err := ValidateName(tt.kind, tt.value)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ErrInvalidName)
		})
	}
}

func TestEntityValidateNames(t *testing.T) {
	require.NoError(t, Entity{Cluster: "nerc-ocp-prod", Namespace: "team-a", Node: "wrk-1", GPUIndex: "0"}.ValidateNames())
	require.NoError(t, Entity{}.ValidateNames(), "unknown names are allowed")
	for _, e := range []Entity{
		{Cluster: "prod#GET"}, {Namespace: "TEAM"}, {Node: "a,b"}, {GPUIndex: "x"},
	} {
		assert.ErrorIs(t, e.ValidateNames(), ErrInvalidName, "%+v", e)
	}
}

func TestValidateResource(t *testing.T) {
	for _, ok := range []string{
		ProjectResource("moc", "nerc-ocp-prod", "team-a"),
		GPUDeviceResource("moc", "nerc-ocp-prod", "wrk-1.example.org", "3"),
		HubResource("moc"),
	} {
		assert.NoError(t, ValidateResource(ok), ok)
	}
	for _, bad := range []string{
		"", ProjectResource("moc", "nerc-ocp-prod-PROJECT-team-a#GET#", "team-b"),
		"HUB-moc,GET", "HUB-moc CLUSTER", "HUB-moc\x00", "HUB-moc/x", strings.Repeat("a", 1025),
	} {
		assert.ErrorIs(t, ValidateResource(bad), ErrInvalidResource, "%q", bad)
	}
}

func TestValidateAttributes(t *testing.T) {
	// Maps are decoded from OTLP JSON, as a receiver would: Put* replaces a
	// repeated key, the decoder keeps both.
	build := func(kv ...any) pcommon.Map {
		var attrs []string
		for i := 0; i < len(kv); i += 2 {
			val := fmt.Sprintf(`{"stringValue":%q}`, kv[i+1])
			if n, ok := kv[i+1].(int); ok {
				val = fmt.Sprintf(`{"intValue":"%d"}`, n)
			}
			attrs = append(attrs, fmt.Sprintf(`{"key":%q,"value":%s}`, kv[i], val))
		}
		body := `{"resourceSpans":[{"resource":{"attributes":[` + strings.Join(attrs, ",") + `]}}]}`
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(body))
		require.NoError(t, err)
		return td.ResourceSpans().At(0).Resource().Attributes()
	}
	tests := []struct {
		name string
		m    pcommon.Map
		err  error
	}{
		{"valid", build(AttrK8sClusterName, "nerc-ocp-prod", AttrK8sNamespaceName, "team-a", "service.name", "x"), nil},
		{"empty name is unknown", build(AttrK8sNamespaceName, ""), nil},
		{"non-topology duplicate is not ours", build("service.name", "a", "service.name", "b"), nil},
		{"duplicate namespace", build(AttrK8sNamespaceName, "team-a", AttrK8sNamespaceName, "team-b"), ErrDuplicateKey},
		{"duplicate hw.id", build(AttrHwID, "GPU-1", AttrHwID, "GPU-1"), ErrDuplicateKey},
		{"duplicate aitelemetry", build(AttrKeycloakResource, "a", AttrKeycloakResource, "b"), ErrDuplicateKey},
		{"separator in cluster", build(AttrK8sClusterName, "prod-PROJECT-team-a#GET#"), ErrInvalidName},
		{"upper case namespace", build(AttrK8sNamespaceName, "TEAM-B"), ErrInvalidName},
		{"int namespace", build(AttrK8sNamespaceName, 7), ErrInvalidName},
		{"bad hub", build(AttrHubName, "moc#"), ErrInvalidName},
		{"bad node", build(AttrK8sNodeName, "a b"), ErrInvalidName},
		{"bad GPU index", build(AttrNvidiaGPUIndex, "0,GET"), ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateAttributes(tt.m)
			if tt.err == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.err)
		})
	}
}
