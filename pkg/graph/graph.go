// Package graph is the steps of a run as a graph: which step waits for
// which, at the top level and inside step groups. It is pure: no CUE, no
// Kubernetes client.
//
// At each level (the run's steps, or one group's sub-steps) the mode
// decides the edges:
//
//   - StepByStep: each step waits for the step before it.
//   - DAG: a step waits for the steps named in its dependsOn and for the
//     steps that produce its inputs; steps without such edges start at once.
//
// The default mode is StepByStep for steps and DAG for sub-steps, as in
// KubeVela. A step-group's own mode overrides the run's sub-step mode.
package graph

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// StepGroup is the type of a step that only groups sub-steps.
const StepGroup = "step-group"

// Step is one node: a step or a sub-step.
type Step struct {
	Name string
	Spec v1alpha1.WorkflowStepBase
	// Deps are the steps at the same level this one waits for.
	Deps []*Step
	// Children are a step group's sub-steps, in written order.
	Children []*Step
	// ChildMode is the mode of Children.
	ChildMode v1alpha1.WorkflowMode
	// Parent is the group holding a sub-step; nil at the top level.
	Parent *Step
	index  int
}

// IsGroup reports whether the step is a step group.
func (s *Step) IsGroup() bool { return s.Spec.Type == StepGroup }

// Graph is a run's steps.
type Graph struct {
	Steps []*Step
	Mode  v1alpha1.WorkflowExecuteMode
	all   map[string]*Step
}

// Step returns the step or sub-step named name.
func (g *Graph) Step(name string) (*Step, bool) {
	s, ok := g.all[name]
	return s, ok
}

// All lists every step and sub-step, parents before children.
func (g *Graph) All() []*Step {
	var out []*Step
	var walk func([]*Step)
	walk = func(ss []*Step) {
		for _, s := range ss {
			out = append(out, s)
			walk(s.Children)
		}
	}
	walk(g.Steps)
	return out
}

