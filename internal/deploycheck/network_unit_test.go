package deploycheck

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// containsProblem reports whether one of problems contains want.
func containsProblem(problems []string, want string) bool {
	return slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) })
}

func parseDocs(t *testing.T, text string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(text))
	var out []map[string]any
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			require.ErrorContains(t, err, "EOF")
			return out
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

// gatewayEnv is the generic gateway overlay's environment, read from its
// kustomization's configMapGenerator literals.
func gatewayEnv(t *testing.T) map[string]string { t.Helper(); return overlayEnv(t, "gateway") }

// overlayEnv is the environment a generic overlay's ConfigMap generator sets.
func overlayEnv(t *testing.T, overlay string) map[string]string {
	t.Helper()
	var k struct {
		ConfigMapGenerator []struct {
			Literals []string `yaml:"literals"`
		} `yaml:"configMapGenerator"`
	}
	require.NoError(t, yaml.Unmarshal(read(t, "deploy/overlays/"+overlay+"/kustomization.yaml"), &k))
	env := map[string]string{}
	for _, g := range k.ConfigMapGenerator {
		for _, l := range g.Literals {
			name, value, _ := strings.Cut(l, "=")
			env[name] = value
		}
	}
	require.Contains(t, env, "CLICKHOUSE_ENDPOINT")
	return env
}

// TestClickHouseTLS: the gateway's ClickHouse exporter dials TLS with the
// generic overlay's environment, and each way of losing TLS or its
// verification is found.
func TestClickHouseTLS(t *testing.T) {
	env := gatewayEnv(t)
	const endpoint = "tcp://clickhouse.ai-telemetry.svc.cluster.local:9440?secure=true&dial_timeout=10s"
	tests := []struct {
		name     string
		endpoint string
		tls      map[string]any
		want     string // "" when it must pass
	}{
		{"shipped", "", nil, ""},
		{"the old endpoint, no tls", "tcp://clickhouse.ai-telemetry.svc.cluster.local:9000?dial_timeout=10s", map[string]any{}, "not over TLS"},
		{"plaintext port with a CA", "tcp://clickhouse.ai-telemetry.svc.cluster.local:9000", nil, "port 9000 is ClickHouse's plaintext port"},
		{"plaintext port among several", "tcp://ch-0:9440,ch-1:9000?secure=true", nil, "port 9000 is ClickHouse's plaintext port"},
		{"secure=false and no CA", "tcp://ch:9440?secure=false", map[string]any{}, "not over TLS"},
		{"secure=true without a CA file", endpoint, map[string]any{}, ""},
		{"https", "https://ch:8443", map[string]any{}, ""},
		{"skip_verify in the DSN", endpoint + "&skip_verify=true", nil, "skip_verify: the server's certificate is not verified"},
		{"insecure_skip_verify", "", map[string]any{"ca_file": "/ca.crt", "insecure_skip_verify": true}, "tls.insecure_skip_verify"},
		{"insecure", "tcp://ch:9440", map[string]any{"ca_file": "/ca.crt", "insecure": true}, "tls.insecure turns TLS off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseMap(t, "configs/gateway.yaml", read(t, "configs/gateway.yaml"))
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			if tt.endpoint != "" {
				e["CLICKHOUSE_ENDPOINT"] = tt.endpoint
			}
			if tt.tls != nil {
				set(cfg, tt.tls, "exporters", "clickhouse", "tls")
			}
			problems := clickhouseTLSProblems(cfg, e)
			if tt.want == "" {
				assert.Empty(t, problems)
				return
			}
			assert.True(t, containsProblem(problems, tt.want), "want %q in %q", tt.want, problems)
		})
	}
}

