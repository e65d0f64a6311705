package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// The apiVersion and kind of an application configuration.
const (
	APIVersion = "core.oam.dev/v1alpha2"
	Kind       = "ApplicationConfiguration"
)

// The annotations of an ApplicationConfiguration that name the application.
const (
	AnnotationAppID           = "appId"
	AnnotationAppInstanceName = "appInstanceName"
)

// ApplicationConfiguration is SREWorks' application: its components, the
// policies that place and override them, global parameters and the
// workflow that deploys them. Fields Stepflow does not read (traits,
// dependencies, ...) are ignored here but kept in the stored configuration,
// which is the document exactly as given.
type ApplicationConfiguration struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
}

// Metadata is the part of the configuration's metadata Stepflow reads.
type Metadata struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Spec is the application itself.
type Spec struct {
	// ParameterValues are the global parameters: {{ Global.NAME }}
	// resolves to their values unless the run context overrides them.
	ParameterValues []ParameterValue `json:"parameterValues,omitempty"`
	Components      []Component      `json:"components,omitempty"`
	Policies        []Policy         `json:"policies,omitempty"`
	Workflow        *Workflow        `json:"workflow,omitempty"`
}

// ParameterValue is a named value; on a component, toFieldPaths say where
// in the component's properties it is written (e.g. "spec.values").
type ParameterValue struct {
	Name         string   `json:"name"`
	Value        any      `json:"value,omitempty"`
	ToFieldPaths []string `json:"toFieldPaths,omitempty"`
}

// Component is one component of the application.
type Component struct {
	// RevisionName is "TYPE|NAME|VERSION"; see ParseRevision.
	RevisionName    string           `json:"revisionName"`
	Scopes          []Scope          `json:"scopes,omitempty"`
	DataInputs      []DataInput      `json:"dataInputs,omitempty"`
	ParameterValues []ParameterValue `json:"parameterValues,omitempty"`
}

// Scope places a component; SREWorks' scopes are Namespaces (and Stages,
// Clusters), named by scopeRef.
type Scope struct {
	ScopeRef ScopeRef `json:"scopeRef"`
}

// ScopeRef names the scope object.
type ScopeRef struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
}

// DataInput writes a value produced elsewhere (an earlier component's data
// output, or a Global) into the component's properties.
type DataInput struct {
	ValueFrom    DataInputSource `json:"valueFrom"`
	ToFieldPaths []string        `json:"toFieldPaths,omitempty"`
}

// DataInputSource names the data output a DataInput reads.
type DataInputSource struct {
	DataOutputName string `json:"dataOutputName"`
}

// The policy types Stepflow understands.
const (
	PolicyTopology = "topology"
	PolicyOverride = "override"
)

// Policy is a named placement (topology) or change (override) that
// workflow steps apply to the components they deploy. Properties hold the
// type's fields; Topology and Override decode them.
type Policy struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Properties json.RawMessage `json:"properties,omitempty"`
}

// TopologyPolicy says where components go: a namespace, and clusters by
// name (none: the cluster the run is in).
type TopologyPolicy struct {
	Namespace string   `json:"namespace,omitempty"`
	Clusters  []string `json:"clusters,omitempty"`
}

// OverridePolicy changes the parameter values of some components.
type OverridePolicy struct {
	Components []Component `json:"components"`
}

// Topology decodes a topology policy's properties.
func (p Policy) Topology() (TopologyPolicy, error) {
	var t TopologyPolicy
	return t, p.decode(PolicyTopology, &t)
}

// Override decodes an override policy's properties.
func (p Policy) Override() (OverridePolicy, error) {
	var o OverridePolicy
	return o, p.decode(PolicyOverride, &o)
}

func (p Policy) decode(typ string, into any) error {
	if p.Type != typ {
		return fmt.Errorf("policy %q is of type %q, not %s", p.Name, p.Type, typ)
	}
	if len(p.Properties) == 0 || string(p.Properties) == "null" {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(p.Properties))
	d.DisallowUnknownFields()
	d.UseNumber()
	if err := d.Decode(into); err != nil {
		return fmt.Errorf("policy %q (%s): properties: %w", p.Name, typ, err)
	}
	return nil
}

