package eval_test

import "github.com/stepflow-dev/stepflow/pkg/op/builtin"

func builtinFamily() *builtin.Family { return builtin.New() }
