package deploycheck

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite deploy/overlays/*/config.generated.yaml from configs/*.yaml")

const root = "../.."

// configPatch is a generated kustomize patch that sets an
// OpenTelemetryCollector's spec.config to a file of configs/.
type configPatch struct {
	config    string // configs/agent.yaml
	patch     string // deploy/overlays/agent/config.generated.yaml
	collector string // the OpenTelemetryCollector's name
	// targetAllocator: the collector runs with the operator's target
	// allocator, which receives the receivers' scrape_configs and does not
	// expand ${env:...} in them (opentelemetry-operator issue 2257); the
	// generator puts each ${env:NAME:-default} of the receivers section as
	// its default.
	targetAllocator bool
}

var configPatches = []configPatch{
	{"configs/agent.yaml", "deploy/overlays/agent/config.generated.yaml", "ai-telemetry-agent", true},
	{"configs/gateway.yaml", "deploy/overlays/gateway/config.generated.yaml", "ai-telemetry-gateway", false},
	{"configs/site.yaml", "deploy/overlays/site/config.generated.yaml", "ai-telemetry-site", false},
}

// envWithDefault is ${env:NAME:-default}; envAny any ${env:...}.
var (
	envWithDefault = regexp.MustCompile(`\$\{env:[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}`)
	envAny         = regexp.MustCompile(`\$\{env:[^}]*\}`)
)

// collectorConfig is the config text the collector of p runs: the configs/
// file, with the receivers section's ${env:NAME:-default} put as their
// defaults for a collector with the target allocator. A receivers section
// that needs a variable without default cannot run under the allocator.
func collectorConfig(t *testing.T, p configPatch) []byte {
	t.Helper()
	config := read(t, p.config)
	if !p.targetAllocator {
		return config
	}
	lines := strings.Split(string(config), "\n")
	inReceivers := false
	for i, line := range lines {
		if line != "" && line[0] != ' ' && line[0] != '#' {
			inReceivers = strings.HasPrefix(line, "receivers:")
		}
		if !inReceivers || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		line = envWithDefault.ReplaceAllString(line, "$1")
		require.False(t, envAny.MatchString(line),
			"%s:%d: the target allocator cannot expand %s (no default)", p.config, i+1, envAny.FindString(line))
		lines[i] = line
	}
	return []byte(strings.Join(lines, "\n"))
}

func read(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	require.NoError(t, err)
	return b
}

// generatePatch is the patch's text: a header, then the collector's config
// lines (comments included) indented under spec.config.
func generatePatch(p configPatch, config []byte) []byte {
	var b bytes.Buffer
	b.WriteString("# Generated from " + p.config + " by `go test ./internal/deploycheck/ -update`: do not edit.\n")
	b.WriteString("# A kustomize patch setting the OpenTelemetryCollector's spec.config to that file.\n")
	if p.targetAllocator {
		b.WriteString("# Target allocator: the receivers' ${env:NAME:-default} are put as their defaults\n")
		b.WriteString("# (the allocator receives the scrape configs and does not expand variables).\n")
	}
	b.WriteString("apiVersion: opentelemetry.io/v1beta1\nkind: OpenTelemetryCollector\nmetadata:\n")
	b.WriteString("  name: " + p.collector + "\n  namespace: ai-telemetry\nspec:\n  config:\n")
	for _, line := range strings.Split(strings.TrimRight(string(config), "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString("    " + line + "\n")
	}
	return b.Bytes()
}

func parseMap(t *testing.T, name string, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(b, &m), name)
	return m
}

// TestConfigPatchesMatchConfigs keeps the collector configs single-sourced:
// the overlays' spec.config is generated from configs/*.yaml.
func TestConfigPatchesMatchConfigs(t *testing.T) {
	for _, p := range configPatches {
		t.Run(p.config, func(t *testing.T) {
			config := collectorConfig(t, p)
			want := generatePatch(p, config)
			if *update {
				require.NoError(t, os.WriteFile(filepath.Join(root, p.patch), want, 0o644))
			}
			got := read(t, p.patch)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from %s: edit %s and run `go test ./internal/deploycheck/ -update`",
					p.patch, p.config, p.config)
			}
			// The indentation kept the meaning: spec.config parses to the same value.
			patch := parseMap(t, p.patch, got)
			spec, _ := patch["spec"].(map[string]any)
			require.NotNil(t, spec, p.patch)
			if !reflect.DeepEqual(spec["config"], parseMap(t, p.config, config)) {
				t.Fatalf("%s: spec.config does not parse to %s", p.patch, p.config)
			}
		})
	}
}

// builderDist is builder-config.yaml's dist section.
type builderDist struct {
	Name       string `yaml:"name"`
	Version    string `yaml:"version"`
	OutputPath string `yaml:"output_path"`
}

func readBuilderDist(t *testing.T) builderDist {
	t.Helper()
	var c struct {
		Dist builderDist `yaml:"dist"`
	}
	require.NoError(t, yaml.Unmarshal(read(t, "builder-config.yaml"), &c))
	require.NotEmpty(t, c.Dist.Name)
	require.NotEmpty(t, c.Dist.OutputPath)
	require.NotEmpty(t, c.Dist.Version)
	return c.Dist
}

// instruction is one Containerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string   // upper case: FROM, COPY, ...
	args []string // JSON form decoded, otherwise split on blanks
	json bool
}

func parseContainerfile(t *testing.T, b []byte) []instruction {
	t.Helper()
	var out []instruction
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		cmd, rest, _ := strings.Cut(cur, " ")
		rest = strings.TrimSpace(rest)
		in := instruction{cmd: strings.ToUpper(cmd)}
		if strings.HasPrefix(rest, "[") {
			require.NoError(t, yaml.Unmarshal([]byte(rest), &in.args), "Containerfile: %s", cur)
			in.json = true
		} else {
			in.args = strings.Fields(rest)
		}
		out = append(out, in)
		cur = ""
	}
	return out
}

// TestContainerfile checks the Containerfile against what `make build`
// produces and what the overlays expect: UBI 9 minimal at a pinned tag, the
// builder's binary, a default config that exists, non-root, the ports.
func TestContainerfile(t *testing.T) {
	dist := readBuilderDist(t)
	binary := filepath.Clean(filepath.Join(dist.OutputPath, dist.Name)) // _build/otelcol-ai-telemetry
	ins := parseContainerfile(t, read(t, "Containerfile"))

	var from []string
	copies := map[string]string{} // source -> destination
	var user string
	var entrypoint, cmd []string
	var exposed []string
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			from = append(from, in.args[0])
		case "COPY":
			var paths []string
			for _, a := range in.args {
				if !strings.HasPrefix(a, "--") {
					paths = append(paths, a)
				}
			}
			require.GreaterOrEqual(t, len(paths), 2, "COPY %v", in.args)
			dst := paths[len(paths)-1]
			for _, src := range paths[:len(paths)-1] {
				d := dst
				if strings.HasSuffix(dst, "/") {
					d = dst + filepath.Base(src)
				}
				copies[filepath.Clean(src)] = d
			}
		case "USER":
			user = in.args[0]
		case "ENTRYPOINT":
			require.True(t, in.json, "ENTRYPOINT in JSON (exec) form")
			entrypoint = in.args
		case "CMD":
			require.True(t, in.json, "CMD in JSON (exec) form")
			cmd = in.args
		case "EXPOSE":
			exposed = append(exposed, in.args...)
		}
	}

	require.Len(t, from, 1, "one stage")
	image, tag, ok := strings.Cut(from[0], ":")
	assert.Equal(t, "registry.access.redhat.com/ubi9/ubi-minimal", image)
	assert.True(t, ok && tag != "" && tag != "latest", "base image tag pinned: %s", from[0])

	dst, ok := copies[binary]
	require.True(t, ok, "Containerfile copies %s (builder-config.yaml dist.output_path/dist.name); copies: %v", binary, copies)
	require.NotEmpty(t, entrypoint)
	assert.Equal(t, dst, entrypoint[0], "ENTRYPOINT runs the copied binary")

	// A numeric non-root UID (runAsNonRoot needs a number to check).
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.Atoi(uid)
	require.NoError(t, err, "USER %q is numeric", user)
	assert.NotZero(t, n, "USER is not root")

	// The default config is copied from a file that exists.
	i := slices.Index(cmd, "--config")
	require.True(t, i >= 0 && i+1 < len(cmd), "CMD passes --config: %v", cmd)
	found := false
	for src, d := range copies {
		if d == cmd[i+1] {
			found = true
			_, err := os.Stat(filepath.Join(root, src))
			if assert.NoError(t, err, "default config source %s", src) {
				// Secure by default: the image run without arguments authorizes per project.
				assert.Empty(t, authorizationProblems(parseMap(t, src, read(t, src))), "the image's default config %s", src)
			}
		}
	}
	assert.True(t, found, "CMD's config %s is copied into the image", cmd[i+1])

	for _, p := range []string{"4317", "4318", "9097", "13133"} {
		assert.Contains(t, exposed, p, "EXPOSE %s", p)
	}

	// The build context's filter lets every COPY source through.
	ignore := strings.Split(string(read(t, ".dockerignore")), "\n")
	for src := range copies {
		allowed := false
		for _, l := range ignore {
			if pat, ok := strings.CutPrefix(strings.TrimSpace(l), "!"); ok {
				if m, _ := filepath.Match(pat, src); m {
					allowed = true
				}
			}
		}
		assert.True(t, allowed, ".dockerignore lets %s into the build context", src)
	}
}

// secretLike matches values that look like real credentials.
var secretLike = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}`)

// placeholder reports whether a Secret value is an obvious placeholder.
func placeholder(v string) bool {
	return v == "" || strings.Contains(v, "CHANGE_ME") || strings.Contains(v, "CHANGE-ME")
}

// TestSecretTemplates: the Secret templates under deploy/ hold placeholders
// only, and no file under deploy/ contains something that looks like a key
// or token.
func TestSecretTemplates(t *testing.T) {
	templates := secretTemplates(t)
	require.NotEmpty(t, templates)
	for name, s := range templates {
		for k, v := range s.values() {
			assert.True(t, placeholder(v), "template %s: %s is not a placeholder (CHANGE_ME)", name, k)
		}
	}
	require.NoError(t, filepath.WalkDir(filepath.Join(root, "deploy"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		assert.False(t, secretLike.Match(b), "%s contains something like a credential: %q", path, secretLike.Find(b))
		return nil
	}))
}

// secret is a Secret manifest.
type secret struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

func (s secret) values() map[string]string {
	m := map[string]string{}
	for k, v := range s.Data {
		m[k] = v
	}
	for k, v := range s.StringData {
		m[k] = v
	}
	return m
}

// secretTemplates reads deploy/overlays/**/secrets/*.template.yaml, keyed
// namespace/name.
func secretTemplates(t *testing.T) map[string]secret {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "deploy", "overlays", "*", "secrets", "*.template.yaml"))
	require.NoError(t, err)
	out := map[string]secret{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var s secret
		require.NoError(t, yaml.Unmarshal(b, &s), f)
		require.Equal(t, "Secret", s.Kind, f)
		out[s.Metadata.Namespace+"/"+s.Metadata.Name] = s
	}
	return out
}
