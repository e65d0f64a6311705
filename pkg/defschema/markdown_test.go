package defschema_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/pkg/defschema"
)

func TestMarkdown(t *testing.T) {
	// A schema as a UI reads it back from a definition's status: no
	// template order, so the fields come by name.
	var s defschema.Schema
	src := `{"type":"object","additionalProperties":false,"required":["url"],
	"properties":{
		"url":{"type":"string","description":"the | target"},
		"method":{"enum":["GET","POST"],"default":"GET"},
		"header":{"type":"object","additionalProperties":{"type":"string"}},
		"retries":{"type":"array","items":{"type":"object","required":["code"],
			"properties":{"code":{"type":"integer"}}}}}}`
	if err := json.Unmarshal([]byte(src), &s); err != nil {
		t.Fatal(err)
	}
	want := "# request\n\nSend a request.\n\n" +
		"| Name | Type | Required | Default | Description |\n" +
		"|------|------|----------|---------|-------------|\n" +
		"| header | map[string]string | no |  |  |\n" +
		"| method | \"GET\" \\| \"POST\" | no | `\"GET\"` |  |\n" +
		"| retries | [object] | no |  |  |\n" +
		"| retries[].code | integer | yes |  |  |\n" +
		"| url | string | yes |  | the \\| target |\n"
	if d := cmp.Diff(want, defschema.Markdown("request", "Send a request.", &s)); d != "" {
		t.Errorf("markdown (-want +got):\n%s", d)
	}
	if got := defschema.Markdown("x", "", &defschema.Schema{Type: "object"}); got != "# x\n\nThe step takes no parameters.\n" {
		t.Errorf("empty parameter: %q", got)
	}
}

func TestBounded(t *testing.T) {
	s := &defschema.Schema{Type: "object", Properties: map[string]*defschema.Schema{}}
	for i := 0; i < 3000; i++ {
		s.Properties[fmt.Sprintf("field%d", i)] = &defschema.Schema{Type: "string", Description: "a field with a long enough description"}
	}
	if _, err := s.Bounded(); err == nil {
		t.Error("a schema over MaxBytes is accepted")
	}
	if _, err := (&defschema.Schema{Type: "object"}).Bounded(); err != nil {
		t.Error(err)
	}
}

// A parameter that is one of several definitions has a table for each,
// with the fields of the definitions they refer to.
func TestMarkdownOfADisjunction(t *testing.T) {
	var s defschema.Schema
	src := `{"anyOf":[{"$ref":"#/$defs/%23A"},{"$ref":"#/$defs/%23B"}],
	"$defs":{
		"#A":{"type":"object","additionalProperties":false,"properties":{"type":{"const":"a"},"key":{"type":"string"}},"required":["key"],"$ref":"#/$defs/base"},
		"#B":{"type":"object","properties":{"type":{"const":"b"}}},
		"base":{"type":"object","properties":{"region":{"type":"string"}},"required":["region"]}}}`
	if err := json.Unmarshal([]byte(src), &s); err != nil {
		t.Fatal(err)
	}
	want := "# p\n\nThe parameter is one of the following.\n\n" +
		"## 1. #A\n\n" +
		"| Name | Type | Required | Default | Description |\n" +
		"|------|------|----------|---------|-------------|\n" +
		"| key | string | yes |  |  |\n" +
		"| type | \"a\" | no |  |  |\n" +
		"| region | string | yes |  |  |\n" +
		"\n## 2. #B\n\n" +
		"| Name | Type | Required | Default | Description |\n" +
		"|------|------|----------|---------|-------------|\n" +
		"| type | \"b\" | no |  |  |\n" +
		"\nThe parameter is open: properties it does not list are accepted and ignored.\n"
	if d := cmp.Diff(want, defschema.Markdown("p", "", &s)); d != "" {
		t.Errorf("markdown (-want +got):\n%s", d)
	}
}
