package rulescheck

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the derived rule files from configs/prometheus/gpu-usage-rules.yaml")

const (
	root           = "../.."
	rulesFile      = "configs/prometheus/gpu-usage-rules.yaml"
	e2eFile        = "configs/prometheus/gpu-usage-rules.e2e.yaml"
	prometheusRule = "deploy/prometheus/gpu-usage-prometheusrule.yaml"
)

// e2eFor is the `for:` of each alert in the e2e variant, whose Prometheus
// evaluates the rules every few seconds.
var e2eFor = map[string]string{
	"GPUInUse":         "10s",
	"GPUAllocatedIdle": "20s",
}

const e2eHeader = `# Generated from gpu-usage-rules.yaml by ` + "`go test ./internal/rulescheck/ -update`" + `: do not edit.
# The production rules with short ` + "`for:`" + ` (GPUInUse 10s, GPUAllocatedIdle 20s) for the e2e
# test, whose Prometheus evaluates them every few seconds. Change the durations
# in internal/rulescheck/rulescheck_test.go (e2eFor).
`

func read(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t *testing.T, rel string, b []byte) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s: not a YAML mapping", rel)
	}
	return &doc
}

// child returns the value of key in a mapping node, or nil.
func child(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func decode(t *testing.T, what string, n *yaml.Node) any {
	t.Helper()
	var v any
	if err := n.Decode(&v); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func encode(t *testing.T, doc *yaml.Node) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func write(t *testing.T, rel string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, rel), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote %s", rel)
}

// groups returns the plain rules file's groups node (a sequence).
func groups(t *testing.T) *yaml.Node {
	t.Helper()
	g := child(parse(t, rulesFile, read(t, rulesFile)).Content[0], "groups")
	if g == nil || g.Kind != yaml.SequenceNode || len(g.Content) == 0 {
		t.Fatalf("%s: no groups", rulesFile)
	}
	return g
}

// alerts calls f with each alerting rule's name and mapping node.
func alerts(groups *yaml.Node, f func(name string, rule *yaml.Node)) {
	for _, g := range groups.Content {
		rules := child(g, "rules")
		if rules == nil {
			continue
		}
		for _, r := range rules.Content {
			if a := child(r, "alert"); a != nil {
				f(a.Value, r)
			}
		}
	}
}

func TestPrometheusRuleCarriesThePlainRules(t *testing.T) {
	want := groups(t)
	doc := parse(t, prometheusRule, read(t, prometheusRule))
	top := doc.Content[0]
	if v := child(top, "apiVersion"); v == nil || v.Value != "monitoring.coreos.com/v1" {
		t.Errorf("%s: apiVersion is not monitoring.coreos.com/v1", prometheusRule)
	}
	if v := child(top, "kind"); v == nil || v.Value != "PrometheusRule" {
		t.Errorf("%s: kind is not PrometheusRule", prometheusRule)
	}
	spec := child(top, "spec")
	got := child(spec, "groups")
	if got != nil && reflect.DeepEqual(decode(t, prometheusRule, got), decode(t, rulesFile, want)) {
		return
	}
	if !*update {
		t.Fatalf("%s: spec.groups differs from the groups of %s; run go test ./internal/rulescheck/ -update", prometheusRule, rulesFile)
	}
	if spec == nil || spec.Kind != yaml.MappingNode {
		t.Fatalf("%s: no spec mapping", prometheusRule)
	}
	if got == nil {
		spec.Content = append(spec.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "groups"}, want)
	} else {
		*got = *want
	}
	write(t, prometheusRule, encode(t, doc))
}

func TestE2EVariantDiffersOnlyInFor(t *testing.T) {
	prod := groups(t)
	alerts(prod, func(name string, r *yaml.Node) {
		d, ok := e2eFor[name]
		if !ok {
			t.Errorf("alert %s has no e2e `for:` in e2eFor", name)
			return
		}
		short, err := time.ParseDuration(d)
		if err != nil {
			t.Fatal(err)
		}
		if f := child(r, "for"); f != nil {
			long, err := time.ParseDuration(f.Value)
			if err != nil {
				t.Fatalf("alert %s: for: %v", name, err)
			}
			if name == "GPUInUse" && long < 5*time.Minute {
				t.Errorf("alert GPUInUse: production for: %s is under 5m", f.Value)
			}
			if short > long {
				t.Errorf("alert %s: e2e for: %s is longer than production %s", name, d, f.Value)
			}
			f.Value = d
		} else {
			t.Errorf("alert %s has no for:", name)
		}
	})
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{
		Kind:        yaml.MappingNode,
		HeadComment: e2eHeader,
		Content:     []*yaml.Node{{Kind: yaml.ScalarNode, Value: "groups"}, prod},
	}}}
	want := encode(t, doc)
	if got, err := os.ReadFile(filepath.Join(root, e2eFile)); err == nil && bytes.Equal(got, want) {
		return
	}
	if !*update {
		t.Fatalf("%s is not the production rules with the e2e for: durations; run go test ./internal/rulescheck/ -update", e2eFile)
	}
	write(t, e2eFile, want)
}