// TestSiteClickHouseTLS: the site's ClickHouse reader (gpu_storage's
// clickhouse backend) dials TLS with the generic overlay's environment, and
// each way of losing TLS or its verification is found there too.
func TestSiteClickHouseTLS(t *testing.T) {
	env := overlayEnv(t, "site")
	tests := []struct {
		name     string
		endpoint string
		tls      map[string]any
		want     string // "" when it must pass
	}{
		{"shipped", "", nil, ""},
		{"plaintext port, no tls", "tcp://clickhouse.ai-telemetry.svc.cluster.local:9000", map[string]any{}, "port 9000 is ClickHouse's plaintext port"},
		{"no secure, no CA", "tcp://ch:9440", map[string]any{}, "extension gpu_storage clickhouse: not over TLS"},
		{"HTTP interface in clear", "http://ch:8123", map[string]any{}, "not over TLS"},
		{"insecure", "", map[string]any{"ca_file": "/ca.crt", "insecure": true}, "tls.insecure turns TLS off"},
		{"insecure_skip_verify", "", map[string]any{"ca_file": "/ca.crt", "insecure_skip_verify": true}, "tls.insecure_skip_verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseMap(t, "configs/site.yaml", read(t, "configs/site.yaml"))
			e := maps.Clone(env)
			if tt.endpoint != "" {
				e["CLICKHOUSE_ENDPOINT"] = tt.endpoint
			}
			if tt.tls != nil {
				set(cfg, tt.tls, "extensions", "gpu_storage", "clickhouse", "tls")
			}
			problems := clickhouseTLSProblems(cfg, e)
			if tt.want == "" {
				assert.Empty(t, problems)
				return
			}
			assert.True(t, containsProblem(problems, tt.want), "want %q in %q", tt.want, problems)
		})
	}
}

// oldGatewayPolicy is the gateway's NetworkPolicy before egress rules: ingress
// only, from every namespace.
const oldGatewayPolicy = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ai-telemetry-gateway, namespace: ai-telemetry}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/instance: ai-telemetry.ai-telemetry-gateway}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {}
        - namespaceSelector: {matchLabels: {policy-group.network.openshift.io/host-network: ""}}
      ports: [{protocol: TCP, port: 4317}]
