// Package deftest runs the test cases of a step definition without a
// cluster: the definition's template is evaluated with the case's
// properties and context, its op calls are answered from recorded results,
// and the outcome, outputs, op calls and values are compared with what the
// case expects. The shipped definitions' golden test and `stepflow def
// test` both run cases through it, so a definition author gets the same
// golden testing the project uses.
//
// # Layout
//
// A directory of definitions holds NAME.cue (vela def layout) and its cases
// testdata/NAME/CASE.txtar, as the project's definitions/ does.
//
// # A case
//
// A case is a txtar archive with these files, each optional but want.json:
//
//	-- properties.json --  the step's properties
//	-- context.json --     the run context; name, namespace, stepName and
//	                       stepSessionID are added when missing
//	-- ops.json --         recorded op results by call path:
//	                       {"<path>": {"returns": ..., "error": "...", "permanent": bool}}
//	-- outputs.json --     the step's outputs, as in a run's step:
//	                       [{"name": "...", "valueFrom": "<cue expr>"}]
//	-- want.json --        what the evaluation must give:
//	                       {"outcome", "reason", "message", "messageContains",
//	                        "calls": ["<op> <path>", ...] (every call made, in order),
//	                        "params": {"<path>": <the call's decoded params, as JSON>},
//	                        "value": {"<cue expr>": <json>},
//	                        "outputs": {"<name>": <json>}}
//
// Pure and control ops (wait, suspend, fail, terminate, health, ...) run for
// real. Any other call must have a recorded result: a call without one
// fails the case, so a template that starts calling something new is
// noticed. Outputs are read as the engine exports them: from a succeeded
// step only, and an output that cannot be read fails the step (reason
// OutputError).
package deftest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/tools/txtar"
)

// Case is one test case of a definition.
type Case struct {
	// Name is the case's file name without .txtar.
	Name string
	// File is where the case was read from.
	File       string
	Properties json.RawMessage
	Context    map[string]any
	Ops        map[string]Recorded
	Outputs    []Output
	Want       Want
}

// Recorded is the recorded result of one op call.
type Recorded struct {
	Returns   json.RawMessage `json:"returns,omitempty"`
	Error     string          `json:"error,omitempty"`
	Permanent bool            `json:"permanent,omitempty"`
}

// Output is one of a step's outputs, as in a run's step spec.
type Output struct {
	Name      string `json:"name"`
	ValueFrom string `json:"valueFrom"`
}

// Want is what a case expects. Empty fields are not checked, except
// Outcome.
type Want struct {
	Outcome         string                     `json:"outcome"`
	Reason          string                     `json:"reason,omitempty"`
	Message         *string                    `json:"message,omitempty"`
	MessageContains []string                   `json:"messageContains,omitempty"`
	Calls           []string                   `json:"calls"`
	Params          map[string]json.RawMessage `json:"params,omitempty"`
	Value           map[string]json.RawMessage `json:"value,omitempty"`
	Outputs         map[string]json.RawMessage `json:"outputs,omitempty"`
}

// The files of a case.
const (
	fileProperties = "properties.json"
	fileContext    = "context.json"
	fileOps        = "ops.json"
	fileOutputs    = "outputs.json"
	fileWant       = "want.json"
)

// LoadCase reads the case in file.
func LoadCase(file string) (*Case, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseCase(file, data)
}

// ParseCase parses a case read from file. Errors name the file and the
// section.
func ParseCase(file string, data []byte) (*Case, error) {
	ar := txtar.Parse(data)
	c := &Case{Name: strings.TrimSuffix(filepath.Base(file), ".txtar"), File: file}
	seen := map[string]bool{}
	for _, f := range ar.Files {
		if seen[f.Name] {
			return nil, fmt.Errorf("%s: %s appears twice", file, f.Name)
		}
		seen[f.Name] = true
		var err error
		switch f.Name {
		case fileProperties:
			if !json.Valid(f.Data) {
				err = jsonError(f.Data)
			}
			c.Properties = json.RawMessage(f.Data)
		case fileContext:
			err = json.Unmarshal(f.Data, &c.Context)
		case fileOps:
			err = json.Unmarshal(f.Data, &c.Ops)
		case fileOutputs:
			err = json.Unmarshal(f.Data, &c.Outputs)
			for i, o := range c.Outputs {
				if err == nil && (o.Name == "" || o.ValueFrom == "") {
					err = fmt.Errorf("output %d: want a name and a valueFrom", i)
				}
			}
		case fileWant:
			dec := json.NewDecoder(strings.NewReader(string(f.Data)))
			dec.DisallowUnknownFields()
			err = dec.Decode(&c.Want)
		default:
			err = fmt.Errorf("unknown file: want %s", strings.Join([]string{fileProperties, fileContext, fileOps, fileOutputs, fileWant}, ", "))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", file, f.Name, err)
		}
	}
	if !seen[fileWant] {
		return nil, fmt.Errorf("%s: no %s: a case says what it expects", file, fileWant)
	}
	if c.Want.Outcome == "" {
		return nil, fmt.Errorf("%s: %s: no outcome (succeeded, waiting, suspending, failed, terminating, broken)", file, fileWant)
	}
	for name := range c.Want.Outputs {
		if !c.declares(name) {
			return nil, fmt.Errorf("%s: %s: output %q is not declared in %s", file, fileWant, name, fileOutputs)
		}
	}
	return c, nil
}

func (c *Case) declares(output string) bool {
	for _, o := range c.Outputs {
		if o.Name == output {
			return true
		}
	}
	return false
}

func jsonError(data []byte) error {
	var x any
	if err := json.Unmarshal(data, &x); err != nil {
		return err
	}
	return fmt.Errorf("not valid JSON")
}
