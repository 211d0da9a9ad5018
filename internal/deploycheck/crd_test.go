//go:build deploy

package deploycheck

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
)

// crdSource is a CRD file inside a module pinned in internal/tools/crds.
type crdSource struct {
	module string
	file   string // path inside the module
}

// crdSources are the CRDs of every custom kind deploy/ renders, from the
// operators' own modules at the versions internal/tools/crds/go.mod pins.
var crdSources = []crdSource{
	{"github.com/open-telemetry/opentelemetry-operator", "config/crd/bases/opentelemetry.io_opentelemetrycollectors.yaml"},
	{"github.com/prometheus-operator/prometheus-operator", "example/prometheus-operator-crd-full/monitoring.coreos.com_prometheusrules.yaml"},
	{"github.com/prometheus-operator/prometheus-operator", "example/prometheus-operator-crd-full/monitoring.coreos.com_alertmanagerconfigs.yaml"},
	{"github.com/grafana/grafana-operator/v5", "config/crd/bases/grafana.integreatly.org_grafanadashboards.yaml"},
	{"github.com/openshift/api", "route/v1/zz_generated.crd-manifests/routes.crd.yaml"},
}

// noCRD are custom kinds whose CRD no pinnable module serves; each has a
// check of its own instead.
var noCRD = map[string]string{
	// keycloak-permissions-operator is not served by the Go module proxy:
	// checkKeycloakAuthorization decodes it strictly into the fields its CRD
	// (config/crd/bases in that repository) declares, and checks references.
	"keycloak.nerc.mghpcc.org/v1 KeycloakAuthorization": "checkKeycloakAuthorization",
}

// moduleDir is the module cache directory of a module pinned in
// internal/tools/crds (downloaded and verified against its go.sum).
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	cmd := exec.Command("go", "-C", filepath.Join(root, "internal", "tools", "crds"), "mod", "download", "-json", module)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go mod download %s: %s%s", module, out, stderr.String())
	var m struct{ Dir, Error string }
	require.NoError(t, json.Unmarshal(out, &m))
	require.Empty(t, m.Error, module)
	require.NotEmpty(t, m.Dir, module)
	return m.Dir
}

var pinnedCRDs crdIndex

func loadPinnedCRDs(t *testing.T) crdIndex {
	t.Helper()
	if pinnedCRDs != nil {
		return pinnedCRDs
	}
	ix := crdIndex{}
	dirs := map[string]string{}
	for _, s := range crdSources {
		if dirs[s.module] == "" {
			dirs[s.module] = moduleDir(t, s.module)
		}
		vs, err := readCRDFile(filepath.Join(dirs[s.module], s.file))
		require.NoError(t, err)
		require.NotEmpty(t, vs, "%s %s serves no version with a schema", s.module, s.file)
		ix.add(vs...)
	}
	pinnedCRDs = ix
	return ix
}

// kustomizations lists every directory under deploy/ with a kustomization
// that builds on its own: the overlays and the parts applied on their own
// (grafana, alertmanager).
func kustomizations(t *testing.T) []string {
	t.Helper()
	return buildable(t, filepath.Join(root, "deploy"))
}

// coreDecoder decodes Kubernetes' built-in kinds strictly: an unknown or
// duplicate field is an error, as with `oc apply --validate=strict`.
var coreDecoder = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// TestSchemas checks every object every kustomization under deploy/ renders
// against its real schema: custom resources against their operator's CRD
// (openAPIV3Schema: types, required fields, enums, unknown fields), built-in
// kinds against client-go's types (strict decoding). A kind with neither
// fails, so a new kind cannot slip by unchecked.
func TestSchemas(t *testing.T) {
	crds := loadPinnedCRDs(t)
	checked := map[string]int{}
	for _, dir := range kustomizations(t) {
		rel, _ := filepath.Rel(filepath.Join(root, "deploy"), dir)
		t.Run(rel, func(t *testing.T) {
			for _, o := range render(t, dir) {
				apiVersion := str(o.m["apiVersion"])
				gvk := apiVersion + " " + o.Kind
				if crd, ok := crds.lookup(apiVersion, o.Kind); ok {
					v, err := toJSONValue(o.m)
					require.NoError(t, err)
					assert.Empty(t, crd.validateObject(v), "%s against %s", o.key(), crd.source)
					checked[gvk]++
					continue
				}
				if _, ok := noCRD[gvk]; ok {
					checked[gvk]++
					continue
				}
				_, _, err := coreDecoder.Decode(o.raw, nil, nil)
				if runtime.IsNotRegisteredError(err) {
					t.Errorf("%s: no schema for %s; pin its CRD in internal/tools/crds and crdSources", o.key(), gvk)
					continue
				}
				assert.NoError(t, err, "%s", o.key())
				checked[gvk]++
			}
		})
	}
	// The kinds the deployment is made of were all seen (a renamed
	// directory must not empty the check).
	for _, gvk := range []string{
		"opentelemetry.io/v1beta1 OpenTelemetryCollector", "monitoring.coreos.com/v1 PrometheusRule",
		"monitoring.coreos.com/v1alpha1 AlertmanagerConfig", "grafana.integreatly.org/v1beta1 GrafanaDashboard",
		"route.openshift.io/v1 Route", "keycloak.nerc.mghpcc.org/v1 KeycloakAuthorization",
		"v1 Service", "networking.k8s.io/v1 NetworkPolicy",
	} {
		assert.Positive(t, checked[gvk], "no %s rendered", gvk)
	}
	t.Logf("objects checked per kind: %v", checked)
}

