package graph_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/graph"
)

const (
	stepByStep = v1alpha1.WorkflowModeStep
	dag        = v1alpha1.WorkflowModeDAG
)

// base is a step or sub-step of type "apply" with the given dependsOn.
func base(name string, dependsOn ...string) v1alpha1.WorkflowStepBase {
	return v1alpha1.WorkflowStepBase{Name: name, Type: "apply", DependsOn: dependsOn}
}

func step(name string, dependsOn ...string) v1alpha1.WorkflowStep {
	return v1alpha1.WorkflowStep{WorkflowStepBase: base(name, dependsOn...)}
}

// group is a step group; mode nil leaves the sub-step mode to the run.
func group(name string, mode *v1alpha1.WorkflowMode, subs ...v1alpha1.WorkflowStepBase) v1alpha1.WorkflowStep {
	return v1alpha1.WorkflowStep{
		WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: name, Type: graph.StepGroup},
		Mode:             mode,
		SubSteps:         subs,
	}
}

func outputs(s v1alpha1.WorkflowStepBase, names ...string) v1alpha1.WorkflowStepBase {
	for _, n := range names {
		s.Outputs = append(s.Outputs, v1alpha1.OutputItem{Name: n, ValueFrom: "out." + n})
	}
	return s
}

func inputs(s v1alpha1.WorkflowStepBase, from ...string) v1alpha1.WorkflowStepBase {
	for _, f := range from {
		s.Inputs = append(s.Inputs, v1alpha1.InputItem{From: f})
	}
	return s
}

func top(s v1alpha1.WorkflowStepBase) v1alpha1.WorkflowStep {
	return v1alpha1.WorkflowStep{WorkflowStepBase: s}
}

func modeOf(m v1alpha1.WorkflowMode) *v1alpha1.WorkflowMode { return &m }

func execMode(steps, subSteps v1alpha1.WorkflowMode) *v1alpha1.WorkflowExecuteMode {
	return &v1alpha1.WorkflowExecuteMode{Steps: steps, SubSteps: subSteps}
}

// shape draws the graph one step a line, parents before children:
// "name <- deps", a group with its sub-step mode in brackets, sub-steps
// indented.
func shape(g *graph.Graph) []string {
	var out []string
	for _, s := range g.All() {
		var b strings.Builder
		if s.Parent != nil {
			b.WriteString("  ")
		}
		b.WriteString(s.Name)
		if s.IsGroup() {
			fmt.Fprintf(&b, " [%s]", s.ChildMode)
		}
		if len(s.Deps) > 0 {
			var deps []string
			for _, d := range s.Deps {
				deps = append(deps, d.Name)
			}
			fmt.Fprintf(&b, " <- %s", strings.Join(deps, ","))
		}
		out = append(out, b.String())
	}
	return out
}

