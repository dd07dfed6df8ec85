//go:build !kvdb_node

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchUsage(t *testing.T) {
	code, _, stderr := runCmd(t, Bench, "-h")
	if code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	for _, f := range []string{"--mode", "--concurrency", "--rate", "--write-ratio", "--value-size", "--keys", "--duration", "--workloads", "--systems", "--quick", "--out", "--memory"} {
		if !strings.Contains(stderr, f+" ") {
			t.Errorf("usage lacks %s:\n%s", f, stderr)
		}
	}
}

func TestBenchBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--mode", "sideways"},
		{"--mode", "open"}, // no --rate
		{"--write-ratio", "2"},
		{"--systems", "mongodb"},
		{"--workloads", "w9r9"},
		{"--concurrency", "0"},
		{"extra"},
	} {
		// Should a case be accepted by mistake, keep its run tiny and
		// kvdb-only (later flags override earlier ones).
		safe := []string{"--kvdb-inprocess", "--systems", "kvdb", "--workloads", "read-r1", "--duration", "50ms", "--warmup", "0", "--keys", "10", "--out", t.TempDir()}
		if code, _, stderr := runCmd(t, Bench, append(safe, args...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
}

// One short side-by-side run, kvdb only (an in-process cluster): the peers
// are not needed when --systems kvdb is given.
func TestBenchKVDBOnly(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench")
	code, stdout, stderr := runCmd(t, Bench, "--kvdb-inprocess", "--systems", "kvdb", "--workloads", "read-r1,w5r1-50",
		"--duration", "300ms", "--warmup", "50ms", "--keys", "200", "--concurrency", "4", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(out, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows: %s", len(rows), raw)
	}
	for i, want := range []string{"read-r1", "w5r1-50"} {
		r := rows[i]
		if r["workload"] != want || r["system"] != "kvdb" || !(r["ops_per_sec"].(float64) > 0) || r["errors"].(float64) != 0 {
			t.Errorf("row %d: %v", i, r)
		}
		for _, k := range []string{"p50_ms", "p99_ms", "p999_ms"} {
			if _, ok := r[k]; !ok {
				t.Errorf("row %d lacks %s", i, k)
			}
		}
	}
	if rows[0]["write_ratio"].(float64) != 0 || rows[1]["write_ratio"].(float64) != 0.5 {
		t.Errorf("write ratios %v, %v: each workload keeps its own", rows[0]["write_ratio"], rows[1]["write_ratio"])
	}
	md, err := os.ReadFile(filepath.Join(out, "bench.md"))
	if err != nil || !strings.Contains(string(md), "| read-r1 (100% reads, R=1) |") {
		t.Errorf("bench.md: %v\n%s", err, md)
	}
	if !strings.Contains(stdout, "[2/2] w5r1-50") || !strings.Contains(stdout, "results: ") {
		t.Errorf("progress:\n%s", stdout)
	}
}

func TestBenchMemory(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := runCmd(t, Bench, "--memory", "--memory-keys", "5000", "--out", out)
	if code != 0 || !strings.Contains(stdout, "bytes/key") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "memory.json")); err != nil {
		t.Error(err)
	}
}
