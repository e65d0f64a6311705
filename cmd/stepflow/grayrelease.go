package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/app"
)

// grayReleaseExample is the --example value that runs the gray release
// of examples/gray-release.yaml instead of applying a WorkflowRun.
const grayReleaseExample = "gray-release"

// runGrayRelease walks through a gray release the way the README tells it,
// with the stepflow commands a person would type: DEPLOY v1 and promote it;
// DEPLOY v2 as a canary and roll it back to v1.
func runGrayRelease(ctx context.Context, c client.WithWatch, path, kubeconfig string, say func(string, ...any)) error {
	// runLocal reports the workloads up as kubelets would.
	cli := func(args ...string) error {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		args = append([]string{"--kubeconfig", kubeconfig, "-n", exampleNamespace}, args...)
		say("  $ stepflow %s", strings.Join(args[2:], " "))
		out, err := exec.CommandContext(ctx, self, args...).CombinedOutput()
		if s := strings.TrimSpace(string(out)); s != "" {
			say("    %s", strings.ReplaceAll(s, "\n", "\n    "))
		}
		if err != nil {
			return fmt.Errorf("stepflow %s: %w", args[2], err)
		}
		return nil
	}
	workload := func() {
		var s appsv1.StatefulSet
		if err := c.Get(ctx, types.NamespacedName{Namespace: exampleNamespace, Name: "clustermanage"}, &s); err != nil {
			return
		}
		partition := int32(0)
		if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
			partition = *ru.Partition
		}
		say("  StatefulSet clustermanage: image %s, partition %d, %d of %d replicas updated",
			s.Spec.Template.Spec.Containers[0].Image, partition, s.Status.UpdatedReplicas, *s.Spec.Replicas)
	}
	release := func(name, image, decision string, continueRollout, rollback bool) error {
		say("")
		say("▶ %s: DEPLOY %s as a partition canary, then %s", name, image, decision)
		if err := cli("launch", "-f", path, "--category", "DEPLOY", "--name", name, "--run-context", "image="+image); err != nil {
			return err
		}
		suspended, err := follow(ctx, c, name, say, func(r *v1alpha1.WorkflowRun) bool { return r.Status.Phase == v1alpha1.WorkflowRunSuspending })
		if err != nil || !suspended {
			return err
		}
		workload()
		if err := cli("context", "set", name, fmt.Sprintf("continueRollout=%t", continueRollout), fmt.Sprintf("rollback=%t", rollback)); err != nil {
			return err
		}
		if err := cli("resume", name); err != nil {
			return err
		}
		if _, err := follow(ctx, c, name, say, func(r *v1alpha1.WorkflowRun) bool { return r.Status.Finished }); err != nil {
			return err
		}
		workload()
		return nil
	}
	if err := release("gray-v1", "nginx:1.26", "promote it (continueRollout=true)", true, false); err != nil {
		return err
	}
	if err := release("gray-v2", "nginx:1.27", "roll it back (rollback=true)", false, true); err != nil {
		return err
	}
	var rollbacks v1alpha1.WorkflowRunList
	if err := c.List(ctx, &rollbacks, client.InNamespace(exampleNamespace), client.MatchingLabels{app.LabelCategory: "ROLLBACK"}); err != nil {
		return err
	}
	for _, r := range rollbacks.Items {
		say("▶ ROLLBACK run %s: %s", r.Name, r.Status.Phase)
	}
	say("▶ the gray release is done; see README.md, \"Gray release\", to do it by hand")
	return nil
}

// follow prints the steps of run name as they change until done says the
// run got where it should, or the run finished (false then, unless done
// accepts a finished run).
func follow(ctx context.Context, c client.WithWatch, name string, say func(string, ...any), done func(*v1alpha1.WorkflowRun) bool) (bool, error) {
	w, err := c.Watch(ctx, &v1alpha1.WorkflowRunList{}, client.InNamespace(exampleNamespace))
	if err != nil {
		return false, err
	}
	defer w.Stop()
	seen := map[string]string{}
	for ev := range w.ResultChan() {
		r, ok := ev.Object.(*v1alpha1.WorkflowRun)
		if !ok || r.Name != name {
			continue
		}
		for _, s := range r.Status.Steps {
			state := string(s.Phase) + " " + s.Message
			if seen[s.Name] == state {
				continue
			}
			seen[s.Name] = state
			line := fmt.Sprintf("  %s  %-20s %-10s", time.Now().Format("15:04:05"), s.Name, s.Phase)
			if s.Message != "" {
				line += "  " + s.Message
			}
			say("%s", line)
		}
		if done(r) {
			if r.Status.Finished {
				msg := ""
				if r.Status.Message != "" {
					msg = ": " + r.Status.Message
				}
				say("▶ run %s %s%s", r.Name, r.Status.Phase, msg)
			}
			return true, nil
		}
		if r.Status.Finished {
			say("▶ run %s %s: %s", r.Name, r.Status.Phase, r.Status.Message)
			return false, fmt.Errorf("run %s ended %s before it got there", r.Name, r.Status.Phase)
		}
	}
	return false, ctx.Err()
}
