package eval

import (
	"fmt"
	"sort"
	"strings"

	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

const maxErrors = 5

// describe renders a CUE error as one line per error, each with its CUE
// position(s): "parameter.url: incomplete value string (request.cue:12:3)".
func describe(err error) string {
	errs := cueerrors.Errors(err)
	if len(errs) == 0 {
		return err.Error()
	}
	var parts []string
	seen := map[string]bool{}
	for _, e := range errs {
		msg := e.Error()
		if pos := positions(e); pos != "" {
			msg += " (" + pos + ")"
		}
		if seen[msg] {
			continue
		}
		seen[msg] = true
		parts = append(parts, msg)
		if len(parts) == maxErrors {
			parts = append(parts, fmt.Sprintf("and %d more errors", len(errs)-maxErrors))
			break
		}
	}
	return strings.Join(parts, "; ")
}

func positions(e cueerrors.Error) string {
	var out []string
	seen := map[string]bool{}
	for _, p := range cueerrors.Positions(e) {
		s := posString(p)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
		if len(out) == 3 {
			break
		}
	}
	return strings.Join(out, ", ")
}

func posString(p token.Pos) string {
	if !p.IsValid() {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", p.Filename(), p.Line(), p.Column())
}

func sortStrings(s []string) { sort.Strings(s) }
