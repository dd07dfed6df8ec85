package cli

import (
	"context"
	"fmt"
)

// Load runs the load tester. (Being built: see issue 3.)
func Load(ctx context.Context, args []string, env Env) int {
	fmt.Fprintln(env.Stderr, "kvdb load: not built yet")
	return 1
}
