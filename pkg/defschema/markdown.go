package defschema

import (
	"fmt"
	"strings"
)

// Row is one line of a parameter reference: a field of the parameter or
// of a struct nested in it.
type Row struct {
	// Name is the field's path: dotted for nested structs, with [] for the
	// elements of a list (ports[].name).
	Name        string
	Type        string
	Required    bool
	Default     string
	Description string
}

// Rows lists the fields of s, a parameter's schema, depth first in
// template order: each struct field is followed by its own fields.
func Rows(s *Schema) []Row {
	var rows []Row
	var walk func(prefix string, s *Schema)
	walk = func(prefix string, s *Schema) {
		if s == nil {
			return
		}
		required := map[string]bool{}
		for _, r := range s.Required {
			required[r] = true
		}
		for _, name := range s.names() {
			f := s.Properties[name]
			path := prefix + name
			rows = append(rows, Row{Name: path, Type: f.TypeName(), Required: required[name],
				Default: string(f.Default), Description: f.Description})
			switch {
			case len(f.Properties) > 0:
				walk(path+".", f)
			case f.Type == "array" && f.Items != nil && len(f.Items.Properties) > 0:
				walk(path+"[].", f.Items)
			case f.Type == "object" && f.AdditionalProperties != nil && f.AdditionalProperties.Schema != nil &&
				len(f.AdditionalProperties.Schema.Properties) > 0:
				walk(path+".<name>.", f.AdditionalProperties.Schema)
			}
		}
	}
	walk("", s)
	return rows
}

// Markdown renders the parameter reference of the definition named name:
// a heading, the definition's description when it has one, and a table
// of Rows. A parameter with no fields says so instead of a table.
func Markdown(name, description string, s *Schema) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", name)
	if description != "" {
		fmt.Fprintf(&b, "%s\n\n", description)
	}
	rows := Rows(s)
	if len(rows) == 0 {
		b.WriteString("The step takes no parameters.\n")
		return b.String()
	}
	b.WriteString("| Name | Type | Required | Default | Description |\n")
	b.WriteString("|------|------|----------|---------|-------------|\n")
	for _, r := range rows {
		req := "no"
		if r.Required {
			req = "yes"
		}
		def := ""
		if r.Default != "" {
			def = "`" + cell(r.Default) + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(r.Name), cell(r.Type), req, def, cell(r.Description))
	}
	if s != nil && !s.Closed() {
		b.WriteString("\nThe parameter is open: properties it does not list are accepted and ignored.\n")
	}
	return b.String()
}

// cell makes s fit in one Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	// TypeName already escapes its own bars; escape the others.
	s = strings.ReplaceAll(s, "\\|", "\x00")
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\x00", "\\|")
}
