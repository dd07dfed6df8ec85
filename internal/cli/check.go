package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kvdb/kvdb/internal/check"
	"github.com/kvdb/kvdb/internal/history"
	"github.com/kvdb/kvdb/internal/load"
)

// Check analyses a recorded history: stale reads, inversions, the
// write-to-read interval distribution and a porcupine linearizability
// verdict. Exit status: 0 linearizable, 1 not linearizable, undecided
// (timeout) or unreadable history, 2 bad usage.
func Check(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("check", "[flags] HISTORY   (a history.ndjson, or the results directory holding one)", env.Stderr, false)
	cfg := check.Config{}
	cfg.SetDefaults()
	var asJSON bool
	fs.Var(secondsFlag{&cfg.Timeout}, "timeout", "time budget of the linearizability check (seconds or a Go `duration`); past it the verdict is unknown")
	fs.StringVar(&cfg.VizPath, "viz", "", "`file` to write porcupine's HTML visualization of a violation to\n(default "+load.VizFile+" beside the history)")
	fs.IntVar(&cfg.MaxVizKeys, "viz-keys", cfg.MaxVizKeys, "most violating keys drawn in the visualization")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON (the same keys as summary.json)")
	pos, err := parseInterspersed(fs, args)
	if err == nil && len(pos) != 1 {
		err = fmt.Errorf("want exactly one HISTORY argument, got %d", len(pos))
	}
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	path := historyPath(pos[0])
	if cfg.VizPath == "" {
		cfg.VizPath = filepath.Join(filepath.Dir(path), load.VizFile)
	}
	ops, err := history.ReadFile(path)
	if err != nil {
		fmt.Fprintf(env.Stderr, "kvdb check: %v\n", err)
		return 1
	}
	res, err := check.Run(ctx, ops, cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "kvdb check: %v\n", err)
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		printCheck(env.Stdout, path, ops, res)
	}
	if res.Linearizability.Verdict == check.Linearizable {
		return 0
	}
	return 1
}

// historyPath accepts a results directory for its history file.
func historyPath(p string) string {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return filepath.Join(p, load.HistoryFile)
	}
	return p
}

// parseInterspersed parses flags placed before or after positional
// arguments and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func printCheck(w io.Writer, path string, ops []history.Op, res check.Result) {
	var reads, writes int
	for _, op := range ops {
		if op.IsWrite() {
			writes++
		} else {
			reads++
		}
	}
	lin := res.Linearizability
	fmt.Fprintf(w, "history: %s (%d operations: %d reads, %d writes; %d keys)\n", path, len(ops), reads, writes, lin.Keys)
	fmt.Fprintf(w, "stale reads: %d of %d successful reads\n", res.StaleReads, res.Reads)
	printAnomalies(w, res.StaleExamples, "acknowledged")
	fmt.Fprintf(w, "inversions: %d\n", res.Inversions)
	printAnomalies(w, res.InversionExamples, "read")
	iv := res.WriteRead
	fmt.Fprintf(w, "write->read interval: %d reads, p50 %.1f p90 %.1f p99 %.1f max %.1f ms; %d during the write\n",
		iv.Count, iv.P50Ms, iv.P90Ms, iv.P99Ms, iv.MaxMs, iv.ReadsDuringWrite)
	fmt.Fprintf(w, "writes with unknown outcome: %d; reads of values never written: %d\n", lin.UnknownWrites, lin.ForeignReads)
	fmt.Fprintf(w, "linearizable: %s\n", lin)
	if len(lin.IllegalKeys) > 0 {
		fmt.Fprintf(w, "  violating keys: %v\n", lin.IllegalKeys)
	}
}

// printAnomalies names, for each example, what the read returned and the
// newer data (by real time, not version) it missed.
func printAnomalies(w io.Writer, xs []check.Anomaly, newer string) {
	for _, a := range xs {
		got := "absent (404)"
		if a.GotWriteSeq >= 0 {
			got = fmt.Sprintf("write #%d (version %d)", a.GotWriteSeq, a.Got)
		} else if a.Got != 0 {
			got = fmt.Sprintf("version %d", a.Got)
		}
		fmt.Fprintf(w, "  key %s: read #%d at %s returned %s, but #%d (version %d), newer in real time, was %s %.1f ms before\n",
			a.Key, a.Seq, a.Node, got, a.NewerSeq, a.Newer, newer, a.LagMs)
	}
}
