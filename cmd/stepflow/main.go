// Command stepflow is the Stepflow CLI (and, later, its controller). This
// is the only place that builds the world: flags become options, options
// become the op registry and the commands.
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/stepflow-dev/stepflow/pkg/cli"
)

func main() {
	// stepflow local's etcd and kube-apiserver start through this binary.
	execControlPlaneChild(os.Args)
	os.Exit(cli.Main(cli.Deps{
		Stdout: os.Stdout, Stderr: os.Stderr, Ops: buildOps,
		Commands: []*cobra.Command{newControllerCmd(), newLocalCmd(), newEvalWorkerCmd(), newServerCmd()},
	}, os.Args[1:]))
}
