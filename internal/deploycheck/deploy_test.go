//go:build deploy

package deploycheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
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

// object is one rendered Kubernetes object.
type object struct {
	raw       []byte         // the object's YAML
	m         map[string]any // decoded
	Kind      string
	Name      string
	Namespace string
}

func (o object) key() string { return o.Kind + " " + o.Namespace + "/" + o.Name }

// overlays lists the directories under deploy/overlays with a kustomization.
func overlays(t *testing.T) []string {
	t.Helper()
	dirs := buildable(t, filepath.Join(root, "deploy", "overlays"))
	require.NotEmpty(t, dirs)
	return dirs
}

// buildable lists the directories under dir whose kustomization can be built
// on its own: not a Component (kustomize.config.k8s.io/v1alpha1), which only
// an overlay including it renders.
func buildable(t *testing.T, dir string) []string {
	t.Helper()
	var dirs []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var k struct {
			Kind string `yaml:"kind"`
		}
		if err := yaml.Unmarshal(b, &k); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if k.Kind != "Component" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	}))
	return dirs
}

func tool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set; run `make deploy-test`", env)
	}
	return p
}

var rendered = map[string][]object{}

// render runs `kustomize build dir` (once per directory) and splits the output into objects.
func render(t *testing.T, dir string) []object {
	t.Helper()
	if objs, ok := rendered[dir]; ok {
		return objs
	}
	cmd := exec.Command(tool(t, "KUSTOMIZE"), "build", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "kustomize build %s: %s", dir, stderr.String())

	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		raw, err := yaml.Marshal(&n)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, n.Decode(&m))
		md, _ := m["metadata"].(map[string]any)
		o := object{raw: raw, m: m, Kind: str(m["kind"]), Name: str(md["name"]), Namespace: str(md["namespace"])}
		objs = append(objs, o)
	}
	require.NotEmpty(t, objs, dir)
	rendered[dir] = objs
	return objs
}

// otelcol is a typed view of the OpenTelemetryCollector v1beta1 fields the
// checks below read. Its schema (unknown fields, types, enums, required
// fields) is checked against the operator's own CRD in crd_test.go; core
// Kubernetes types (env, volumes, resources, ...) are left as maps here.
type otelcol struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec otelcolSpec `yaml:"spec"`
}

type otelcolSpec struct {
	Mode                 string            `yaml:"mode"`
	Replicas             *int              `yaml:"replicas"`
	Image                string            `yaml:"image"`
	UpgradeStrategy      string            `yaml:"upgradeStrategy"`
	ManagementState      string            `yaml:"managementState"`
	ServiceAccount       string            `yaml:"serviceAccount"`
	Args                 map[string]string `yaml:"args"`
	TargetAllocator      *targetAllocator  `yaml:"targetAllocator"`
	PodSecurityContext   map[string]any    `yaml:"podSecurityContext"`
	SecurityContext      map[string]any    `yaml:"securityContext"`
	Resources            map[string]any    `yaml:"resources"`
	Env                  []map[string]any  `yaml:"env"`
	EnvFrom              []map[string]any  `yaml:"envFrom"`
	Volumes              []map[string]any  `yaml:"volumes"`
	VolumeMounts         []map[string]any  `yaml:"volumeMounts"`
	VolumeClaimTemplates []map[string]any  `yaml:"volumeClaimTemplates"`
	Config               otelcolConfig     `yaml:"config"`
}

