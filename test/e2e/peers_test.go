//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

// startKeycloak runs the realm of the keycloakauth integration test, with
// its client secrets drawn for this run. hub-writer may write every project
// of the hub (Alertmanager's client here); team-a-writer only team-a (an OTLP
// agent).
func startKeycloak(t *testing.T) *testpeers.Keycloak {
	return testpeers.StartKeycloak(t, testpeers.KeycloakOptions{RealmFile: "../../extension/keycloakauth/testdata/realm-nerc.json"})
}

// Intervals of the e2e Prometheus: scrape and rule evaluation every second.
const (
	scrapeInterval = time.Second
	evalInterval   = time.Second
)

func writePrometheusConfig(t *testing.T, dir, replay, alertmanager string) string {
	rules, err := filepath.Abs("../../configs/prometheus/gpu-usage-rules.e2e.yaml")
	require.NoError(t, err)
	cfg := map[string]any{
		"global":     map[string]any{"scrape_interval": scrapeInterval.String(), "evaluation_interval": evalInterval.String()},
		"rule_files": []string{rules},
		"alerting": map[string]any{"alertmanagers": []any{map[string]any{
			"static_configs": []any{map[string]any{"targets": []string{alertmanager}}},
		}}},
		"scrape_configs": []any{map[string]any{
			"job_name":       "dcgm-exporter",
			"honor_labels":   true,
			"static_configs": []any{map[string]any{"targets": []string{replay}, "labels": map[string]string{"cluster": cluster}}},
		}},
	}
	return writeYAML(t, filepath.Join(dir, "prometheus.yaml"), cfg)
}

// writeAlertmanagerConfig derives the e2e Alertmanager config from the shipped
// configs/alertmanager/alertmanager.yaml: the same route and receiver, with
// second-scale timers, the collector's URL, the realm's token URL, the
// hub-writer client and the run's CA.
func writeAlertmanagerConfig(t *testing.T, dir, webhookURL, tokenURL, clientID, secretFile, caFile string) string {
	raw, err := os.ReadFile("../../configs/alertmanager/alertmanager.yaml")
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	route := cfg["route"].(map[string]any)["routes"].([]any)[0].(map[string]any)
	require.Equal(t, "ai-telemetry", route["receiver"])
	route["group_wait"], route["group_interval"] = "1s", "1s"
	var hooks []any
	for _, r := range cfg["receivers"].([]any) {
		if r.(map[string]any)["name"] == "ai-telemetry" {
			hooks = r.(map[string]any)["webhook_configs"].([]any)
		}
	}
	require.Len(t, hooks, 1, "one webhook for ai-telemetry")
	hook := hooks[0].(map[string]any)
	hook["url"] = webhookURL
	httpCfg := hook["http_config"].(map[string]any)
	httpCfg["tls_config"].(map[string]any)["ca_file"] = caFile
	oauth := httpCfg["oauth2"].(map[string]any)
	oauth["client_id"], oauth["client_secret_file"], oauth["token_url"] = clientID, secretFile, tokenURL
	oauth["tls_config"].(map[string]any)["ca_file"] = caFile
	return writeYAML(t, filepath.Join(dir, "alertmanager.yaml"), cfg)
}

func writeYAML(t *testing.T, path string, v any) string {
	out, err := yaml.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, out, 0o600))
	return path
}
