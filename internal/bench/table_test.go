package bench

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

func sampleRows() []driver.Result {
	return []driver.Result{
		{Workload: "read-r1", System: "kvdb", OpsPerSec: 20000, P50Ms: 1, P99Ms: 4, P999Ms: 8, Reads: 100, Notes: "kvdb w5r1"},
		{Workload: "read-r1", System: "redis", OpsPerSec: 40000, P50Ms: 0.5, P99Ms: 2, P999Ms: 3, Reads: 100, Notes: "redis note"},
		{Workload: "read-r1", System: "etcd", OpsPerSec: 8000, P50Ms: 3, P99Ms: 16, P999Ms: 30, MaxMs: 31, ReadP50Ms: 3, Reads: 100, Errors: 2, ClientCPUPct: 45},
		{Workload: "w5r1-50", System: "etcd", OpsPerSec: 4000, P50Ms: 6, P99Ms: 40, P999Ms: 55, Reads: 50, Writes: 50},
		{Workload: "w5r1-50", System: "kvdb", OpsPerSec: 6000, P50Ms: 5, P99Ms: 20, P999Ms: 30, Reads: 50, Writes: 50},
	}
}

func TestRatios(t *testing.T) {
	rows := sampleRows()
	for _, c := range []struct {
		workload, system string
		want             float64
		ok               bool
	}{
		{"read-r1", "redis", 0.5, true},
		{"read-r1", "etcd", 2.5, true},
		{"w5r1-50", "etcd", 1.5, true},
		{"w5r1-50", "redis", 0, false}, // no redis row for it
		{"nope", "etcd", 0, false},
	} {
		got, ok := Ratio(rows, c.workload, c.system)
		if ok != c.ok || got != c.want {
			t.Errorf("Ratio(%s, %s) = %g, %v; want %g, %v", c.workload, c.system, got, ok, c.want, c.ok)
		}
	}
	if r, ok := LatencyRatio(rows, "w5r1-50", "etcd"); !ok || r != 0.5 {
		t.Errorf("p99 ratio w5r1-50/etcd = %g, %v; want 0.5", r, ok)
	}
}

func TestMarkdownTable(t *testing.T) {
	meta := Meta{Drive: driver.DefaultConfig(), CPUs: 2, GOOS: "linux", GOARCH: "amd64", Go: "go1.x",
		Versions: map[string]string{"redis": "Redis server v=7.0.15"}}
	md := Markdown(sampleRows(), meta)
	for _, want := range []string{
		"closed loop, 32 concurrent clients per system",
		"Redis server v=7.0.15",
		// Systems in canonical order, then one ratio column per peer.
		"| workload | kvdb | redis | etcd | kvdb/redis | kvdb/etcd |",
		"| read-r1 (100% reads, R=1) | 20000 | 40000 | 8000 | 0.50 | 2.50 |",
		"| w5r1-50 (50/50, W5R1) | 6000 | — | 4000 | — | 1.50 |",
		"| read-r1 | etcd | 8000 | 3.000 | 16.000 | 30.000 | 31.000 | 3.000 | — | 2 | 45% | 2.50 | 0.25 |",
		"| w5r1-50 | kvdb | 6000 | 5.000 | 20.000 | 30.000 |",
		"- **redis**: redis note",
		"- **kvdb**, read-r1: kvdb w5r1",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// Every table row has as many cells as its header.
	for _, block := range strings.Split(md, "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if !strings.HasPrefix(lines[0], "|") {
			continue
		}
		n := strings.Count(lines[0], "|")
		for _, l := range lines {
			if strings.Count(l, "|") != n {
				t.Errorf("row %q has %d separators, header %d", l, strings.Count(l, "|"), n)
			}
		}
	}
}

func TestMarkdownWithoutKVDBHasNoRatios(t *testing.T) {
	rows := []driver.Result{{Workload: "w3r3-50", System: "etcd", OpsPerSec: 100}}
	md := Markdown(rows, Meta{Drive: driver.DefaultConfig()})
	if strings.Contains(md, "kvdb/etcd") {
		t.Errorf("ratio column without a kvdb row:\n%s", md)
	}
}

func TestWriteResultsRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	rows := sampleRows()
	if err := WriteResults(dir, rows, Meta{Drive: driver.DefaultConfig()}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadResults(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rows) {
		t.Errorf("bench.json round trip:\n got %+v\nwant %+v", got, rows)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, JSONFile))
	for _, field := range []string{`"workload"`, `"system"`, `"ops_per_sec"`, `"p50_ms"`, `"p99_ms"`, `"p999_ms"`, `"errors"`} {
		if !strings.Contains(string(raw), field) {
			t.Errorf("bench.json lacks %s", field)
		}
	}
	if md, err := os.ReadFile(filepath.Join(dir, MarkdownFile)); err != nil || !strings.Contains(string(md), "kvdb/redis") {
		t.Errorf("bench.md: %v\n%s", err, md)
	}
	// No rows still gives a valid (empty) list.
	if err := WriteResults(dir, nil, Meta{}); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadResults(filepath.Join(dir, JSONFile)); err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty results: %v %v", got, err)
	}
}

func TestWriteText(t *testing.T) {
	var b strings.Builder
	WriteText(&b, sampleRows())
	out := b.String()
	if !strings.Contains(out, "kvdb/X ops/s") || strings.Count(out, "\n") != 6 {
		t.Errorf("text table:\n%s", out)
	}
}

func TestSelect(t *testing.T) {
	ws, err := SelectWorkloads("w1r5-90w, read-r1")
	if err != nil || len(ws) != 2 || ws[0].Name != "read-r1" || ws[1].Name != "w1r5-90w" {
		t.Errorf("SelectWorkloads: %v %v", ws, err)
	}
	if all, _ := SelectWorkloads(""); len(all) != 5 {
		t.Errorf("all workloads: %d", len(all))
	}
	if ws, err := SelectWorkloads("w5r1-writes"); err != nil || len(ws) != 1 || ws[0].WriteRatio != 1 {
		t.Errorf("the extra workload by name: %v %v", ws, err)
	}
	if _, err := SelectWorkloads("w9r9"); err == nil {
		t.Error("unknown workload accepted")
	}
	ss, err := SelectSystems("etcd,kvdb")
	if err != nil || !reflect.DeepEqual(ss, []string{"kvdb", "etcd"}) {
		t.Errorf("SelectSystems: %v %v", ss, err)
	}
	if _, err := SelectSystems("mongodb"); err == nil {
		t.Error("unknown system accepted")
	}
	if got := peerServers([]string{"kvdb", "redis-wait4", "etcd", "redis"}); !reflect.DeepEqual(got, []string{"redis", "etcd"}) {
		t.Errorf("peerServers: %v", got)
	}
}