type targetAllocator struct {
	Enabled            bool   `yaml:"enabled"`
	Replicas           *int   `yaml:"replicas"`
	AllocationStrategy string `yaml:"allocationStrategy"`
	FilterStrategy     string `yaml:"filterStrategy"`
	ServiceAccount     string `yaml:"serviceAccount"`
	PrometheusCR       *struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"prometheusCR"`
}

// otelcolConfig is v1beta1's Config: the collector config's top-level keys.
type otelcolConfig struct {
	Receivers  map[string]any `yaml:"receivers"`
	Processors map[string]any `yaml:"processors"`
	Exporters  map[string]any `yaml:"exporters"`
	Connectors map[string]any `yaml:"connectors"`
	Extensions map[string]any `yaml:"extensions"`
	Service    struct {
		Extensions []string       `yaml:"extensions"`
		Pipelines  map[string]any `yaml:"pipelines"`
		Telemetry  map[string]any `yaml:"telemetry"`
	} `yaml:"service"`
}

func decodeCollector(t *testing.T, o object) otelcol {
	t.Helper()
	var c otelcol
	require.NoError(t, yaml.Unmarshal(o.raw, &c), o.key())
	return c
}

// collectorPatch returns the patch of a collector of that name.
func collectorPatch(name string) (configPatch, bool) {
	for _, p := range configPatches {
		if p.collector == name {
			return p, true
		}
	}
	return configPatch{}, false
}

// containerPaths are paths every pod has without a volume of ours.
var containerPaths = []string{"/var/run/secrets/kubernetes.io/serviceaccount", "/etc/pki"}

func TestOverlays(t *testing.T) {
	dist := readBuilderDist(t)
	templates := secretTemplates(t)
	for _, dir := range overlays(t) {
		rel, _ := filepath.Rel(filepath.Join(root, "deploy", "overlays"), dir)
		t.Run(rel, func(t *testing.T) {
			objs := render(t, dir)
			byKey := map[string]object{}
			for _, o := range objs {
				_, dup := byKey[o.key()]
				assert.False(t, dup, "duplicate %s", o.key())
				byKey[o.key()] = o
				assert.Equal(t, "ai-telemetry", str(get(o.m, "metadata", "labels", "app.kubernetes.io/part-of")),
					"%s carries app.kubernetes.io/part-of", o.key())
				if o.Kind == "Secret" {
					t.Errorf("%s: Secrets are not rendered; ship a template under secrets/", o.key())
				}
				assert.False(t, secretLike.Match(o.raw), "%s contains something like a credential", o.key())
			}

			var collectors []otelcol
			for _, o := range objs {
				if o.Kind == "OpenTelemetryCollector" {
					require.Equal(t, "opentelemetry.io/v1beta1", str(o.m["apiVersion"]))
					c := decodeCollector(t, o)
					collectors = append(collectors, c)
					t.Run(c.Metadata.Name, func(t *testing.T) {
						checkCollector(t, dir, dist, c, o, byKey, templates)
					})
				}
			}
			for _, o := range objs {
				if o.Kind == "KeycloakAuthorization" {
					checkKeycloakAuthorization(t, o)
				}
			}
			checkReferences(t, objs, byKey, collectors)

			// RBAC: each collector's ServiceAccounts may read exactly what its config reads.
			needs := map[string]map[access]bool{}
			for _, c := range collectors {
				ta := c.Spec.TargetAllocator != nil && c.Spec.TargetAllocator.Enabled
				cfg, _ := get(byKey["OpenTelemetryCollector "+c.Metadata.Namespace+"/"+c.Metadata.Name].m, "spec", "config").(map[string]any)
				maps.Copy(needs, rbacNeeds(cfg, c.Metadata.Namespace, c.Metadata.Name, ta))
			}
			var objMaps []map[string]any
			for _, o := range objs {
				objMaps = append(objMaps, o.m)
			}
			grants, problems := rbacGrants(objMaps)
			assert.Empty(t, append(problems, rbacProblems(grants, needs)...), "RBAC")
		})
	}
}

func checkCollector(t *testing.T, dir string, dist builderDist, c otelcol, o object, byKey map[string]object, templates map[string]secret) {
	ns := c.Metadata.Namespace
	require.NotEmpty(t, ns)
	spec := c.Spec
	assert.Contains(t, []string{"deployment", "statefulset", "daemonset"}, spec.Mode)
	if spec.TargetAllocator != nil && spec.TargetAllocator.Enabled {
		assert.Equal(t, "statefulset", spec.Mode, "the target allocator needs mode statefulset")
	}
	assert.True(t, strings.HasSuffix(spec.Image, "/"+dist.Name+":"+dist.Version),
		"image %s is %s at builder-config.yaml's dist.version %s", spec.Image, dist.Name, dist.Version)
	assert.Equal(t, true, spec.PodSecurityContext["runAsNonRoot"], "runAsNonRoot")

	// spec.config is the configs/ file, changed only by the overlay's own
	// config-*.yaml operations.
	patch, ok := collectorPatch(c.Metadata.Name)
	require.True(t, ok, "no configs/ file for collector %s", c.Metadata.Name)
	ta := spec.TargetAllocator != nil && spec.TargetAllocator.Enabled
	require.Equal(t, patch.targetAllocator, ta, "%s: target allocator as its config patch expects", c.Metadata.Name)
	rendered := get(o.m, "spec", "config")
	want, opsFiles := withConfigOps(t, dir, c.Metadata.Name, parseMap(t, patch.config, collectorConfig(t, patch)))
	require.True(t, reflect.DeepEqual(rendered, want),
		"spec.config of %s differs from %s with the operations of %v", c.Metadata.Name, patch.config, opsFiles)
	configYAML, err := yaml.Marshal(rendered)
	require.NoError(t, err)
	assert.Empty(t, authorizationProblems(rendered.(map[string]any)), "%s authorizes per project", c.Metadata.Name)

	// The environment: literal values, ConfigMaps (which must be rendered),
	// Secrets (which must have a template with the key).
	env := map[string]string{}
	secretEnv := map[string]bool{}
	for _, ef := range spec.EnvFrom {
		name := str(get(ef, "configMapRef", "name"))
		require.NotEmpty(t, name, "envFrom: only configMapRef is used: %v", ef)
		cm, ok := byKey["ConfigMap "+ns+"/"+name]
		require.True(t, ok, "envFrom ConfigMap %s is rendered", name)
		for k, v := range get(cm.m, "data").(map[string]any) {
			env[k] = str(v)
		}
	}
	for _, e := range spec.Env {
		name := str(e["name"])
		if v, ok := e["value"]; ok {
			env[name] = str(v)
			continue
		}
		if ref := get(e, "valueFrom", "secretKeyRef"); ref != nil {
			sn, key := str(get(ref, "name")), str(get(ref, "key"))
			s, ok := templates[ns+"/"+sn]
			if assert.True(t, ok, "env %s: Secret %s/%s has a template under deploy/overlays/*/secrets", name, ns, sn) {
				_, ok := s.values()[key]
				assert.True(t, ok, "env %s: Secret template %s has key %s", name, sn, key)
			}
			secretEnv[name] = true
			continue
		}
		if ref := get(e, "valueFrom", "configMapKeyRef"); ref != nil {
			cm, ok := byKey["ConfigMap "+ns+"/"+str(get(ref, "name"))]
			require.True(t, ok, "env %s: ConfigMap is rendered", name)
			env[name] = str(get(cm.m, "data", str(get(ref, "key"))))
			continue
		}
		t.Errorf("env %s: unsupported source %v", name, e)
	}

	// Every ${env:NAME} without a default is set; every variable set is used.
	used := map[string]bool{}
	for _, m := range envRef.FindAllStringSubmatch(string(configYAML), -1) {
		used[m[1]] = true
		if m[2] == "" {
			_, set := env[m[1]]
			assert.True(t, set || secretEnv[m[1]], "config needs ${env:%s}; the collector does not set it", m[1])
		}
	}
	for k := range env {
		assert.True(t, used[k], "the collector sets %s, which its config does not read", k)
	}
	for k := range secretEnv {
		assert.True(t, used[k], "the collector sets %s, which its config does not read", k)
	}

	// Volumes: mounts name a volume or claim template; ConfigMap and Secret
	// volumes name rendered ConfigMaps, templates or serving certificates.
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[str(v["name"])] = true
		if cm := str(get(v, "configMap", "name")); cm != "" {
			_, ok := byKey["ConfigMap "+ns+"/"+cm]
			assert.True(t, ok, "volume %s: ConfigMap %s is rendered", v["name"], cm)
		}
		if sn := str(get(v, "secret", "secretName")); sn != "" {
			_, tmpl := templates[ns+"/"+sn]
			assert.True(t, tmpl || servingCert(byKey, ns, sn), "volume %s: Secret %s has a template or is a serving certificate", v["name"], sn)
		}
	}
	for _, v := range spec.VolumeClaimTemplates {
		volumes[str(get(v, "metadata", "name"))] = true
	}
	var mounts []string
	for _, m := range spec.VolumeMounts {
		assert.True(t, volumes[str(m["name"])], "volumeMount %s names a volume", m["name"])
		mounts = append(mounts, path.Clean(str(m["mountPath"])))
	}
	// Paths the config reads (env values and defaults) lie on a volume, or
	// where every pod has them.
	for _, m := range envRef.FindAllStringSubmatch(string(configYAML), -1) {
		v, ok := env[m[1]]
		if !ok {
			v = strings.TrimPrefix(m[2], ":-")
		}
		if strings.HasPrefix(v, "/") {
			assert.True(t, under(v, mounts) || under(v, containerPaths), "%s=%s is on no volume (mounts: %v)", m[1], v, mounts)
		}
	}

	// Transport: ClickHouse over TLS, with the overlay's environment.
	assert.Empty(t, clickhouseTLSProblems(rendered.(map[string]any), env), "%s: ClickHouse over TLS", c.Metadata.Name)

	// Network: a NetworkPolicy selects the collector's pods and lets out
	// every port its config connects to.
	open := map[string]bool{}
	policies := 0
	for _, np := range byKey {
		if np.Kind == "NetworkPolicy" && np.Namespace == ns &&
			str(get(np.m, "spec", "podSelector", "matchLabels", "app.kubernetes.io/instance")) == ns+"."+c.Metadata.Name {
			policies++
			maps.Copy(open, egressPorts(np.m))
		}
	}
	assert.Positive(t, policies, "%s: a NetworkPolicy selects its pods", c.Metadata.Name)
	for what, port := range dialPorts(rendered.(map[string]any), env) {
		assert.True(t, open["TCP/"+port], "%s: %s connects to port %s, which no egress rule lets out", c.Metadata.Name, what, port)
	}

	// The built binary accepts the config, with the overlay's environment.
	// Secrets and the local paths validate needs come from the process
	// environment (make deploy-test passes the Makefile's VALIDATE_ENV).
	// The prometheus receiver checks that a credentials file exists: the
	// pod's ServiceAccount token becomes the local one make passes.
	validated := configYAML
	if local := os.Getenv("SERVICE_ACCOUNT_TOKEN_FILE"); local != "" {
		validated = bytes.ReplaceAll(validated, []byte("/var/run/secrets/kubernetes.io/serviceaccount/token"), []byte(local))
	}
	f := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(f, validated, 0o600))
	// With the collector's own flags (spec.args, e.g. feature-gates), as
	// the operator passes them: --name=value.
	args := []string{"validate", "--config", f}
	for _, k := range slices.Sorted(maps.Keys(spec.Args)) {
		args = append(args, "--"+k+"="+spec.Args[k])
	}
	cmd := exec.Command(tool(t, "OTELCOL_BINARY"), args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		if _, local := map[string]bool{"STORAGE_DIR": true, "SERVICE_ACCOUNT_TOKEN_FILE": true}[k]; local && os.Getenv(k) != "" {
			continue
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k := range secretEnv {
		if os.Getenv(k) == "" {
			cmd.Env = append(cmd.Env, k+"=placeholder")
		}
	}
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "validate %s's config: %s", c.Metadata.Name, out)
}

func under(p string, dirs []string) bool {
	p = path.Clean(p)
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// servingCert reports whether a rendered Service asks OpenShift's service CA
// for a certificate in Secret name.
func servingCert(byKey map[string]object, ns, name string) bool {
	for _, o := range byKey {
		if o.Kind == "Service" && o.Namespace == ns &&
			str(get(o.m, "metadata", "annotations", "service.beta.openshift.io/serving-cert-secret-name")) == name {
			return true
		}
	}
	return false
}

// listenPorts are the ports a collector config's receivers and extensions
// listen on (endpoint: host:port anywhere below them).
func listenPorts(c otelcol) map[int]bool {
	ports := map[int]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, v := range x {
				if k == "endpoint" {
					if s, ok := v.(string); ok {
						s = envRef.ReplaceAllStringFunc(s, func(m string) string {
							return strings.TrimPrefix(envRef.FindStringSubmatch(m)[2], ":-")
						})
						if _, p, err := net.SplitHostPort(s); err == nil {
							if n, err := strconv.Atoi(p); err == nil {
								ports[n] = true
							}
						}
					}
				}
				walk(v)
			}
		case []any:
			for _, v := range x {
				walk(v)
			}
		}
	}
	walk(c.Spec.Config.Receivers)
	walk(c.Spec.Config.Extensions)
	return ports
}

// checkReferences: Services select a collector's pods and forward to ports
// its config listens on; Routes name a Service and one of its ports;
// NetworkPolicies select a collector's pods; ServiceAccount subjects of the
// bindings are the operator's for a rendered collector.
func checkReferences(t *testing.T, objs []object, byKey map[string]object, collectors []otelcol) {
	instance := func(ns string, sel map[string]any) (otelcol, bool) {
		for _, c := range collectors {
			if c.Metadata.Namespace == ns && str(sel["app.kubernetes.io/instance"]) == ns+"."+c.Metadata.Name {
				return c, true
			}
		}
		return otelcol{}, false
	}
	for _, o := range objs {
		switch o.Kind {
		case "Service":
			sel, _ := get(o.m, "spec", "selector").(map[string]any)
			assert.Equal(t, "opentelemetry-collector", str(sel["app.kubernetes.io/component"]), "%s selects collector pods", o.key())
			c, ok := instance(o.Namespace, sel)
			if !assert.True(t, ok, "%s selects a rendered collector's pods", o.key()) {
				continue
			}
			listening := listenPorts(c)
			for _, p := range list(get(o.m, "spec", "ports")) {
				tp, _ := get(p, "targetPort").(int)
				assert.True(t, listening[tp], "%s port %v: %s's config listens on %d", o.key(), get(p, "name"), c.Metadata.Name, tp)
			}
		case "Route":
			svc, ok := byKey["Service "+o.Namespace+"/"+str(get(o.m, "spec", "to", "name"))]
			if !assert.True(t, ok, "%s: its Service is rendered", o.key()) {
				continue
			}
			var names []string
			for _, p := range list(get(svc.m, "spec", "ports")) {
				names = append(names, str(get(p, "name")))
			}
			assert.Contains(t, names, str(get(o.m, "spec", "port", "targetPort")), "%s: the Service has the port", o.key())
			assert.Equal(t, "reencrypt", str(get(o.m, "spec", "tls", "termination")), "%s: TLS to the pods", o.key())
		case "NetworkPolicy":
			assert.Empty(t, networkPolicyProblems(o.m))
			sel, _ := get(o.m, "spec", "podSelector", "matchLabels").(map[string]any)
			c, ok := instance(o.Namespace, sel)
			if !assert.True(t, ok, "%s selects a rendered collector's pods", o.key()) {
				continue
			}
			// Every Service port of that collector is allowed in.
			allowed := map[int]bool{}
			for _, r := range list(get(o.m, "spec", "ingress")) {
				for _, p := range list(get(r, "ports")) {
					if n, ok := get(p, "port").(int); ok {
						allowed[n] = true
					}
				}
			}
			for _, s := range objs {
				if s.Kind != "Service" {
					continue
				}
				if sc, ok := instance(s.Namespace, get(s.m, "spec", "selector").(map[string]any)); ok && sc.Metadata.Name == c.Metadata.Name {
					for _, p := range list(get(s.m, "spec", "ports")) {
						tp, _ := get(p, "targetPort").(int)
						assert.True(t, allowed[tp], "%s lets in port %d of %s", o.key(), tp, s.key())
					}
				}
			}
		case "ClusterRoleBinding", "RoleBinding":
			for _, s := range list(get(o.m, "subjects")) {
				if str(get(s, "kind")) != "ServiceAccount" {
					continue
				}
				ns, name := str(get(s, "namespace")), str(get(s, "name"))
				if _, ok := byKey["ServiceAccount "+ns+"/"+name]; ok {
					continue
				}
				var sas []string
				for _, c := range collectors {
					if c.Metadata.Namespace != ns {
						continue
					}
					sas = append(sas, c.Metadata.Name+"-collector")
					if c.Spec.ServiceAccount != "" {
						sas = append(sas, c.Spec.ServiceAccount)
					}
					if ta := c.Spec.TargetAllocator; ta != nil && ta.Enabled {
						sas = append(sas, c.Metadata.Name+"-targetallocator")
					}
				}
				assert.True(t, slices.Contains(sas, name), "%s: ServiceAccount %s/%s is one the operator creates (%v)", o.key(), ns, name, sas)
			}
			if role := str(get(o.m, "roleRef", "name")); strings.HasPrefix(role, "ai-telemetry-") {
				_, ok := byKey[str(get(o.m, "roleRef", "kind"))+" "+map[bool]string{true: o.Namespace}[o.Kind == "RoleBinding"]+"/"+role]
				assert.True(t, ok, "%s: role %s is rendered", o.key(), role)
			}
		}
	}
}

// keycloakAuthorization: the keycloak-permissions-operator's
// KeycloakAuthorization (keycloak.nerc.mghpcc.org/v1), the fields used,
// decoded strictly. Its CRD (config/crd/bases in the operator's repository)
// cannot be pinned like the others (the Go module proxy does not serve that
// module), so these fields and their nesting are copied from it by hand.
type keycloakAuthorization struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Keycloak struct {
			BaseURL     string `yaml:"baseUrl"`
			AdminSecret struct {
				Name        string `yaml:"name"`
				UsernameKey string `yaml:"usernameKey"`
				PasswordKey string `yaml:"passwordKey"`
			} `yaml:"adminSecret"`
		} `yaml:"keycloak"`
		Realm struct {
			ID      string     `yaml:"id"`
			Clients []kcClient `yaml:"clients"`
		} `yaml:"realm"`
	} `yaml:"spec"`
}

type kcClient struct {
	ID                    string `yaml:"id"`
	AuthorizationSettings struct {
		Scopes    []kcScope `yaml:"scopes"`
		Resources []struct {
			Name        string    `yaml:"name"`
			DisplayName string    `yaml:"displayName"`
			Scopes      []kcScope `yaml:"scopes"`
		} `yaml:"resources"`
		Policies    []kcPolicy     `yaml:"policies"`
		Permissions []kcPermission `yaml:"permissions"`
	} `yaml:"authorizationSettings"`
}

// grants reports whether the client's authorization settings grant a caller
// (a client id, or a group "group:ID") scope on resource: the resource's
// permission names a policy admitting the caller, directly or through an
// aggregated AFFIRMATIVE policy.
func (c kcClient) grants(caller, resource, scope string) bool {
	byName := map[string]kcPolicy{}
	for _, p := range c.AuthorizationSettings.Policies {
		byName[p.Name] = p
		byName[p.ID] = p
	}
	var admits func(p kcPolicy) bool
	admits = func(p kcPolicy) bool {
		if p.Logic != "POSITIVE" {
			return false
		}
		switch {
		case p.Type.Client != nil:
			return slices.Contains(p.Type.Client.Clients, caller)
		case p.Type.Group != nil:
			for _, g := range p.Type.Group.Groups {
				if "group:"+g.ID == caller {
					return true
				}
			}
		case p.Type.Aggregated != nil:
			if p.DecisionStrategy != "AFFIRMATIVE" && len(p.Type.Aggregated.Policies) > 1 {
				return false // UNANIMOUS: only a caller admitted by all; not used here
			}
			for _, q := range p.Type.Aggregated.Policies {
				if admits(byName[q]) {
					return true
				}
			}
		}
		return false
	}
	for _, perm := range c.AuthorizationSettings.Permissions {
		if perm.Resource == resource && (perm.Scope == "" || perm.Scope == scope) && admits(byName[perm.Policy]) {
			return true
		}
	}
	return false
}

// defines reports whether the client's authorization settings hold resource.
func (c kcClient) defines(resource string) bool {
	for _, r := range c.AuthorizationSettings.Resources {
		if r.Name == resource {
			return true
		}
	}
	return false
}

type kcPolicy struct {
	ID               string `yaml:"id"`
	Name             string `yaml:"name"`
	Description      string `yaml:"description"`
	Logic            string `yaml:"logic"`
	DecisionStrategy string `yaml:"decisionStrategy"`
	Type             struct {
		Client *struct {
			Clients []string `yaml:"clients"`
		} `yaml:"client"`
		Group *struct {
			Groups []struct {
				ID string `yaml:"id"`
			} `yaml:"groups"`
		} `yaml:"group"`
		Aggregated *struct {
			Policies []string `yaml:"policies"`
		} `yaml:"aggregated"`
	} `yaml:"type"`
}

// types counts the policy's types (the CRD wants exactly one).
func (p kcPolicy) types() int {
	n := 0
	for _, set := range []bool{p.Type.Client != nil, p.Type.Group != nil, p.Type.Aggregated != nil} {
		if set {
			n++
		}
	}
	return n
}

type kcScope struct {
	ID          string `yaml:"id"`
	Name        string `yaml:"name"`
	DisplayName string `yaml:"displayName"`
}

type kcPermission struct {
	Name     string `yaml:"name"`
	Policy   string `yaml:"policy"`
	Resource string `yaml:"resource"`
	Scope    string `yaml:"scope"`
}

// keycloakResource is internal/topology's naming of Keycloak resources, and
// prom-keycloak-proxy's HUB (its hub key alone: every hub).
var keycloakResource = regexp.MustCompile(`^HUB(-[a-z0-9-]+?(-CLUSTER-[a-z0-9-]+?(-PROJECT-[a-z0-9-]+)?)?)?$`)

func decodeKeycloakAuthorization(t *testing.T, o object) keycloakAuthorization {
	t.Helper()
	var k keycloakAuthorization
	dec := yaml.NewDecoder(bytes.NewReader(o.raw))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&k), "%s: not within the fields used", o.key())
	return k
}

// checkKeycloakAuthorization: permissions name policies, resources and
// scopes the same client defines; resources are named as the collector
// computes them; one permission per resource and scope (the resource
// server's UNANIMOUS default would otherwise need all of them to grant).
func checkKeycloakAuthorization(t *testing.T, o object) {
	k := decodeKeycloakAuthorization(t, o)
	assert.Equal(t, "keycloak.nerc.mghpcc.org/v1", k.APIVersion)
	assert.NotEmpty(t, k.Spec.Keycloak.BaseURL)
	assert.NotEmpty(t, k.Spec.Realm.ID)
	for _, c := range k.Spec.Realm.Clients {
		a := c.AuthorizationSettings
		scopes, resources, policies := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, s := range a.Scopes {
			scopes[s.Name] = true
		}
		for _, r := range a.Resources {
			resources[r.Name] = true
			assert.Regexp(t, keycloakResource, r.Name, "client %s: resource name", c.ID)
			for _, s := range r.Scopes {
				assert.True(t, scopes[s.Name], "client %s: resource %s: scope %s is defined", c.ID, r.Name, s.Name)
			}
		}
		for _, p := range a.Policies {
			assert.Equal(t, 1, p.types(), "client %s: policy %s is of one type", c.ID, p.Name)
			assert.Contains(t, []string{"POSITIVE", "NEGATIVE"}, p.Logic, "client %s: policy %s: logic", c.ID, p.Name)
			assert.Contains(t, []string{"UNANIMOUS", "AFFIRMATIVE"}, p.DecisionStrategy, "client %s: policy %s: decisionStrategy", c.ID, p.Name)
			if p.Type.Aggregated != nil {
				for _, q := range p.Type.Aggregated.Policies {
					// Created in order: what it aggregates comes first.
					assert.True(t, policies[q], "client %s: aggregated policy %s: policy %s is defined before it", c.ID, p.Name, q)
				}
			}
			policies[p.Name] = true
			policies[p.ID] = true
		}
		perResource := map[string]int{}
		for _, p := range a.Permissions {
			perResource[p.Resource+"#"+p.Scope]++
			assert.Equal(t, 1, perResource[p.Resource+"#"+p.Scope], "client %s: one permission per resource and scope: %s#%s", c.ID, p.Resource, p.Scope)
			assert.True(t, policies[p.Policy], "client %s: permission %s: policy %s is defined", c.ID, p.Name, p.Policy)
			assert.True(t, resources[p.Resource], "client %s: permission %s: resource %s is defined", c.ID, p.Name, p.Resource)
			assert.True(t, p.Scope == "" || scopes[p.Scope], "client %s: permission %s: scope %s is defined", c.ID, p.Name, p.Scope)
		}
	}
}

// TestNERC checks the NERC overlays against each other: the names of the
// issue (hub moc, realm NERC, clusters nerc-ocp-prod, nerc-ocp-test), the
// gateway's per-project authorization and ClickHouse replication, and the
// KeycloakAuthorization granting each caller the resources the gateway will
// ask about, on the resource server the gateway asks, in the realm the
// collectors use.
func TestNERC(t *testing.T) {
	dir := filepath.Join(root, "deploy", "overlays", "nerc")
	envOf := func(overlay, cm string) map[string]any {
		for _, o := range render(t, filepath.Join(dir, overlay)) {
			if o.Kind == "ConfigMap" && o.Name == cm {
				return get(o.m, "data").(map[string]any)
			}
		}
		t.Fatalf("%s renders no ConfigMap %s", overlay, cm)
		return nil
	}
	gw := envOf("obs-gateway", "ai-telemetry-gateway-env")
	assert.Equal(t, "NERC", gw["KEYCLOAK_REALM"])
	assert.Equal(t, "moc", gw["HUB_NAME"])

	// The gateway's config, its ${env:...} resolved with its ConfigMap.
	var gwConfig map[string]any
	for _, o := range render(t, filepath.Join(dir, "obs-gateway")) {
		if o.Kind == "OpenTelemetryCollector" {
			b, err := yaml.Marshal(get(o.m, "spec", "config"))
			require.NoError(t, err)
			resolved := envRef.ReplaceAllStringFunc(string(b), func(m string) string {
				sub := envRef.FindStringSubmatch(m)
				if v, ok := gw[sub[1]]; ok {
					return str(v)
				}
				return strings.TrimPrefix(sub[2], ":-")
			})
			require.NoError(t, yaml.Unmarshal([]byte(resolved), &gwConfig))
		}
	}
	require.NotNil(t, gwConfig)
	authz := get(gwConfig, "extensions", "keycloakauth", "authorization")
	assert.Equal(t, "resource", str(get(authz, "mode")), "the gateway decides per resource")
	assert.Equal(t, "keycloakauth", str(get(gwConfig, "receivers", "alertmanager", "authorizer")), "alerts are authorized per project")
	for id, p := range get(gwConfig, "service", "pipelines").(map[string]any) {
		if !slices.Contains(strs(get(p, "receivers")), "otlp") {
			continue
		}
		i := slices.IndexFunc(strs(get(p, "processors")), func(id string) bool { return componentType(id) == "projectauthz" })
		if assert.GreaterOrEqual(t, i, 0, "pipeline %s: OTLP data is authorized per project", id) {
			assert.Equal(t, "moc", str(get(gwConfig, "processors", strs(get(p, "processors"))[i], "hub")), "pipeline %s", id)
		}
	}
	ch := get(gwConfig, "exporters", "clickhouse")
	assert.NotEmpty(t, get(ch, "cluster_name"), "ClickHouse tables are created ON CLUSTER")
	assert.True(t, strings.HasPrefix(str(get(ch, "table_engine", "name")), "Replicated"), "replicated table engine")

	var kas []keycloakAuthorization
	for _, o := range render(t, filepath.Join(dir, "keycloak")) {
		if o.Kind == "KeycloakAuthorization" {
			kas = append(kas, decodeKeycloakAuthorization(t, o))
		}
	}
	require.Len(t, kas, 1)
	ka := kas[0]
	assert.Equal(t, gw["KEYCLOAK_REALM"], ka.Spec.Realm.ID, "the realm the gateway validates tokens of")
	assert.Equal(t, gw["KEYCLOAK_URL"], ka.Spec.Keycloak.BaseURL, "the Keycloak the gateway uses")
	require.Len(t, ka.Spec.Realm.Clients, 1)
	rs := ka.Spec.Realm.Clients[0]
	assert.Equal(t, gw["KEYCLOAK_AUDIENCE"], rs.ID, "the resource server is the agents' token audience")
	assert.Equal(t, rs.ID, str(get(authz, "resource_server")), "the gateway asks the resource server holding the grants")
	scope := str(get(authz, "scope"))

	grants := func(caller, resource string) bool { return rs.grants(caller, resource, scope) }
	const project = "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a"
	clusters := map[string]string{"prod-agent": "nerc-ocp-prod", "test-agent": "nerc-ocp-test"}
	for overlay, cluster := range clusters {
		env := envOf(overlay, "ai-telemetry-agent-env")
		assert.Equal(t, cluster, env["CLUSTER_NAME"], overlay)
		assert.Equal(t, "moc", env["HUB_NAME"], overlay)
		assert.Equal(t, "NERC", env["KEYCLOAK_REALM"], overlay)
		assert.Equal(t, gw["KEYCLOAK_URL"], env["KEYCLOAK_URL"], overlay)
		client := str(env["KEYCLOAK_CLIENT_ID"])
		resource := "HUB-" + str(env["HUB_NAME"]) + "-CLUSTER-" + cluster
		assert.True(t, grants(client, resource), "%s: client %s may write %s", overlay, client, resource)
		assert.True(t, grants("hub-alertmanager", resource), "the hub's Alertmanager may post alerts of %s", cluster)
		assert.False(t, grants(client, "HUB-moc"), "%s: client %s may not write the whole hub", overlay, client)
		for _, other := range clusters {
			if other != cluster {
				assert.False(t, grants(client, "HUB-moc-CLUSTER-"+other), "%s: client %s may not write %s", overlay, client, other)
			}
		}
		assert.Equal(t, cluster == "nerc-ocp-prod", grants(client, project), "%s: client %s writes %s only on its cluster", overlay, client, project)
	}
	assert.True(t, grants("hub-alertmanager", "HUB-moc"), "the hub's Alertmanager may post alerts of the hub")
	assert.True(t, grants("hub-alertmanager", project), "the hub's Alertmanager may post alerts of team-a")
	assert.True(t, grants("group:team-a-writers", project), "the sample team writes its project")
	assert.False(t, grants("group:team-a-writers", "HUB-moc-CLUSTER-nerc-ocp-prod"), "the sample team writes nothing else")

	// What prom-keycloak-proxy grants the promql receiver, on the proxy's own
	// client: every cluster the receiver queries, not the whole hub; HUB and
	// HUB-{hub} defined, as the proxy asks for them on every request.
	var proxyKAs []keycloakAuthorization
	for _, o := range render(t, filepath.Join(dir, "keycloak", "prom-keycloak-proxy")) {
		if o.Kind == "KeycloakAuthorization" {
			proxyKAs = append(proxyKAs, decodeKeycloakAuthorization(t, o))
		}
	}
	require.Len(t, proxyKAs, 1)
	pka := proxyKAs[0]
	assert.Equal(t, gw["KEYCLOAK_REALM"], pka.Spec.Realm.ID, "the realm of the promql receiver's token")
	assert.Equal(t, gw["KEYCLOAK_URL"], pka.Spec.Keycloak.BaseURL)
	require.Len(t, pka.Spec.Realm.Clients, 1)
	proxy := pka.Spec.Realm.Clients[0]
	assert.NotEqual(t, rs.ID, proxy.ID, "the proxy decides on its own client, not the gateway's")
	reader := str(gw["PROM_PROXY_CLIENT_ID"])
	assert.Equal(t, reader, str(get(gwConfig, "extensions", "keycloakauth/prometheus", "client", "client_id")))
	assert.Contains(t, strs(get(gwConfig, "extensions", "keycloakauth/prometheus", "client", "scopes")), "openid",
		"the proxy calls userinfo with the token")
	promqlClusters := strs(get(gwConfig, "receivers", "promql", "clusters"))
	require.NotEmpty(t, promqlClusters)
	for _, c := range promqlClusters {
		assert.True(t, proxy.grants(reader, "HUB-moc-CLUSTER-"+c, "GET"), "the proxy lets %s read %s", reader, c)
	}
	for _, r := range []string{"HUB", "HUB-moc"} {
		assert.True(t, proxy.defines(r), "the proxy's client defines %s", r)
		assert.False(t, proxy.grants(reader, r, "GET"), "%s may not read the whole hub (%s)", reader, r)
	}
}

// TestNERCSite checks the NERC site against its Keycloak pieces: the site
// validates tokens of the realm and Keycloak the gateway uses, its audience
// is the client whose authorization settings hold the read grants (created
// by hand from client-ai-telemetry-site.json), the browser login is a
// confidential client of its own without a service account whose tokens
// carry that audience; readers read their project only, managers their
// cluster or the hub, each with the scope the site's read side maps.
func TestNERCSite(t *testing.T) {
	dir := filepath.Join(root, "deploy", "overlays", "nerc")
	env := map[string]any{}
	var cfg map[string]any
	objs := render(t, filepath.Join(dir, "obs-site"))
	for _, o := range objs {
		if o.Kind == "ConfigMap" && o.Name == "ai-telemetry-site-env" {
			env = get(o.m, "data").(map[string]any)
		}
	}
	for _, o := range objs {
		if o.Kind == "OpenTelemetryCollector" {
			b, err := yaml.Marshal(get(o.m, "spec", "config"))
			require.NoError(t, err)
			resolved := envRef.ReplaceAllStringFunc(string(b), func(m string) string {
				sub := envRef.FindStringSubmatch(m)
				if v, ok := env[sub[1]]; ok {
					return str(v)
				}
				return strings.TrimPrefix(sub[2], ":-")
			})
			require.NoError(t, yaml.Unmarshal([]byte(resolved), &cfg))
		}
	}
	require.NotNil(t, cfg, "obs-site renders the site's collector")
	var gwEnv map[string]any
	for _, o := range render(t, filepath.Join(dir, "obs-gateway")) {
		if o.Kind == "ConfigMap" && o.Name == "ai-telemetry-gateway-env" {
			gwEnv = get(o.m, "data").(map[string]any)
		}
	}
	kc := get(cfg, "extensions", "keycloakauth")
	assert.Equal(t, gwEnv["KEYCLOAK_URL"], get(kc, "server_url"), "the Keycloak the gateway uses")
	assert.Equal(t, "NERC", get(kc, "realm"))
	authz := get(kc, "authorization")
	assert.Equal(t, "resource", str(get(authz, "mode")))
	audience := str(env["KEYCLOAK_SITE_AUDIENCE"])
	assert.Equal(t, []any{audience}, get(kc, "server", "audiences"), "the site validates tokens of its own audience")
	assert.NotEqual(t, gwEnv["KEYCLOAK_AUDIENCE"], audience, "not the gateway's: a writer's token does not read the site")
	assert.Equal(t, audience, str(get(authz, "resource_server")))
	assert.Equal(t, "keycloakauth", str(get(cfg, "extensions", "gpu_query", "auth")))

	var kas []keycloakAuthorization
	for _, o := range render(t, filepath.Join(dir, "keycloak", "site")) {
		if o.Kind == "KeycloakAuthorization" {
			kas = append(kas, decodeKeycloakAuthorization(t, o))
		}
	}
	require.Len(t, kas, 1)
	ka := kas[0]
	assert.Equal(t, "NERC", ka.Spec.Realm.ID, "the realm the site validates tokens of")
	assert.Equal(t, gwEnv["KEYCLOAK_URL"], ka.Spec.Keycloak.BaseURL, "the Keycloak the site uses")
	require.Len(t, ka.Spec.Realm.Clients, 1)
	rs := ka.Spec.Realm.Clients[0]
	assert.Equal(t, audience, rs.ID, "the grants are on the site's resource server")

	readScope, manage := str(get(authz, "read_scope")), str(get(authz, "manager_scope"))
	require.NotEmpty(t, readScope)
	require.NotEmpty(t, manage)
	const (
		project = "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a"
		prod    = "HUB-moc-CLUSTER-nerc-ocp-prod"
		test    = "HUB-moc-CLUSTER-nerc-ocp-test"
	)
	assert.True(t, rs.grants("group:team-a", project, readScope), "team-a reads its project")
	for _, r := range []string{"HUB-moc", prod, test} {
		assert.False(t, rs.grants("group:team-a", r, manage), "team-a reads nothing more (%s)", r)
	}
	assert.True(t, rs.grants("group:moc-managers", "HUB-moc", manage), "the hub's managers read the hub")
	assert.True(t, rs.grants("group:nerc-ocp-prod-managers", prod, manage), "prod's managers read prod")
	assert.False(t, rs.grants("group:nerc-ocp-prod-managers", test, manage), "prod's managers do not read test")
	assert.False(t, rs.grants("group:nerc-ocp-prod-managers", "HUB-moc", manage), "prod's managers do not read the hub")
	assert.True(t, rs.grants("group:nerc-ocp-test-managers", test, manage), "test's managers read test")
	assert.False(t, rs.grants("group:nerc-ocp-test-managers", prod, manage), "test's managers do not read prod")

	// The clients, created by hand (kcadm.sh create clients -f).
	type kcClientRep struct {
		ClientID                     string `json:"clientId"`
		PublicClient                 bool   `json:"publicClient"`
		StandardFlowEnabled          bool   `json:"standardFlowEnabled"`
		DirectAccessGrantsEnabled    bool   `json:"directAccessGrantsEnabled"`
		ServiceAccountsEnabled       bool   `json:"serviceAccountsEnabled"`
		AuthorizationServicesEnabled bool   `json:"authorizationServicesEnabled"`
		ProtocolMappers              []struct {
			ProtocolMapper string            `json:"protocolMapper"`
			Config         map[string]string `json:"config"`
		} `json:"protocolMappers"`
	}
	clientRep := func(rel string) kcClientRep {
		var c kcClientRep
		require.NoError(t, json.Unmarshal(read(t, rel), &c), rel)
		return c
	}
	server := clientRep("deploy/overlays/nerc/keycloak/site/client-ai-telemetry-site.json")
	assert.Equal(t, audience, server.ClientID, "the resource server is the site's audience")
	assert.False(t, server.PublicClient, "confidential")
	assert.True(t, server.AuthorizationServicesEnabled, "the resource server of the read grants")
	// Keycloak 26.7.3 refuses authorization services without a service
	// account ("Client does not have a service account"); no flow issues
	// user tokens to it.
	assert.True(t, server.ServiceAccountsEnabled, "Keycloak requires it for authorization services")
	assert.False(t, server.StandardFlowEnabled || server.DirectAccessGrantsEnabled, "nobody logs in to the resource server")
	login := clientRep("deploy/overlays/nerc/keycloak/site/client-ai-telemetry-site-login.json")
	assert.NotEqual(t, audience, login.ClientID)
	assert.False(t, login.PublicClient, "confidential")
	assert.True(t, login.StandardFlowEnabled, "the browser login")
	assert.False(t, login.ServiceAccountsEnabled, "no token of its own: the site reads as its users")
	assert.False(t, login.DirectAccessGrantsEnabled, "no passwords through the site")
	aud := false
	for _, m := range login.ProtocolMappers {
		aud = aud || m.ProtocolMapper == "oidc-audience-mapper" && m.Config["included.client.audience"] == audience
	}
	assert.True(t, aud, "its login's tokens carry the site in aud")
}

// placeholderValue is a value the repository does not know, to be filled in.
// An image's version tag is left out (it follows dist.version).
var (
	placeholderValue = regexp.MustCompile(`(?i)[A-Za-z0-9_.:/-]*CHANGE[-_]ME[A-Za-z0-9_.:/-]*`)
	versionTag       = regexp.MustCompile(`:[0-9]+\.[0-9]+\.[0-9]+$`)
)

// TestNERCPlaceholders: every value the NERC overlays still leave to be filled
// in (CHANGE-ME, CHANGE_ME, or change-me where the value must be a
// Kubernetes name, which is lower case), their own or inherited from the generic
// overlays, is listed in docs/deploy.md, so none is found only at deploy time.
func TestNERCPlaceholders(t *testing.T) {
	docs := string(read(t, "docs/deploy.md"))
	found := map[string]bool{}
	for _, dir := range overlays(t) {
		if !strings.Contains(dir, string(filepath.Separator)+"nerc"+string(filepath.Separator)) {
			continue
		}
		for _, o := range render(t, dir) {
			for _, v := range placeholderValue.FindAllString(string(o.raw), -1) {
				v = versionTag.ReplaceAllString(v, "")
				found[v] = true
				assert.Contains(t, docs, v, "%s: placeholder %s is listed in docs/deploy.md", o.key(), v)
			}
		}
	}
	assert.NotEmpty(t, found, "the NERC overlays leave some values to be filled in")
	t.Logf("placeholders: %v", slices.Sorted(maps.Keys(found)))
}
