package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/stepflow-dev/stepflow/pkg/op/opset"
	"github.com/stepflow-dev/stepflow/pkg/sandbox"
)

// newEvalWorkerCmd is the hidden `stepflow eval-worker`: the controller
// starts this binary with it for each evaluator worker process (see
// pkg/sandbox). It speaks the protocol on stdin and stdout.
func newEvalWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    sandbox.DefaultWorkerCommand,
		Short:  "Evaluate CUE for the controller (started by it, not by hand)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// stdout carries the protocol: anything else printed goes to
			// stderr, the controller's log.
			proto := os.Stdout
			os.Stdout = os.Stderr
			return sandbox.Serve(os.Stdin, proto, sandbox.WorkerOptions{Ops: opset.Catalog()})
		},
	}
}
