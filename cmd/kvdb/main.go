// Command kvdb is a replicated key-value database and the tools to measure
// it. See `kvdb help` and the README.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/kvdb/kvdb/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.OSEnv(term.IsTerminal(int(os.Stdout.Fd()))))
	stop()
	os.Exit(code)
}
