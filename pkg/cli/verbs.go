package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// What every command of the tree gets, whoever wrote it: a parent command
// (def, context, step, cluster) refuses a verb it does not have, and the
// global -o is refused by a command that does not print it.

// outputFormats are the -o values each command that prints data accepts,
// by command path below the root. A command not listed prints no data, so
// any -o is refused: a user who asks for JSON gets an error, not text.
var outputFormats = map[string][]string{
	"version":     {outYAML, outJSON},
	"get":         {outWide, outYAML, outJSON, "name"},
	"list":        {outWide, outYAML, outJSON, "name"},
	"logs":        {outYAML, outJSON},
	"debug":       {outYAML, outJSON},
	"context get": {outYAML, outJSON},
	"def get":     {outCUE, outYAML, outJSON},
	"def list":    {outWide, outYAML, outJSON},
	"def render":  {"cue", outYAML, outJSON},
	"def doc":     {"markdown", outJSON},
	"step run":    {outYAML, outJSON},
}

// outputAnnotation on a command lists the -o values it prints,
// comma-separated ("yaml,json"): a new command declares them here instead
// of in outputFormats.
const outputAnnotation = "stepflow.dev/output"

// commandPath is cmd's path below the root: "def get".
func commandPath(cmd *cobra.Command) string {
	var parts []string
	for c := cmd; c.HasParent(); c = c.Parent() {
		parts = append([]string{c.Name()}, parts...)
	}
	return strings.Join(parts, " ")
}

// checkCommandOutput refuses an -o the command does not print.
func checkCommandOutput(cmd *cobra.Command, format string) error {
	if format == outTable {
		return nil
	}
	path := commandPath(cmd)
	allowed, ok := outputFormats[path]
	if a, set := cmd.Annotations[outputAnnotation]; set {
		allowed, ok = strings.Split(a, ","), true
	}
	if !ok {
		return fmt.Errorf("stepflow %s does not print -o %s: it prints no data to format; omit -o", path, format)
	}
	for _, a := range allowed {
		if a == format {
			return nil
		}
	}
	return fmt.Errorf("stepflow %s: unknown output format %q: want %s", path, format, strings.Join(allowed, " or "))
}

// refuseUnknownVerbs makes every parent command below root fail on an
// argument that names none of its subcommands (cobra prints the help and
// exits 0 for it), and print its help when called alone.
func refuseUnknownVerbs(root *cobra.Command) {
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
		if !cmd.HasParent() || !cmd.HasSubCommands() || cmd.Runnable() {
			return
		}
		cmd.Args = cobra.ArbitraryArgs
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // as cobra's root suggests
		}
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return unknownVerb(cmd, args[0])
		}
	}
	walk(root)
}

// unknownVerb is the error for `stepflow PARENT VERB` where PARENT has no
// VERB: it names the verbs there are, and the nearest one if any is near.
func unknownVerb(cmd *cobra.Command, verb string) error {
	var verbs []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			verbs = append(verbs, sub.Name())
		}
	}
	sort.Strings(verbs)
	msg := fmt.Sprintf("unknown command %q for %q (its commands: %s)", verb, cmd.CommandPath(), strings.Join(verbs, ", "))
	if s := cmd.SuggestionsFor(verb); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(quoteAll(s), " or "))
	}
	return fmt.Errorf("%s", msg)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
