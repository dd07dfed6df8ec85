// Package cli implements kvdb's subcommands. Each command parses its own
// flags from args, runs until done or until ctx is cancelled (SIGINT or
// SIGTERM in main), and returns the process exit code: 0 success, 1
// failure, 2 bad usage or invalid configuration.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// Env is what a command may touch of the process.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads environment variables (os.Getenv in main).
	Getenv func(string) string
	// IsTerminal reports whether Stdout is a terminal (for live progress).
	IsTerminal bool
}

// Command is one subcommand.
type Command struct {
	Summary string
	Run     func(ctx context.Context, args []string, env Env) int
}

// Commands returns the subcommands by name.
func Commands() map[string]Command {
	return map[string]Command{
		"serve":       {Summary: "run one node", Run: Serve},
		"cluster":     {Summary: "run a 5-node cluster on 127.0.0.1 until Ctrl-C", Run: Cluster},
		"load":        {Summary: "open-loop load tester that records a full history", Run: Load},
		"check":       {Summary: "linearizability and staleness verdict for a recorded history", Run: Check},
		"experiment":  {Summary: "the main job: every config at every write ratio on embedded clusters, then the report", Run: Experiment},
		"report":      {Summary: "rebuild the report (charts, HTML, PDF) from a results folder", Run: Report},
		"healthcheck": {Summary: "exit 0 if the local node answers /health (container health check)", Run: Healthcheck},
		"bench":       {Summary: "throughput and latency of kvdb beside Redis and etcd (closed or open loop); --memory: bytes per key", Run: Bench},
	}
}

// Main dispatches args (without the program name) to a subcommand.
func Main(ctx context.Context, args []string, env Env) int {
	cmds := Commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "kvdb: unknown command %q\n\n", args[0])
		usage(env.Stderr, cmds)
		return 2
	}
	return cmd.Run(ctx, args[1:], env)
}

func usage(w io.Writer, cmds map[string]Command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "kvdb — a replicated key-value database and the tools to measure it")
	fmt.Fprintln(w, "\nusage: kvdb <command> [flags]   (kvdb <command> -h for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	for _, n := range names {
		summary := cmds[n].Summary
		if NodeOnlyBuild && (n == "experiment" || n == "report" || n == "bench") {
			summary = "[not in this build; use the full kvdb] " + summary
		}
		fmt.Fprintf(w, "  %-12s %s\n", n, summary)
	}
}

// newLogger returns a text logger on w at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// OSEnv returns the Env of the running process.
func OSEnv(isTerminal bool) Env {
	return Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, IsTerminal: isTerminal}
}
