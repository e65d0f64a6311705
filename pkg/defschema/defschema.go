// Package defschema is the parameter reference of a step definition: a
// JSON Schema (draft 2020-12) of its CUE parameter, and the Markdown table
// `stepflow def doc` prints from it.
//
// The schema is derived in pkg/eval, the one package that imports CUE
// (eval.Evaluator.ParameterSchema): CUE's own encoding/jsonschema gives the
// types, enums, disjunctions (anyOf), required fields, nested structs,
// lists and closedness, and eval adds what that encoder leaves out:
// defaults, descriptions (KubeVela's `// +usage=` comments, else the plain
// comment) and the order of the fields in the template. This package holds
// only the data and its renderings, so the CLI, the controller and a UI
// can read a schema without CUE.
//
// The schema documents the parameter; it is not what a run's properties
// are checked against. That is the CUE parameter itself
// (eval.Evaluator.ValidateParameters), which is the source of truth.
package defschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Draft is the JSON Schema dialect of a Schema's $schema.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// MaxBytes bounds the JSON of a schema stored on a definition's status: a
// parameter whose schema is larger is documented by `stepflow def doc`
// only.
const MaxBytes = 64 << 10

// Schema is one node of a JSON Schema (draft 2020-12), the subset CUE's
// encoder writes plus the keywords this package adds (default,
// description). Keywords it does not model are dropped when a schema is
// decoded.
type Schema struct {
	SchemaURI   string `json:"$schema,omitempty"`
	Type        string `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
	// Default is the field's CUE default (*value), as JSON.
	Default json.RawMessage   `json:"default,omitempty"`
	Const   json.RawMessage   `json:"const,omitempty"`
	Enum    []json.RawMessage `json:"enum,omitempty"`

	Properties map[string]*Schema `json:"properties,omitempty"`
	Required   []string           `json:"required,omitempty"`
	// AdditionalProperties is false for a closed struct, a schema for a
	// pattern constraint ([string]: T) and true for an explicit `...`.
	AdditionalProperties *Additional `json:"additionalProperties,omitempty"`
	Items                *Schema     `json:"items,omitempty"`

	AnyOf []*Schema `json:"anyOf,omitempty"`
	OneOf []*Schema `json:"oneOf,omitempty"`
	AllOf []*Schema `json:"allOf,omitempty"`

	Minimum          *float64           `json:"minimum,omitempty"`
	Maximum          *float64           `json:"maximum,omitempty"`
	ExclusiveMinimum *float64           `json:"exclusiveMinimum,omitempty"`
	ExclusiveMaximum *float64           `json:"exclusiveMaximum,omitempty"`
	Pattern          string             `json:"pattern,omitempty"`
	MinLength        *int               `json:"minLength,omitempty"`
	MaxLength        *int               `json:"maxLength,omitempty"`
	MinItems         *int               `json:"minItems,omitempty"`
	MaxItems         *int               `json:"maxItems,omitempty"`
	Ref              string             `json:"$ref,omitempty"`
	Defs             map[string]*Schema `json:"$defs,omitempty"`

	// Order lists the properties in the order the template declares them,
	// for the Markdown table; it is not part of the JSON (a schema read
	// back from JSON lists its properties by name).
	Order []string `json:"-"`
}

// Additional is the value of additionalProperties: a boolean or a schema.
type Additional struct {
	// Allowed is the boolean form; it is ignored when Schema is set.
	Allowed bool
	Schema  *Schema
}

// MarshalJSON implements json.Marshaler.
func (a Additional) MarshalJSON() ([]byte, error) {
	if a.Schema != nil {
		return json.Marshal(a.Schema)
	}
	return json.Marshal(a.Allowed)
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Additional) UnmarshalJSON(b []byte) error {
	switch t := string(bytes.TrimSpace(b)); t {
	case "true", "false":
		*a = Additional{Allowed: t == "true"}
		return nil
	}
	a.Schema = new(Schema)
	return json.Unmarshal(b, a.Schema)
}

// Closed reports whether s admits no properties besides those it lists.
func (s *Schema) Closed() bool {
	return s.AdditionalProperties != nil && s.AdditionalProperties.Schema == nil && !s.AdditionalProperties.Allowed
}

// names returns the names of s's properties, in template order when known
// and by name otherwise.
func (s *Schema) names() []string {
	if len(s.Order) == len(s.Properties) {
		return s.Order
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Compact returns the schema's JSON on one line.
func (s *Schema) Compact() ([]byte, error) { return json.Marshal(s) }

// Bounded returns the schema's JSON, or an error saying how large it is when
// it is over MaxBytes.
func (s *Schema) Bounded() ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("the parameter's JSON Schema is %d bytes, over the %d bytes kept on a definition's status", len(b), MaxBytes)
	}
	return b, nil
}

// TypeName is the type column of the Markdown table: a JSON Schema type,
// [T] for a list, map[string]T for a pattern struct, A|B for a disjunction
// and the values of an enum.
func (s *Schema) TypeName() string {
	switch {
	case s == nil:
		return "any"
	case s.Ref != "":
		name := s.Ref[strings.LastIndex(s.Ref, "/")+1:]
		if u, err := url.PathUnescape(name); err == nil {
			name = u
		}
		return name
	case len(s.Const) > 0:
		return string(s.Const)
	case len(s.Enum) > 0:
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vals[i] = string(v)
		}
		return strings.Join(vals, " \\| ")
	case len(s.AnyOf) > 0 || len(s.OneOf) > 0:
		alts := append(append([]*Schema{}, s.AnyOf...), s.OneOf...)
		names := make([]string, len(alts))
		for i, a := range alts {
			names[i] = a.TypeName()
		}
		return strings.Join(names, " \\| ")
	case len(s.AllOf) > 0 && s.Type == "":
		// CUE writes int & >0 as allOf[{type: number}, {type: integer, ...}]:
		// the narrowest type named wins.
		name := "any"
		for _, a := range s.AllOf {
			if n := a.TypeName(); n != "any" {
				name = n
			}
		}
		return name
	case s.Type == "array":
		return "[" + s.Items.TypeName() + "]"
	case s.Type == "object" && len(s.Properties) == 0 && s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
		return "map[string]" + s.AdditionalProperties.Schema.TypeName()
	case s.Type == "":
		return "any"
	}
	return s.Type
}
