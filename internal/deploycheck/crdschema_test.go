package deploycheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
)

// A CustomResourceDefinition's schema for one served version, and the check
// of an object against it as the API server makes it on create:
//
//   - values: types, required fields, enums, patterns, formats, bounds, through
//     kube-openapi's validator, the one the API server itself runs on custom
//     resources (apiextensions-apiserver wraps it; that module is not in our
//     graph and would bring the whole apiserver);
//   - unknown fields: the API server prunes them silently (or refuses them with
//     fieldValidation=Strict), so a misspelt field would vanish from the cluster;
//     here it is an error. unknownFields follows the apiextensions pruning rules
//     (properties, additionalProperties, x-kubernetes-preserve-unknown-fields,
//     x-kubernetes-embedded-resource, ObjectMeta at the root).
//
// Not checked: CEL rules (x-kubernetes-validations) and list-type uniqueness
// (x-kubernetes-list-type: set/map), which need the API server's CEL library.

// crdVersion is one version of a CRD: its GVK and openAPIV3Schema.
type crdVersion struct {
	group, version, kind string
	source               string // where the CRD was read, for messages
	schema               *spec.Schema
}

func (c crdVersion) apiVersion() string { return c.group + "/" + c.version }

// crdFile is the part of a CustomResourceDefinition we read.
type crdFile struct {
	Kind string `yaml:"kind"`
	Spec struct {
		Group string `yaml:"group"`
		Names struct {
			Kind string `yaml:"kind"`
		} `yaml:"names"`
		Versions []struct {
			Name   string `yaml:"name"`
			Served bool   `yaml:"served"`
			Schema struct {
				OpenAPIV3Schema any `yaml:"openAPIV3Schema"`
			} `yaml:"schema"`
		} `yaml:"versions"`
	} `yaml:"spec"`
}

var errNotCRD = errors.New("not a CustomResourceDefinition")

// parseCRDs reads every CustomResourceDefinition of a (multi-document) YAML
// file: one crdVersion per served version with a schema.
func parseCRDs(source string, b []byte) ([]crdVersion, error) {
	var out []crdVersion
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var f crdFile
		err := dec.Decode(&f)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if f.Kind == "" {
			continue // an empty document
		}
		if f.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("%s: %w (kind %s)", source, errNotCRD, f.Kind)
		}
		for _, v := range f.Spec.Versions {
			if !v.Served || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			j, err := json.Marshal(v.Schema.OpenAPIV3Schema)
			if err != nil {
				return nil, fmt.Errorf("%s: %s/%s: %w", source, f.Spec.Names.Kind, v.Name, err)
			}
			s := new(spec.Schema)
			if err := json.Unmarshal(j, s); err != nil {
				return nil, fmt.Errorf("%s: %s/%s: %w", source, f.Spec.Names.Kind, v.Name, err)
			}
			out = append(out, crdVersion{group: f.Spec.Group, version: v.Name, kind: f.Spec.Names.Kind, source: source, schema: s})
		}
	}
	return out, nil
}

// toJSONValue turns a YAML-decoded object into what the API server
// validates: JSON's types (float64 numbers, map[string]any objects).
func toJSONValue(v any) (any, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	return out, json.Unmarshal(j, &out)
}

// validateObject checks a decoded object (JSON types) against c's schema,
// after filling in the schema's defaults as the API server does (some
// schemas' rules rely on them), and returns one message per problem, sorted.
// obj is changed by the defaults.
func (c crdVersion) validateObject(obj any) []string {
	var problems []string
	applyDefaults(c.schema, obj)
	res := validate.NewSchemaValidator(c.schema, nil, "", strfmt.Default).Validate(obj)
	for _, err := range res.Errors {
		problems = append(problems, err.Error())
	}
	unknownFields(c.schema, obj, "", true, &problems)
	slices.Sort(problems)
	return problems
}

// applyDefaults sets every absent property that has a default, inside the
// objects present, as apiextensions' structural defaulting does.
func applyDefaults(s *spec.Schema, v any) {
	if s == nil {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, prop := range s.Properties {
			if _, ok := x[k]; !ok && prop.Default != nil {
				d, err := toJSONValue(prop.Default)
				if err == nil {
					x[k] = d
				}
			}
		}
		for k, e := range x {
			if prop, ok := s.Properties[k]; ok {
				applyDefaults(&prop, e)
			} else if ap := s.AdditionalProperties; ap != nil && ap.Schema != nil {
				applyDefaults(ap.Schema, e)
			}
		}
	case []any:
		if s.Items != nil && s.Items.Schema != nil {
			for _, e := range x {
				applyDefaults(s.Items.Schema, e)
			}
		}
	}
}

func boolExtension(s *spec.Schema, name string) bool {
	v, _ := s.Extensions.GetBool(name)
	return v
}

// unknownFields appends, for every field of v that s does not declare and
// that the API server would prune, "path: unknown field". root (or an
// x-kubernetes-embedded-resource) admits apiVersion, kind and an ObjectMeta
// metadata, as the API server does.
func unknownFields(s *spec.Schema, v any, path string, root bool, out *[]string) {
	if s == nil {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		resource := root || boolExtension(s, "x-kubernetes-embedded-resource")
		preserve := boolExtension(s, "x-kubernetes-preserve-unknown-fields")
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := path + "." + k
			if resource && k == "metadata" {
				checkObjectMeta(x[k], p, out)
				continue
			}
			if prop, ok := s.Properties[k]; ok {
				unknownFields(&prop, x[k], p, false, out)
				continue
			}
			if resource && (k == "apiVersion" || k == "kind") {
				continue
			}
			if ap := s.AdditionalProperties; ap != nil && (ap.Allows || ap.Schema != nil) {
				unknownFields(ap.Schema, x[k], p, false, out)
				continue
			}
			if !preserve {
				*out = append(*out, p+": unknown field")
			}
		}
	case []any:
		if s.Items == nil || s.Items.Schema == nil {
			return
		}
		for i, e := range x {
			unknownFields(s.Items.Schema, e, fmt.Sprintf("%s[%d]", path, i), false, out)
		}
	}
}

// checkObjectMeta: metadata holds ObjectMeta's fields only (the API server
// decodes it strictly into ObjectMeta whatever the CRD says).
func checkObjectMeta(v any, path string, out *[]string) {
	j, err := json.Marshal(v)
	if err != nil {
		*out = append(*out, path+": "+err.Error())
		return
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var m metav1.ObjectMeta
	if err := dec.Decode(&m); err != nil {
		*out = append(*out, path+": "+strings.TrimPrefix(err.Error(), "json: "))
	}
}
