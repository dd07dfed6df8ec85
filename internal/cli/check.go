package cli

import (
	"context"
	"fmt"
)

// Check checks a history. (Being built: see issue 3.)
func Check(ctx context.Context, args []string, env Env) int {
	fmt.Fprintln(env.Stderr, "kvdb check: not built yet")
	return 1
}