// Build makes the graph of steps under mode (nil means the defaults). It
// rejects steps without a name or type, duplicate names, dependsOn naming no
// step at the same level, inputs no step produces, and cycles.
func Build(steps []v1alpha1.WorkflowStep, mode *v1alpha1.WorkflowExecuteMode) (*Graph, error) {
	g := &Graph{all: map[string]*Step{}, Mode: v1alpha1.WorkflowExecuteMode{
		Steps: v1alpha1.WorkflowModeStep, SubSteps: v1alpha1.WorkflowModeDAG,
	}}
	if mode != nil {
		if mode.Steps != "" {
			g.Mode.Steps = mode.Steps
		}
		if mode.SubSteps != "" {
			g.Mode.SubSteps = mode.SubSteps
		}
	}
	producers := map[string]*Step{}
	add := func(spec v1alpha1.WorkflowStepBase, parent *Step, index int) (*Step, error) {
		if spec.Name == "" {
			return nil, fmt.Errorf("step %d has no name", index+1)
		}
		if spec.Type == "" {
			return nil, fmt.Errorf("step %q has no type", spec.Name)
		}
		if spec.Timeout != "" {
			if d, err := time.ParseDuration(spec.Timeout); err != nil || d <= 0 {
				return nil, fmt.Errorf("step %q: timeout %q is not a positive Go duration such as \"10m\"", spec.Name, spec.Timeout)
			}
		}
		if _, dup := g.all[spec.Name]; dup {
			return nil, fmt.Errorf("two steps are named %q", spec.Name)
		}
		s := &Step{Name: spec.Name, Spec: spec, Parent: parent, index: index}
		g.all[spec.Name] = s
		for _, o := range spec.Outputs {
			if prev, dup := producers[o.Name]; dup {
				return nil, fmt.Errorf("output %q is produced by both %q and %q", o.Name, prev.Name, s.Name)
			}
			producers[o.Name] = s
		}
		return s, nil
	}
	for i, ws := range steps {
		s, err := add(ws.WorkflowStepBase, nil, i)
		if err != nil {
			return nil, err
		}
		s.ChildMode = g.Mode.SubSteps
		if ws.Mode != nil && *ws.Mode != "" {
			s.ChildMode = *ws.Mode
		}
		if len(ws.SubSteps) > 0 && !s.IsGroup() {
			return nil, fmt.Errorf("step %q has sub-steps but type %q; only %s steps have sub-steps", s.Name, s.Spec.Type, StepGroup)
		}
		for j, sub := range ws.SubSteps {
			c, err := add(sub, s, j)
			if err != nil {
				return nil, err
			}
			if c.IsGroup() {
				return nil, fmt.Errorf("sub-step %q of %q is a step group; groups do not nest", c.Name, s.Name)
			}
			s.Children = append(s.Children, c)
		}
		g.Steps = append(g.Steps, s)
	}
	if err := link(g.Steps, g.Mode.Steps, producers); err != nil {
		return nil, err
	}
	for _, s := range g.Steps {
		if err := link(s.Children, s.ChildMode, producers); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// link sets the Deps of the steps of one level.
func link(level []*Step, mode v1alpha1.WorkflowMode, producers map[string]*Step) error {
	switch mode {
	case v1alpha1.WorkflowModeStep, v1alpha1.WorkflowModeDAG:
	default:
		return fmt.Errorf("unknown mode %q: want %s or %s", mode, v1alpha1.WorkflowModeStep, v1alpha1.WorkflowModeDAG)
	}
	byName := map[string]*Step{}
	for _, s := range level {
		byName[s.Name] = s
	}
	for i, s := range level {
		deps := map[*Step]bool{}
		if mode == v1alpha1.WorkflowModeStep && i > 0 {
			deps[level[i-1]] = true
		}
		for _, d := range s.Spec.DependsOn {
			dep, ok := byName[d]
			if !ok {
				return fmt.Errorf("step %q depends on %q, which is not a step at its level", s.Name, d)
			}
			deps[dep] = true
		}
		inputs := s.Spec.Inputs
		for _, c := range s.Children {
			// A group waits for what its sub-steps take from outside it;
			// a sub-step's unknown input is reported at its own level.
			for _, in := range c.Spec.Inputs {
				if _, ok := producers[in.From]; ok {
					inputs = append(inputs[:len(inputs):len(inputs)], in)
				}
			}
		}
		for _, in := range inputs {
			p, ok := producers[in.From]
			if !ok {
				return fmt.Errorf("step %q takes input %q, which no step outputs", s.Name, in.From)
			}
			// Wait for the producer, or for the group at this level that holds it.
			for p != nil && byName[p.Name] != p {
				p = p.Parent
			}
			if p != nil && p != s {
				deps[p] = true
			}
		}
		for d := range deps {
			s.Deps = append(s.Deps, d)
		}
		sort.Slice(s.Deps, func(a, b int) bool { return s.Deps[a].index < s.Deps[b].index })
	}
	return checkCycles(level)
}

func checkCycles(level []*Step) error {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[*Step]int{}
	var path []string
	var visit func(s *Step) error
	visit = func(s *Step) error {
		switch state[s] {
		case onPath:
			return fmt.Errorf("dependency cycle: %s -> %s", strings.Join(path, " -> "), s.Name)
		case done:
			return nil
		}
		state[s] = onPath
		path = append(path, s.Name)
		for _, d := range s.Deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[s] = done
		return nil
	}
	for _, s := range level {
		if err := visit(s); err != nil {
			return err
		}
	}
	return nil
}

// Downstream lists the steps that run again when the run is retried from
// step: the step itself, every step at its level that waits on it directly
// or transitively (in StepByStep mode: every later step), their sub-steps,
// and, for a sub-step, its group and the group's own downstream.
func (g *Graph) Downstream(name string) []*Step {
	start, ok := g.all[name]
	if !ok {
		return nil
	}
	set := map[*Step]bool{}
	var mark func(s *Step)
	mark = func(s *Step) {
		if set[s] {
			return
		}
		set[s] = true
		for _, c := range s.Children {
			mark(c)
		}
		level := g.Steps
		if s.Parent != nil {
			level = s.Parent.Children
		}
		for _, o := range level {
			for _, d := range o.Deps {
				if d == s {
					mark(o)
				}
			}
		}
		if s.Parent != nil && !set[s.Parent] {
			set[s.Parent] = true
			markLevel := s.Parent
			for _, o := range g.Steps {
				for _, d := range o.Deps {
					if d == markLevel {
						mark(o)
					}
				}
			}
		}
	}
	mark(start)
	var out []*Step
	for _, s := range g.All() {
		if set[s] {
			out = append(out, s)
		}
	}
	return out
}