`

// TestNetworkPolicies: the shipped policies pass, and each way of leaving a
// direction or a source open is found.
func TestNetworkPolicies(t *testing.T) {
	files := []string{
		"deploy/overlays/gateway/networkpolicy.yaml", "deploy/overlays/agent/networkpolicy.yaml",
		"deploy/overlays/site/networkpolicy.yaml",
	}
	for _, f := range files {
		docs := readYAMLDocs(t, f)
		require.Len(t, docs, 1, f)
		assert.Empty(t, networkPolicyProblems(docs[0]), f)
	}
	gateway := func(t *testing.T) map[string]any { return readYAMLDocs(t, files[0])[0] }
	tests := []struct {
		name   string
		policy func(t *testing.T) map[string]any
		want   []string
	}{
		{
			"old gateway policy", func(t *testing.T) map[string]any { return parseDocs(t, oldGatewayPolicy)[0] },
			[]string{"policyTypes lacks Egress", "ingress rule 0 admits every namespace"},
		},
		{"no Ingress type", func(t *testing.T) map[string]any {
			p := gateway(t)
			set(p, []any{"Egress"}, "spec", "policyTypes")
			return p
		}, []string{"policyTypes lacks Ingress"}},
		{"ingress from anywhere", func(t *testing.T) map[string]any {
			p := gateway(t)
			set(p, append(list(get(p, "spec", "ingress")), map[string]any{"ports": []any{map[string]any{"port": 4317}}}), "spec", "ingress")
			return p
		}, []string{"admits every source"}},
		{"ingress from every address", func(t *testing.T) map[string]any {
			p := gateway(t)
			rule := list(get(p, "spec", "ingress"))[0].(map[string]any)
			rule["from"] = append(list(rule["from"]), map[string]any{"ipBlock": map[string]any{"cidr": "0.0.0.0/0"}})
			return p
		}, []string{"ingress rule 0 admits every address"}},
		{"egress without DNS", func(t *testing.T) map[string]any {
			p := gateway(t)
			set(p, list(get(p, "spec", "egress"))[1:], "spec", "egress")
			return p
		}, []string{"egress lets no DNS out"}},
		{"egress to every port", func(t *testing.T) map[string]any {
			p := gateway(t)
			delete(list(get(p, "spec", "egress"))[1].(map[string]any), "ports")
			return p
		}, []string{"egress rule 1 names no ports"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := networkPolicyProblems(tt.policy(t))
			for _, w := range tt.want {
				assert.True(t, containsProblem(problems, w), "want %q in %q", w, problems)
			}
		})
	}
}

// TestDialPorts: the ports the shipped configs connect to, with the generic
// gateway's environment, are those its policy lets out.
func TestDialPorts(t *testing.T) {
	cfg := parseMap(t, "configs/gateway.yaml", read(t, "configs/gateway.yaml"))
	ports := dialPorts(cfg, gatewayEnv(t))
	assert.Equal(t, map[string]string{
		"exporters clickhouse":               "9440",
		"exporters otlp_grpc/tempo":          "4317",
		"extensions keycloakauth":            "443",
		"extensions keycloakauth/prometheus": "443",
		"receivers promql":                   "443",
	}, ports)
	open := egressPorts(readYAMLDocs(t, "deploy/overlays/gateway/networkpolicy.yaml")[0])
	for what, p := range ports {
		assert.True(t, open["TCP/"+p], "%s: port %s is let out", what, p)
	}
}

// TestSiteDialPorts: the site connects to ClickHouse and Keycloak only, and
// its policy lets both out.
func TestSiteDialPorts(t *testing.T) {
	cfg := parseMap(t, "configs/site.yaml", read(t, "configs/site.yaml"))
	ports := dialPorts(cfg, overlayEnv(t, "site"))
	assert.Equal(t, map[string]string{
		"extensions gpu_storage clickhouse": "9440",
		"extensions keycloakauth":           "443",
	}, ports)
	open := egressPorts(readYAMLDocs(t, "deploy/overlays/site/networkpolicy.yaml")[0])
	for what, p := range ports {
		assert.True(t, open["TCP/"+p], "%s: port %s is let out", what, p)
	}
}

// oldTargetAllocatorRBAC is the target allocator's grant before it was
// narrowed: pods, services, endpoints, nodes and namespaces everywhere.
const oldTargetAllocatorRBAC = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ai-telemetry-agent-targetallocator}
rules:
  - apiGroups: [""]
    resources: [pods, services, endpoints, nodes, namespaces]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ai-telemetry-agent-targetallocator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ai-telemetry-agent-targetallocator}
subjects: [{kind: ServiceAccount, name: ai-telemetry-agent-targetallocator, namespace: ai-telemetry}]
`

