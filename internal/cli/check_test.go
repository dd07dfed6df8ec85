package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvdb/kvdb/internal/history"
)

// writeHistory writes ops as an NDJSON history in a temp dir.
func writeHistory(t *testing.T, ops ...history.Op) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.ndjson")
	w, err := history.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if err := w.Write(op); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// inversionHistory: a read sees the write, a later read does not.
func inversionHistory(t *testing.T) string {
	return writeHistory(t,
		history.Op{Seq: 0, Op: history.OpSet, Key: "x", Value: "a", Version: 1, Status: 201, Node: "n1", SentUS: 100, DoneUS: 200},
		history.Op{Seq: 1, Client: 1, Op: history.OpGet, Key: "x", Value: "a", Version: 1, Status: 200, Node: "n1", SentUS: 110, DoneUS: 120},
		history.Op{Seq: 2, Client: 2, Op: history.OpGet, Key: "x", Status: 404, Node: "n5", SentUS: 130, DoneUS: 140},
	)
}

func TestCheckNotLinearizable(t *testing.T) {
	path := inversionHistory(t)
	code, stdout, stderr := runCmd(t, Check, path)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"inversions: 1", "linearizable: NO", "key x: read #2 at n5 returned absent (404)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "linearizability.html")); err != nil {
		t.Errorf("no visualization beside the history: %v", err)
	}
}

func TestCheckLinearizableJSONAndVizFlag(t *testing.T) {
	path := writeHistory(t,
		history.Op{Seq: 0, Op: history.OpSet, Key: "x", Value: "a", Version: 1, Status: 201, SentUS: 100, DoneUS: 200},
		history.Op{Seq: 1, Op: history.OpGet, Key: "x", Value: "a", Version: 1, Status: 200, SentUS: 210, DoneUS: 220},
	)
	viz := filepath.Join(t.TempDir(), "v.html")
	code, stdout, _ := runCmd(t, Check, "-json", filepath.Dir(path), "-viz", viz)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
	var res struct {
		Linearizable *bool `json:"linearizable"`
		StaleReads   int   `json:"stale_reads"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Linearizable == nil || !*res.Linearizable {
		t.Fatalf("json output %q: %v", stdout, err)
	}
	if _, err := os.Stat(viz); !os.IsNotExist(err) {
		t.Errorf("visualization written for a linearizable history")
	}
}

func TestCheckUsage(t *testing.T) {
	if code, _, stderr := runCmd(t, Check, "-h"); code != 0 || !strings.Contains(stderr, "--timeout") || !strings.Contains(stderr, "--viz") {
		t.Errorf("-h: exit %d\n%s", code, stderr)
	}
	for _, args := range [][]string{{}, {"a", "b"}, {"-timeout", "x", "a"}, {"-nope", "a"}} {
		if code, _, _ := runCmd(t, Check, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, _, stderr := runCmd(t, Check, filepath.Join(t.TempDir(), "missing.ndjson")); code != 1 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d %q", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.ndjson")
	if err := os.WriteFile(bad, []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCmd(t, Check, bad); code != 1 || !strings.Contains(stderr, "line 1") {
		t.Errorf("bad history: exit %d %q", code, stderr)
	}
}
