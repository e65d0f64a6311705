package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/definition"
)

// Dynamic shell completion reads the cluster the command would act on
// (the same --kubeconfig, --context and -n, which cobra's __complete
// parses): run names for every command whose usage line takes RUN or
// RUN..., step names for their --step and --from-step, step definition
// names for def get, and workflow/NAME for submit --from. A completion
// that cannot reach the cluster offers nothing, and never files.

// completionTimeout bounds a completion's reads, so a TAB on an
// unreachable cluster gives up rather than hangs the shell.
const completionTimeout = 5 * time.Second

// registerCompletions gives every command of the tree below root the
// completions its usage line and flags ask for.
func registerCompletions(root *cobra.Command, g *globals) {
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
		words := strings.Fields(cmd.Use)
		if len(words) > 1 && cmd.ValidArgsFunction == nil {
			switch words[1] {
			case "RUN":
				cmd.ValidArgsFunction = g.completeRuns(false)
			case "RUN...":
				cmd.ValidArgsFunction = g.completeRuns(true)
			}
			if words[1] == "RUN" || words[1] == "RUN..." {
				for _, name := range []string{"step", "from-step"} {
					if cmd.Flags().Lookup(name) != nil {
						_ = cmd.RegisterFlagCompletionFunc(name, g.completeSteps)
					}
				}
			}
		}
		switch commandPath(cmd) {
		case "def get":
			cmd.ValidArgsFunction = g.completeDefinitions
		case "submit":
			_ = cmd.RegisterFlagCompletionFunc("from", g.completeWorkflows)
		}
	}
	walk(root)
}

// completionClient is the client completions read with, and a context
// bounded by completionTimeout.
func (g *globals) completionClient(cmd *cobra.Command) (client.Client, context.Context, context.CancelFunc, bool) {
	c, err := g.client()
	if err != nil {
		cobra.CompDebugln("stepflow completion: "+err.Error(), false)
		return nil, nil, nil, false
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	return c, ctx, cancel, true
}

// completeRuns offers the names of the namespace's runs, with their phase,
// for the first argument, or for every argument when many are taken (each
// run once).
func (g *globals) completeRuns(many bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 && !many {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, ctx, cancel, ok := g.completionClient(cmd)
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer cancel()
		var runs v1alpha1.WorkflowRunList
		if err := c.List(ctx, &runs, client.InNamespace(g.ns())); err != nil {
			cobra.CompDebugln("stepflow completion: listing workflowruns: "+err.Error(), false)
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, r := range runs.Items {
			if strings.HasPrefix(r.Name, toComplete) && !slices.Contains(args, r.Name) {
				out = append(out, cobra.CompletionWithDesc(r.Name, string(r.Status.Phase)))
			}
		}
		slices.Sort(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeSteps offers the step and sub-step names of the run named by
// the first argument, from its spec (or its Workflow's) and its status,
// with their phase.
func (g *globals) completeSteps(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, ctx, cancel, ok := g.completionClient(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer cancel()
	run, err := getRun(ctx, c, client.ObjectKey{Namespace: g.ns(), Name: args[0]})
	if err != nil {
		cobra.CompDebugln("stepflow completion: "+err.Error(), false)
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	// Without its steps (a Workflow gone), the status still names them.
	steps, _, _ := runSteps(ctx, c, run)
	var out []cobra.Completion
	for _, r := range stepRows(steps, run.Status) {
		if strings.HasPrefix(r.name, toComplete) {
			out = append(out, cobra.CompletionWithDesc(r.name, string(r.phase())))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeDefinitions offers the names of the step definitions a run of
// the namespace can use (the namespace's, then the system namespace's),
// with their description.
func (g *globals) completeDefinitions(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	system, err := cmd.Flags().GetString("system-namespace")
	if err != nil || system == "" {
		system = definition.DefaultSystemNamespace
	}
	c, ctx, cancel, ok := g.completionClient(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer cancel()
	seen := map[string]bool{}
	var out []cobra.Completion
	for _, ns := range defNamespaces(g.ns(), system) {
		var l v1beta1.WorkflowStepDefinitionList
		if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
			cobra.CompDebugln("stepflow completion: listing workflowstepdefinitions in "+ns+": "+err.Error(), false)
			continue
		}
		for _, d := range l.Items {
			if seen[d.Name] || !strings.HasPrefix(d.Name, toComplete) {
				continue
			}
			seen[d.Name] = true
			out = append(out, cobra.CompletionWithDesc(d.Name, truncate(d.Annotations[descriptionAnnotation], 60)))
		}
	}
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeWorkflows offers workflow/NAME for each Workflow of the
// namespace, keeping the kind as typed when it is one --from takes.
func (g *globals) completeWorkflows(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	kind := "workflow"
	if k, _, ok := strings.Cut(toComplete, "/"); ok && slices.Contains(fromKinds, strings.ToLower(k)) {
		kind = k
	}
	c, ctx, cancel, ok := g.completionClient(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer cancel()
	var l v1alpha1.WorkflowList
	if err := c.List(ctx, &l, client.InNamespace(g.ns())); err != nil {
		cobra.CompDebugln("stepflow completion: listing workflows: "+err.Error(), false)
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, wf := range l.Items {
		if choice := kind + "/" + wf.Name; strings.HasPrefix(choice, toComplete) {
			out = append(out, choice)
		}
	}
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}