func TestBuild(t *testing.T) {
	for _, tc := range []struct {
		name     string
		steps    []v1alpha1.WorkflowStep
		mode     *v1alpha1.WorkflowExecuteMode
		want     []string
		wantMode v1alpha1.WorkflowExecuteMode
	}{{
		name:     "no mode: steps one by one, sub-steps as a DAG",
		steps:    []v1alpha1.WorkflowStep{step("a"), step("b"), group("g", nil, base("x"), base("y")), step("c")},
		want:     []string{"a", "b <- a", "g [DAG] <- b", "  x", "  y", "c <- g"},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: stepByStep, SubSteps: dag},
	}, {
		name:     "empty mode fields take the defaults",
		steps:    []v1alpha1.WorkflowStep{step("a"), group("g", nil, base("x"), base("y"))},
		mode:     &v1alpha1.WorkflowExecuteMode{},
		want:     []string{"a", "g [DAG] <- a", "  x", "  y"},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: stepByStep, SubSteps: dag},
	}, {
		name:     "DAG steps without edges start at once",
		steps:    []v1alpha1.WorkflowStep{step("a"), step("b"), step("c")},
		mode:     execMode(dag, ""),
		want:     []string{"a", "b", "c"},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: dag, SubSteps: dag},
	}, {
		name:     "sub-steps one by one from the run's mode",
		steps:    []v1alpha1.WorkflowStep{group("g", nil, base("x"), base("y"), base("z"))},
		mode:     execMode("", stepByStep),
		want:     []string{"g [StepByStep]", "  x", "  y <- x", "  z <- y"},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: stepByStep, SubSteps: stepByStep},
	}, {
		name: "a group's own mode overrides the run's; an empty one does not",
		steps: []v1alpha1.WorkflowStep{
			group("g", modeOf(dag), base("x"), base("y")),
			group("h", modeOf(""), base("p"), base("q")),
			group("k", modeOf(stepByStep), base("r"), base("s")),
		},
		mode: execMode(dag, stepByStep),
		want: []string{
			"g [DAG]", "  x", "  y",
			"h [StepByStep]", "  p", "  q <- p",
			"k [StepByStep]", "  r", "  s <- r",
		},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: dag, SubSteps: stepByStep},
	}, {
		name:     "DAG: dependsOn, deps in written order, named twice counted once",
		steps:    []v1alpha1.WorkflowStep{step("a"), step("b", "a"), step("c", "b", "a", "b"), step("d")},
		mode:     execMode(dag, dag),
		want:     []string{"a", "b <- a", "c <- a,b", "d"},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: dag, SubSteps: dag},
	}, {
		name:     "StepByStep: dependsOn adds to the step before",
		steps:    []v1alpha1.WorkflowStep{step("a"), step("b"), step("c", "a"), step("d", "c")},
		want:     []string{"a", "b <- a", "c <- a,b", "d <- c"},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: stepByStep, SubSteps: dag},
	}, {
		name:     "dependsOn among sub-steps",
		steps:    []v1alpha1.WorkflowStep{group("g", nil, base("x"), base("y", "x"), base("z", "x", "y"))},
		want:     []string{"g [DAG]", "  x", "  y <- x", "  z <- x,y"},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: stepByStep, SubSteps: dag},
	}, {
		name: "DAG: a step waits for the producers of its inputs",
		steps: []v1alpha1.WorkflowStep{
			top(inputs(base("use"), "image", "tag")),
			top(outputs(base("build"), "image")),
			top(outputs(base("label"), "tag")),
		},
		mode:     execMode(dag, ""),
		want:     []string{"use <- build,label", "build", "label"},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: dag, SubSteps: dag},
	}, {
		name: "DAG: an input produced inside a group makes the step wait for the group",
		steps: []v1alpha1.WorkflowStep{
			group("g", nil, base("x"), outputs(base("y"), "image")),
			top(inputs(base("use"), "image")),
		},
		mode:     execMode(dag, ""),
		want:     []string{"g [DAG]", "  x", "  y", "use <- g"},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: dag, SubSteps: dag},
	}, {
		name: "an input produced by a sibling sub-step",
		steps: []v1alpha1.WorkflowStep{
			group("g", nil, inputs(base("use"), "image"), outputs(base("build"), "image")),
		},
		want:     []string{"g [DAG]", "  use <- build", "  build"},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: stepByStep, SubSteps: dag},
	}, {
		name: "a step's input from its own output adds no edge",
		steps: []v1alpha1.WorkflowStep{
			top(inputs(outputs(base("loop"), "n"), "n")),
		},
		mode:     execMode(dag, ""),
		want:     []string{"loop"},
		wantMode: v1alpha1.WorkflowExecuteMode{Steps: dag, SubSteps: dag},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := graph.Build(tc.steps, tc.mode)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if diff := cmp.Diff(tc.want, shape(g)); diff != "" {
				t.Errorf("graph (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantMode, g.Mode); diff != "" {
				t.Errorf("mode (-want +got):\n%s", diff)
			}
			for _, s := range g.All() {
				if got, ok := g.Step(s.Name); !ok || got != s {
					t.Errorf("Step(%q) = %v, %v; want the step", s.Name, got, ok)
				}
				for _, c := range s.Children {
					if c.Parent != s {
						t.Errorf("sub-step %q has parent %v, want %q", c.Name, c.Parent, s.Name)
					}
				}
			}
			if _, ok := g.Step("nope"); ok {
				t.Error(`Step("nope") found a step`)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []v1alpha1.WorkflowStep
		mode  *v1alpha1.WorkflowExecuteMode
		want  string
	}{{
		name:  "step without a name",
		steps: []v1alpha1.WorkflowStep{step("a"), step("")},
		want:  "step 2 has no name",
	}, {
		name:  "step without a type",
		steps: []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: "a"}}},
		want:  `step "a" has no type`,
	}, {
		name:  "two steps with one name",
		steps: []v1alpha1.WorkflowStep{step("a"), step("b"), step("a")},
		want:  `two steps are named "a"`,
	}, {
		name:  "a sub-step named like a step",
		steps: []v1alpha1.WorkflowStep{step("a"), group("g", nil, base("a"))},
		want:  `two steps are named "a"`,
	}, {
		name:  "two sub-steps of different groups with one name",
		steps: []v1alpha1.WorkflowStep{group("g", nil, base("x")), group("h", nil, base("x"))},
		want:  `two steps are named "x"`,
	}, {
		name:  "a group named like its sub-step",
		steps: []v1alpha1.WorkflowStep{group("g", nil, base("g"))},
		want:  `two steps are named "g"`,
	}, {
		name:  "dependsOn names no step",
		steps: []v1alpha1.WorkflowStep{step("a"), step("b", "z")},
		mode:  execMode(dag, ""),
		want:  `step "b" depends on "z", which is not a step at its level`,
	}, {
		name:  "a step depends on a sub-step",
		steps: []v1alpha1.WorkflowStep{group("g", nil, base("x")), step("b", "x")},
		want:  `step "b" depends on "x", which is not a step at its level`,
	}, {
		name:  "a sub-step depends on a step",
		steps: []v1alpha1.WorkflowStep{step("a"), group("g", nil, base("x", "a"))},
		want:  `step "x" depends on "a", which is not a step at its level`,
	}, {
		name:  "a sub-step depends on a sub-step of another group",
		steps: []v1alpha1.WorkflowStep{group("g", nil, base("x")), group("h", nil, base("y", "x"))},
		want:  `step "y" depends on "x", which is not a step at its level`,
	}, {
		name:  "an input no step outputs",
		steps: []v1alpha1.WorkflowStep{top(outputs(base("a"), "tag")), top(inputs(base("b"), "image"))},
		want:  `step "b" takes input "image", which no step outputs`,
	}, {
		name:  "a sub-step's input no step outputs",
		steps: []v1alpha1.WorkflowStep{group("g", nil, inputs(base("x"), "image"))},
		want:  `step "x" takes input "image", which no step outputs`,
	}, {
		name:  "two steps output one name",
		steps: []v1alpha1.WorkflowStep{top(outputs(base("a"), "image")), group("g", nil, outputs(base("x"), "image"))},
		want:  `output "image" is produced by both "a" and "x"`,
	}, {
		name:  "a cycle of dependsOn",
		steps: []v1alpha1.WorkflowStep{step("a", "c"), step("b", "a"), step("c", "b")},
		mode:  execMode(dag, ""),
		want:  "dependency cycle: a -> c -> b -> a",
	}, {
		name:  "a step that depends on itself",
		steps: []v1alpha1.WorkflowStep{step("a"), step("b", "b")},
		mode:  execMode(dag, ""),
		want:  "dependency cycle: b -> b",
	}, {
		name:  "StepByStep: dependsOn a later step",
		steps: []v1alpha1.WorkflowStep{step("a", "c"), step("b"), step("c")},
		want:  "dependency cycle: a -> c -> b -> a",
	}, {
		name: "a cycle of inputs",
		steps: []v1alpha1.WorkflowStep{
			top(inputs(outputs(base("a"), "x"), "y")),
			top(inputs(outputs(base("b"), "y"), "x")),
		},
		mode: execMode(dag, ""),
		want: "dependency cycle: a -> b -> a",
	}, {
		name:  "a cycle among sub-steps",
		steps: []v1alpha1.WorkflowStep{group("g", nil, base("x", "y"), base("y", "x"))},
		want:  "dependency cycle: x -> y -> x",
	}, {
		name:  "a group among sub-steps",
		steps: []v1alpha1.WorkflowStep{group("g", nil, base("x"), v1alpha1.WorkflowStepBase{Name: "inner", Type: graph.StepGroup})},
		want:  `sub-step "inner" of "g" is a step group; groups do not nest`,
	}, {
		name: "sub-steps under a step that is not a group",
		steps: []v1alpha1.WorkflowStep{{
			WorkflowStepBase: base("a"),
			SubSteps:         []v1alpha1.WorkflowStepBase{base("x")},
		}},
		want: `step "a" has sub-steps but type "apply"; only step-group steps have sub-steps`,
	}, {
		name:  "an unknown mode for steps",
		steps: []v1alpha1.WorkflowStep{step("a")},
		mode:  execMode("Parallel", ""),
		want:  `unknown mode "Parallel": want StepByStep or DAG`,
	}, {
		name:  "an unknown mode for a group",
		steps: []v1alpha1.WorkflowStep{group("g", modeOf("parallel"), base("x"))},
		want:  `unknown mode "parallel": want StepByStep or DAG`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := graph.Build(tc.steps, tc.mode)
			if err == nil {
				t.Fatalf("Build succeeded with %v, want error %q", shape(g), tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("Build error = %q, want %q", err, tc.want)
			}
		})
	}
}

