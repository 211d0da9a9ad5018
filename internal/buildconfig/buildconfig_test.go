package buildconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/modfile"
)

const (
	root           = "../.."
	rootModule     = "github.com/nerc-project/ai-telemetry-collector"
	coreVersion    = "v0.165.0"
	stableVersion  = "v1.71.0"
	contribVersion = "v0.165.1"
	corePrefix     = "go.opentelemetry.io/collector/"
	contribPrefix  = "github.com/open-telemetry/opentelemetry-collector-contrib/"
)

type module struct {
	GoMod  string `yaml:"gomod"`
	Import string `yaml:"import"`
}

type builderConfig struct {
	Dist struct {
		Name       string `yaml:"name"`
		OutputPath string `yaml:"output_path"`
	} `yaml:"dist"`
	Receivers  []module `yaml:"receivers"`
	Processors []module `yaml:"processors"`
	Exporters  []module `yaml:"exporters"`
	Extensions []module `yaml:"extensions"`
	Connectors []module `yaml:"connectors"`
	Providers  []module `yaml:"providers"`
	Replaces   []string `yaml:"replaces"`
}

func (c builderConfig) modules() []module {
	var all []module
	for _, list := range [][]module{c.Receivers, c.Processors, c.Exporters, c.Extensions, c.Connectors, c.Providers} {
		all = append(all, list...)
	}
	return all
}

func loadBuilderConfig(t *testing.T) builderConfig {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "builder-config.yaml"))
	require.NoError(t, err)
	var cfg builderConfig
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	return cfg
}

func loadModFile(t *testing.T, path string) *modfile.File {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	f, err := modfile.Parse(path, raw, nil)
	require.NoError(t, err)
	return f
}

// pinned says which release a collector module must be at, or "" for other modules.
func pinned(path, version string) (want string, ok bool) {
	switch {
	case strings.HasPrefix(path, contribPrefix):
		return contribVersion, version == contribVersion
	case strings.HasPrefix(path, corePrefix):
		return coreVersion + " or " + stableVersion, version == coreVersion || version == stableVersion
	}
	return "", true
}

func TestBuilderConfigPinsOneRelease(t *testing.T) {
	cfg := loadBuilderConfig(t)
	assert.Equal(t, "otelcol-ai-telemetry", cfg.Dist.Name)
	assert.Equal(t, "./_build", cfg.Dist.OutputPath)
	for _, m := range cfg.modules() {
		path, version, found := strings.Cut(m.GoMod, " ")
		require.True(t, found, "%q must pin a version", m.GoMod)
		if want, ok := pinned(path, version); !ok {
			t.Errorf("builder-config.yaml: %s is at %s, want %s", path, version, want)
		}
	}
}

func TestGoModAgreesWithBuilderConfig(t *testing.T) {
	cfg := loadBuilderConfig(t)
	gomod := loadModFile(t, filepath.Join(root, "go.mod"))
	required := map[string]string{}
	for _, r := range gomod.Require {
		required[r.Mod.Path] = r.Mod.Version
		if want, ok := pinned(r.Mod.Path, r.Mod.Version); !ok {
			t.Errorf("go.mod: %s is at %s, want %s", r.Mod.Path, r.Mod.Version, want)
		}
	}
	for _, m := range cfg.modules() {
		path, version, _ := strings.Cut(m.GoMod, " ")
		if v, ok := required[path]; ok && v != version {
			t.Errorf("%s: go.mod has %s, builder-config.yaml has %s", path, v, version)
		}
	}
}

func TestBuilderToolMatchesCore(t *testing.T) {
	tools := loadModFile(t, filepath.Join(root, "internal", "tools", "builder", "go.mod"))
	var version string
	for _, r := range tools.Require {
		if r.Mod.Path == corePrefix+"cmd/builder" {
			version = r.Mod.Version
		}
	}
	assert.Equal(t, coreVersion, version, "the builder must be the release of the collector core it builds")
}

// TestEveryComponentIsInTheDistribution fails when a component of this
// repository (a directory with a metadata.yaml) is not built into the binary.
func TestEveryComponentIsInTheDistribution(t *testing.T) {
	cfg := loadBuilderConfig(t)
	imports := map[string]bool{}
	for _, m := range cfg.modules() {
		if strings.HasPrefix(m.GoMod, rootModule+" ") {
			imports[m.Import] = true
		}
	}
	assert.Contains(t, cfg.Replaces, rootModule+" => ../", "the distribution must build this checkout's components")

	metadata, err := filepath.Glob(filepath.Join(root, "*", "*", "metadata.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, metadata)
	for _, md := range metadata {
		rel, err := filepath.Rel(root, filepath.Dir(md))
		require.NoError(t, err)
		pkg := rootModule + "/" + filepath.ToSlash(rel)
		assert.True(t, imports[pkg], "%s has a metadata.yaml but is not in builder-config.yaml", pkg)
	}
}