// TestSchemasRefuse: the real CRDs refuse what the API server would refuse
// or prune in a rendered OpenTelemetryCollector and Route.
func TestSchemasRefuse(t *testing.T) {
	crds := loadPinnedCRDs(t)
	var collector, route map[string]any
	for _, o := range render(t, filepath.Join(root, "deploy", "overlays", "gateway")) {
		switch o.Kind {
		case "OpenTelemetryCollector":
			collector = o.m
		case "Route":
			route = o.m
		}
	}
	require.NotNil(t, collector)
	require.NotNil(t, route)

	tests := []struct {
		name   string
		obj    map[string]any
		mutate func(obj map[string]any)
		want   string
	}{
		{"unknown field", collector, func(o map[string]any) { get(o, "spec").(map[string]any)["replica"] = 2 }, ".spec.replica: unknown field"},
		{"unknown field in a core type", collector, func(o map[string]any) {
			get(o, "spec", "volumeClaimTemplates").([]any)[0].(map[string]any)["spec"].(map[string]any)["accessMode"] = []any{"ReadWriteOnce"}
		}, ".spec.volumeClaimTemplates[0].spec.accessMode: unknown field"},
		{"unknown field in config.service", collector, func(o map[string]any) {
			get(o, "spec", "config", "service").(map[string]any)["pipeline"] = map[string]any{}
		}, ".spec.config.service.pipeline: unknown field"},
		{"wrong type", collector, func(o map[string]any) { get(o, "spec").(map[string]any)["replicas"] = "two" }, "spec.replicas in body must be of type integer"},
		{"enum", collector, func(o map[string]any) { get(o, "spec").(map[string]any)["mode"] = "sidecars" }, "spec.mode in body should be one of"},
		{"required", collector, func(o map[string]any) { delete(get(o, "spec").(map[string]any), "config") }, "spec.config in body is required"},
		{"pipeline without exporters", collector, func(o map[string]any) {
			delete(get(o, "spec", "config", "service", "pipelines", "traces").(map[string]any), "exporters")
		}, "exporters in body is required"},
		{"route enum", route, func(o map[string]any) { get(o, "spec", "tls").(map[string]any)["termination"] = "reencrypted" }, "spec.tls.termination"},
		{"metadata", route, func(o map[string]any) { get(o, "metadata").(map[string]any)["label"] = map[string]any{} }, `.metadata: unknown field "label"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := toJSONValue(tt.obj) // a deep copy
			require.NoError(t, err)
			obj := v.(map[string]any)
			crd, ok := crds.lookup(str(obj["apiVersion"]), str(obj["kind"]))
			require.True(t, ok)
			require.Empty(t, crd.validateObject(obj), "valid before the change")
			tt.mutate(obj)
			problems := crd.validateObject(obj)
			assert.True(t, len(problems) > 0 && strings.Contains(strings.Join(problems, "\n"), tt.want), "want %q in %q", tt.want, problems)
		})
	}
}

// crdIndex finds the schema of an apiVersion and kind.
type crdIndex map[string]crdVersion

func (ix crdIndex) add(vs ...crdVersion) {
	for _, v := range vs {
		ix[v.apiVersion()+" "+v.kind] = v
	}
}

func (ix crdIndex) lookup(apiVersion, kind string) (crdVersion, bool) {
	v, ok := ix[apiVersion+" "+kind]
	return v, ok
}

func readCRDFile(path string) ([]crdVersion, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCRDs(path, b)
}
