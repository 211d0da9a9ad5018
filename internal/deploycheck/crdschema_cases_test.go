package deploycheck

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// A small CRD in the shapes the real ones use: nested properties, a map
// (additionalProperties), a free-form field (x-kubernetes-preserve-unknown-
// fields), an embedded resource, a default, int-or-string, an enum and required fields.
const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.org
spec:
  group: example.org
  names: {kind: Widget}
  versions:
    - name: v1alpha1
      served: false
      schema:
        openAPIV3Schema: {type: object}
    - name: v1
      served: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            apiVersion: {type: string}
            kind: {type: string}
            metadata: {type: object}
            spec:
              type: object
              required: [mode]
              # The Route's shape: a rule that holds only with the default filled in.
              anyOf:
                - not: {properties: {host: {maxLength: 0}}}
                - not: {properties: {wildcard: {enum: [Subdomain]}}}
              properties:
                mode: {type: string, enum: [deployment, statefulset]}
                host: {type: string}
                wildcard: {type: string, default: None}
                replicas: {type: integer, format: int32, minimum: 0}
                port:
                  anyOf: [{type: integer}, {type: string}]
                  x-kubernetes-int-or-string: true
                labels:
                  type: object
                  additionalProperties: {type: string}
                config:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                  properties:
                    service:
                      type: object
                      properties:
                        pipelines: {type: array, items: {type: string}}
                containers:
                  type: array
                  items:
                    type: object
                    required: [name]
                    properties:
                      name: {type: string}
                template:
                  type: object
                  x-kubernetes-embedded-resource: true
                  properties:
                    spec: {type: object, properties: {size: {type: integer}}}
`

func TestCRDSchemaValidation(t *testing.T) {
	vs, err := parseCRDs("widget", []byte(widgetCRD))
	require.NoError(t, err)
	require.Len(t, vs, 1, "only the served version")
	crd := vs[0]
	assert.Equal(t, "example.org/v1", crd.apiVersion())
	assert.Equal(t, "Widget", crd.kind)

	tests := []struct {
		name string
		spec string   // the object's spec, YAML
		meta string   // the object's metadata, YAML (default: a name)
		want []string // substrings, one per expected problem; none: valid
	}{
		{name: "valid", spec: `{mode: statefulset, replicas: 2, port: 8080, labels: {a: b},
			config: {receivers: {otlp: {}}, service: {pipelines: [x]}}, containers: [{name: c}],
			template: {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {size: 1}}}`},
		{name: "subdomain wildcard with a host", spec: `{mode: deployment, wildcard: Subdomain, host: h}`},
		{name: "subdomain wildcard without a host", spec: `{mode: deployment, wildcard: Subdomain}`, want: []string{"(not)", "(anyOf)"}},
		{name: "int-or-string as string", spec: `{mode: deployment, port: http}`},
		{name: "unknown field", spec: `{mode: deployment, replica: 2}`, want: []string{".spec.replica: unknown field"}},
		{
			name: "unknown nested field", spec: `{mode: deployment, containers: [{name: c, image: i}]}`,
			want: []string{".spec.containers[0].image: unknown field"},
		},
		{
			name: "preserved free-form fields, checked where declared", spec: `{mode: deployment,
			config: {anything: {goes: 1}, service: {pipeline: [x]}}}`,
			want: []string{".spec.config.service.pipeline: unknown field"},
		},
		{name: "map values checked", spec: `{mode: deployment, labels: {a: 1}}`, want: []string{"spec.labels.a"}},
		{name: "wrong type", spec: `{mode: deployment, replicas: two}`, want: []string{"spec.replicas"}},
		{name: "bound", spec: `{mode: deployment, replicas: -1}`, want: []string{"spec.replicas"}},
		{name: "enum", spec: `{mode: sidecars}`, want: []string{"spec.mode"}},
		{name: "required", spec: `{replicas: 1}`, want: []string{"spec.mode"}},
		{name: "required in a list item", spec: `{mode: deployment, containers: [{}]}`, want: []string{"name"}},
		{
			name: "embedded resource", spec: `{mode: deployment, template: {kind: Pod, metadata: {nam: p}, spec: {size: 1, color: red}}}`,
			want: []string{".spec.template.metadata: unknown field \"nam\"", ".spec.template.spec.color: unknown field"},
		},
		{
			name: "root metadata is ObjectMeta", spec: `{mode: deployment}`, meta: `{name: w, label: {a: b}}`,
			want: []string{".metadata: unknown field \"label\""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := tt.meta
			if meta == "" {
				meta = "{name: w}"
			}
			var obj map[string]any
			require.NoError(t, yaml.Unmarshal([]byte("apiVersion: example.org/v1\nkind: Widget\nmetadata: "+meta+"\nspec: "+tt.spec), &obj))
			v, err := toJSONValue(obj)
			require.NoError(t, err)
			problems := crd.validateObject(v)
			if len(tt.want) == 0 {
				assert.Empty(t, problems)
				return
			}
			require.Len(t, problems, len(tt.want), "%q", problems)
			for i, w := range tt.want {
				assert.Contains(t, problems[i], w)
			}
		})
	}
}

func TestParseCRDsRefusesOtherKinds(t *testing.T) {
	_, err := parseCRDs("cm", []byte("apiVersion: v1\nkind: ConfigMap\n"))
	require.ErrorIs(t, err, errNotCRD)
	_, err = parseCRDs("broken", []byte("kind: [\n"))
	require.Error(t, err)
}
