//go:build kvdb_node

package cli

import (
	"context"
	"fmt"
)

// The node-only build (go build -tags kvdb_node, what the container image
// runs) leaves out the commands that only measure: experiment, report and
// bench, and with them the charting, PDF and benchmark code, about 9 MB of
// the 20 MB binary (see docs/performance.md, "The container image"). The
// commands stay in the command list and answer with this message, so a
// script run against the image says what is wrong instead of "unknown
// command". `make build` and `go install` build the full binary.

// NodeOnlyBuild reports whether this binary is the node-only build.
const NodeOnlyBuild = true

// notInNodeBuild is the Run of a command this build leaves out.
func notInNodeBuild(name string) func(context.Context, []string, Env) int {
	return func(_ context.Context, _ []string, env Env) int {
		fmt.Fprintf(env.Stderr, "kvdb %s: not in this build: this kvdb is the node-only build of the container image (-tags kvdb_node), "+
			"which leaves out experiment, report and bench; run them with the full kvdb binary (make build, or go install github.com/kvdb/kvdb/cmd/kvdb)\n", name)
		return 2
	}
}

// Experiment is not in the node-only build.
func Experiment(ctx context.Context, args []string, env Env) int {
	return notInNodeBuild("experiment")(ctx, args, env)
}

// Report is not in the node-only build.
func Report(ctx context.Context, args []string, env Env) int {
	return notInNodeBuild("report")(ctx, args, env)
}

// Bench is not in the node-only build.
func Bench(ctx context.Context, args []string, env Env) int {
	return notInNodeBuild("bench")(ctx, args, env)
}