func TestDownstream(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []v1alpha1.WorkflowStep
		mode  *v1alpha1.WorkflowExecuteMode
		from  string
		want  []string
	}{{
		name:  "StepByStep: the step and every later one",
		steps: []v1alpha1.WorkflowStep{step("a"), step("b"), step("c"), step("d")},
		from:  "b",
		want:  []string{"b", "c", "d"},
	}, {
		name:  "StepByStep: the last step alone",
		steps: []v1alpha1.WorkflowStep{step("a"), step("b")},
		from:  "b",
		want:  []string{"b"},
	}, {
		name:  "StepByStep: a later group with its sub-steps",
		steps: []v1alpha1.WorkflowStep{step("a"), group("g", nil, base("x"), base("y")), step("c")},
		from:  "a",
		want:  []string{"a", "g", "x", "y", "c"},
	}, {
		name:  "DAG: what waits on the step, directly or not",
		steps: []v1alpha1.WorkflowStep{step("a"), step("b", "a"), step("c", "b"), step("d"), step("e", "d", "c")},
		mode:  execMode(dag, ""),
		from:  "b",
		want:  []string{"b", "c", "e"},
	}, {
		name:  "DAG: an independent step alone",
		steps: []v1alpha1.WorkflowStep{step("a"), step("b", "a"), step("d")},
		mode:  execMode(dag, ""),
		from:  "d",
		want:  []string{"d"},
	}, {
		name: "DAG: consumers of the step's outputs",
		steps: []v1alpha1.WorkflowStep{
			top(outputs(base("build"), "image")),
			top(inputs(base("deploy"), "image")),
			step("other"),
		},
		mode: execMode(dag, ""),
		from: "build",
		want: []string{"build", "deploy"},
	}, {
		name:  "a group: its sub-steps and what waits on it",
		steps: []v1alpha1.WorkflowStep{step("a"), group("g", nil, base("x"), base("y")), step("c", "g"), step("d")},
		mode:  execMode(dag, ""),
		from:  "g",
		want:  []string{"g", "x", "y", "c"},
	}, {
		name:  "a sub-step in a DAG group: its dependents, its group and what waits on the group",
		steps: []v1alpha1.WorkflowStep{step("a"), group("g", nil, base("x"), base("y", "x"), base("z")), step("c", "g"), step("d", "c"), step("e")},
		mode:  execMode(dag, ""),
		from:  "x",
		want:  []string{"g", "x", "y", "c", "d"},
	}, {
		name:  "a sub-step in a StepByStep group",
		steps: []v1alpha1.WorkflowStep{step("a"), group("g", modeOf(stepByStep), base("x"), base("y"), base("z")), step("c")},
		from:  "y",
		want:  []string{"g", "y", "z", "c"},
	}, {
		name:  "an unknown step",
		steps: []v1alpha1.WorkflowStep{step("a")},
		from:  "nope",
		want:  nil,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := graph.Build(tc.steps, tc.mode)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			var got []string
			for _, s := range g.Downstream(tc.from) {
				got = append(got, s.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Downstream(%q) (-want +got):\n%s", tc.from, diff)
			}
		})
	}
}