// TestRBAC: the agent's shipped RBAC grants exactly what its config reads,
// and more, less or writing is found.
func TestRBAC(t *testing.T) {
	agent := configPatches[0]
	require.Equal(t, "ai-telemetry-agent", agent.collector)
	needs := func(t *testing.T) map[string]map[access]bool {
		return rbacNeeds(parseMap(t, agent.config, collectorConfig(t, agent)), "ai-telemetry", agent.collector, agent.targetAllocator)
	}
	shipped := func(t *testing.T) []map[string]any {
		return append(readYAMLDocs(t, "deploy/rbac/gpumodel-metadata.yaml"), readYAMLDocs(t, "deploy/overlays/agent/rbac.yaml")...)
	}
	grants, problems := rbacGrants(shipped(t))
	require.Empty(t, problems)
	require.Empty(t, rbacProblems(grants, needs(t)), "the shipped RBAC")

	const ta = "ServiceAccount ai-telemetry/ai-telemetry-agent-targetallocator"
	const collector = "ServiceAccount ai-telemetry/ai-telemetry-agent-collector"
	// The agent's config with the gpumodel Kubernetes source watching pods.
	podsOn := func(t *testing.T) map[string]map[access]bool {
		cfg := parseMap(t, agent.config, collectorConfig(t, agent))
		kubernetes, ok := get(cfg, "processors", "gpumodel", "metadata", "kubernetes").(map[string]any)
		require.True(t, ok)
		require.Equal(t, false, kubernetes["pods"], "the agent does not watch pods")
		kubernetes["pods"] = true
		return rbacNeeds(cfg, "ai-telemetry", agent.collector, agent.targetAllocator)
	}
	// The gpumodel metadata ClusterRole as it was with pods watched.
	podsGrant := func(t *testing.T) []map[string]any {
		objs := shipped(t)
		require.Equal(t, "ai-telemetry-gpumodel-metadata", get(objs[0], "metadata", "name"))
		objs[0]["rules"] = append(list(objs[0]["rules"]), map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"list", "watch"}})
		return objs
	}
	tests := []struct {
		name    string
		objects func(t *testing.T) []map[string]any
		needs   func(t *testing.T) map[string]map[access]bool
		want    []string
	}{
		{"old target allocator grant", func(t *testing.T) []map[string]any {
			var objs []map[string]any
			for _, o := range shipped(t) {
				if !strings.Contains(str(get(o, "metadata", "name")), "targetallocator") {
					objs = append(objs, o)
				}
			}
			return append(objs, parseDocs(t, oldTargetAllocatorRBAC)...)
		}, needs, []string{
			ta + " may read core/pods in every namespace",
			ta + " may read core/nodes in every namespace",
			ta + " may read core/namespaces in every namespace",
			ta + " may read discovery.k8s.io/endpointslices in every namespace",
		}},
		{"Secrets", func(t *testing.T) []map[string]any {
			objs := shipped(t)
			rules := list(objs[0]["rules"])
			objs[0]["rules"] = append(rules, map[string]any{"apiGroups": []any{""}, "resources": []any{"secrets"}, "verbs": []any{"get"}})
			return objs
		}, needs, []string{"ServiceAccount ai-telemetry/ai-telemetry-agent-collector may read core/secrets in every namespace"}},
		{"a write verb and a wildcard", func(t *testing.T) []map[string]any {
			objs := shipped(t)
			objs[0]["rules"] = append(list(objs[0]["rules"]), map[string]any{"apiGroups": []any{"*"}, "resources": []any{"pods"}, "verbs": []any{"delete"}})
			return objs
		}, needs, []string{"ai-telemetry-agent-collector may delete", "wildcard rule */pods"}},
		{"a grant to the gateway", func(t *testing.T) []map[string]any {
			return parseDocs(t, strings.ReplaceAll(oldTargetAllocatorRBAC, "ai-telemetry-agent-targetallocator, namespace", "ai-telemetry-gateway-collector, namespace"))
		}, func(*testing.T) map[string]map[access]bool {
			return rbacNeeds(parseMap(t, "configs/gateway.yaml", read(t, "configs/gateway.yaml")), "ai-telemetry", "ai-telemetry-gateway", false)
		}, []string{"ServiceAccount ai-telemetry/ai-telemetry-gateway-collector may read core/pods in every namespace"}},
		{
			"a cluster-wide pods grant the config does not need", podsGrant, needs,
			[]string{collector + " may read core/pods in every namespace, which it does not read"},
		},
		{
			"pods watched without the grant", shipped, podsOn,
			[]string{collector + " reads core/pods in every namespace without a grant"},
		},
		{"a namespace missing", func(t *testing.T) []map[string]any {
			var objs []map[string]any
			for _, o := range shipped(t) {
				if str(get(o, "metadata", "namespace")) != "nvidia-gpu-operator" {
					objs = append(objs, o)
				}
			}
			return objs
		}, needs, []string{ta + " reads core/pods in namespace nvidia-gpu-operator without a grant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			grants, problems := rbacGrants(tt.objects(t))
			problems = append(problems, rbacProblems(grants, tt.needs(t))...)
			for _, w := range tt.want {
				assert.True(t, containsProblem(problems, w), "want %q in %q", w, problems)
			}
		})
	}
}
