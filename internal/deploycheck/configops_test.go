//go:build deploy

package deploycheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
)

// An overlay may change a collector's config (configs/*.yaml) only through
// kustomize JSON patches named config-*.yaml whose operations all lie under
// /spec/config (deploy/overlays/nerc/obs-gateway: authorization, ClickHouse
// replication). withConfigOps applies them, as kustomize does, to the
// configs/ file's content, so the rendered spec.config must equal the file
// plus exactly those operations: any other change is found.

// kustomizationPatches is the patches section of a kustomization.yaml.
type kustomizationPatches struct {
	Patches []struct {
		Path   string `yaml:"path"`
		Target struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"target"`
	} `yaml:"patches"`
}

// withConfigOps returns config with the overlay dir's config-*.yaml
// operations for collector applied, and the files applied.
func withConfigOps(t *testing.T, dir, collector string, config map[string]any) (map[string]any, []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	require.NoError(t, err)
	var k kustomizationPatches
	require.NoError(t, yaml.Unmarshal(b, &k), dir)

	doc, err := json.Marshal(map[string]any{"spec": map[string]any{"config": config}})
	require.NoError(t, err)
	var files []string
	for _, p := range k.Patches {
		if !strings.HasPrefix(filepath.Base(p.Path), "config-") {
			continue
		}
		require.Equal(t, "OpenTelemetryCollector", p.Target.Kind, "%s: %s targets a collector", dir, p.Path)
		if p.Target.Name != collector {
			continue
		}
		var ops []map[string]any
		opsYAML, err := os.ReadFile(filepath.Join(dir, p.Path))
		require.NoError(t, err)
		require.NoError(t, yaml.Unmarshal(opsYAML, &ops), p.Path)
		for _, op := range ops {
			require.True(t, strings.HasPrefix(str(op["path"]), "/spec/config/"), "%s: %v is outside /spec/config", p.Path, op)
		}
		opsJSON, err := json.Marshal(ops)
		require.NoError(t, err)
		patch, err := jsonpatch.DecodePatch(opsJSON)
		require.NoError(t, err, p.Path)
		doc, err = patch.Apply(doc)
		require.NoError(t, err, "%s does not apply to %s's config", p.Path, collector)
		files = append(files, p.Path)
	}
	// Back to YAML's types (ints), as the rendered object was decoded.
	var out struct {
		Spec struct {
			Config map[string]any `yaml:"config"`
		} `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(doc, &out))
	return out.Spec.Config, files
}