// Workflow is the list of steps that deploys the application, in
// KubeVela's step shape (type, name, properties, dependsOn, if, ...).
type Workflow struct {
	Steps []v1alpha1.WorkflowStep `json:"steps,omitempty"`
}

// Parse reads an ApplicationConfiguration from YAML or JSON and checks
// what a launch relies on: the apiVersion and kind, every revisionName,
// unique components and policy names, and the policy types and their
// properties. Numbers keep their exact value (json.Number).
func Parse(src []byte) (*ApplicationConfiguration, error) {
	js, err := yaml.YAMLToJSON(src)
	if err != nil {
		return nil, fmt.Errorf("application configuration: %w", err)
	}
	var ac ApplicationConfiguration
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	if err := d.Decode(&ac); err != nil {
		return nil, fmt.Errorf("application configuration: %w", err)
	}
	if ac.APIVersion != APIVersion || ac.Kind != Kind {
		return nil, fmt.Errorf("application configuration: apiVersion %q, kind %q: want %s %s", ac.APIVersion, ac.Kind, APIVersion, Kind)
	}
	if err := ac.validate(); err != nil {
		return nil, fmt.Errorf("application configuration %q: %w", ac.Metadata.Name, err)
	}
	return &ac, nil
}

func (ac *ApplicationConfiguration) validate() error {
	seen := map[Revision]int{}
	for i, c := range ac.Spec.Components {
		rev, err := ParseRevision(c.RevisionName)
		if err != nil {
			return fmt.Errorf("spec.components[%d]: %w", i, err)
		}
		key := Revision{Type: rev.Type, Name: rev.Name}
		if j, dup := seen[key]; dup {
			return fmt.Errorf("spec.components[%d]: component %s|%s is also spec.components[%d]", i, rev.Type, rev.Name, j)
		}
		seen[key] = i
	}
	names := map[string]int{}
	for i, p := range ac.Spec.Policies {
		where := fmt.Sprintf("spec.policies[%d]", i)
		if p.Name == "" {
			return fmt.Errorf("%s: a policy needs a name", where)
		}
		if j, dup := names[p.Name]; dup {
			return fmt.Errorf("%s: policy name %q is also spec.policies[%d]'s", where, p.Name, j)
		}
		names[p.Name] = i
		switch p.Type {
		case PolicyTopology:
			if _, err := p.Topology(); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		case PolicyOverride:
			o, err := p.Override()
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			for k, c := range o.Components {
				if _, err := ParseRevision(c.RevisionName); err != nil {
					return fmt.Errorf("%s (%s): properties.components[%d]: %w", where, p.Name, k, err)
				}
			}
		default:
			return fmt.Errorf("%s: policy %q has type %q; supported types are %s and %s", where, p.Name, p.Type, PolicyTopology, PolicyOverride)
		}
	}
	for i, pv := range ac.Spec.ParameterValues {
		if strings.TrimSpace(pv.Name) == "" {
			return fmt.Errorf("spec.parameterValues[%d]: a parameter needs a name", i)
		}
	}
	return nil
}

// Latest is the VERSION of a revisionName that means the newest version.
const Latest = "_"

// Revision is a parsed revisionName: the component's type (which selects
// its component definition), its name and its version.
type Revision struct {
	Type, Name, Version string
}

// IsLatest says whether the revision asks for the newest version.
func (r Revision) IsLatest() bool { return r.Version == Latest }

// String is the revisionName.
func (r Revision) String() string { return r.Type + "|" + r.Name + "|" + r.Version }

// ParseRevision splits "TYPE|NAME|VERSION". All three parts must be
// non-empty and free of spaces; VERSION "_" means the latest.
func ParseRevision(s string) (Revision, error) {
	parts := strings.Split(s, "|")
	if len(parts) != 3 {
		return Revision{}, fmt.Errorf("revisionName %q: want TYPE|NAME|VERSION (VERSION _ for the latest), found %d part(s)", s, len(parts))
	}
	for i, what := range []string{"TYPE", "NAME", "VERSION"} {
		switch p := parts[i]; {
		case p == "":
			return Revision{}, fmt.Errorf("revisionName %q: %s is empty", s, what)
		case strings.ContainsAny(p, " \t\n"):
			return Revision{}, fmt.Errorf("revisionName %q: %s %q contains white space", s, what, p)
		}
	}
	return Revision{Type: parts[0], Name: parts[1], Version: parts[2]}, nil
}
