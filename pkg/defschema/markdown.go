package defschema

import (
	"fmt"
	"net/url"
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
// template order: each struct field is followed by its own fields. A
// field that refers to a definition ($ref into s's $defs) is followed by
// the definition's fields.
func Rows(s *Schema) []Row { return rowsOf(s, s) }

func rowsOf(root, s *Schema) []Row {
	var rows []Row
	var walk func(prefix string, s *Schema, depth int)
	walk = func(prefix string, s *Schema, depth int) {
		if s == nil || depth > maxRowDepth {
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
			f = root.resolve(f)
			switch {
			case len(f.Properties) > 0:
				walk(path+".", f, depth+1)
			case f.Type == "array" && f.Items != nil && len(root.resolve(f.Items).Properties) > 0:
				walk(path+"[].", root.resolve(f.Items), depth+1)
			case f.Type == "object" && f.AdditionalProperties != nil && f.AdditionalProperties.Schema != nil &&
				len(root.resolve(f.AdditionalProperties.Schema).Properties) > 0:
				walk(path+".<name>.", root.resolve(f.AdditionalProperties.Schema), depth+1)
			}
		}
	}
	walk("", root.resolve(s), 0)
	return rows
}

// maxRowDepth bounds the nesting Rows follows (definitions may refer to
// themselves).
const maxRowDepth = 32

// resolve returns the definition in root's $defs that s refers to, or s.
func (root *Schema) resolve(s *Schema) *Schema {
	if s == nil || s.Ref == "" || root == nil {
		return s
	}
	name := s.Ref[strings.LastIndex(s.Ref, "/")+1:]
	if u, err := url.PathUnescape(name); err == nil {
		name = u
	}
	d, ok := root.Defs[name]
	if !ok {
		return s
	}
	if len(s.Properties) == 0 {
		return d
	}
	// Its own fields and those of the definition it refers to.
	m := *s
	m.Ref, m.Properties, m.Order = "", map[string]*Schema{}, nil
	m.Required = append(append([]string{}, s.Required...), d.Required...)
	for _, from := range []*Schema{s, d} {
		for _, n := range from.names() {
			if _, dup := m.Properties[n]; !dup {
				m.Properties[n] = from.Properties[n]
				m.Order = append(m.Order, n)
			}
		}
	}
	return &m
}

// Markdown renders the parameter reference of the definition named name:
// a heading, the definition's description when it has one, and a table
// of Rows. A parameter that is one of several structs (a disjunction) has
// a table for each; one with no fields says so instead of a table.
func Markdown(name, description string, s *Schema) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", name)
	if description != "" {
		fmt.Fprintf(&b, "%s\n\n", description)
	}
	var alts []*Schema
	if s != nil && len(s.Properties) == 0 {
		alts = append(append(alts, s.AnyOf...), s.OneOf...)
	}
	if len(alts) > 1 {
		b.WriteString("The parameter is one of the following.\n")
		for i, a := range alts {
			fmt.Fprintf(&b, "\n## %d. %s\n\n", i+1, cell(a.TypeName()))
			table(&b, s, s.resolve(a))
		}
		return b.String()
	}
	table(&b, s, s)
	return b.String()
}

// table writes the rows of s, a schema within root, as a Markdown table.
func table(b *strings.Builder, root, s *Schema) {
	rows := rowsOf(root, s)
	if len(rows) == 0 {
		b.WriteString("The step takes no parameters.\n")
		return
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
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", cell(r.Name), cell(r.Type), req, def, cell(r.Description))
	}
	if s != nil && !s.Closed() {
		b.WriteString("\nThe parameter is open: properties it does not list are accepted and ignored.\n")
	}
}

// cell makes s fit in one Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	// TypeName already escapes its own bars; escape the others.
	s = strings.ReplaceAll(s, "\\|", "\x00")
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\x00", "\\|")
}
