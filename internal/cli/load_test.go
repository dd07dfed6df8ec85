package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/load"
)

// syncBuffer is a bytes.Buffer safe for the progress goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCmd runs a command with captured output.
func runCmd(t *testing.T, cmd func(context.Context, []string, Env) int, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	code = cmd(context.Background(), args, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

func TestLoadUsage(t *testing.T) {
	code, _, stderr := runCmd(t, Load, "-h")
	if code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	for _, f := range []string{"--mode", "--write-ratio", "--duration", "--qps", "--nodes", "--keys", "--hot-read", "--recency", "--max-inflight", "--seed", "--timeout", "--out", "--check", "--read-from"} {
		if !strings.Contains(stderr, f+" ") {
			t.Errorf("usage lacks %s:\n%s", f, stderr)
		}
	}
}

func TestLoadBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "paxos"},
		{"--write-ratio", "1.5"},
		{"-duration", "soon"},
		{"-qps", "0"},
		{"-nodes", "ftp://x"},
		{"-read-from", "nowhere"},
		{"-recency", "0"},
		{"stray"},
	} {
		code, _, stderr := runCmd(t, Load, args...)
		if code != 2 || !strings.Contains(stderr, "kvdb load:") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}

func TestLoadNothingListening(t *testing.T) {
	code, _, stderr := runCmd(t, Load, "-nodes", "127.0.0.1:1", "-duration", "1", "-wait", "0.2", "-out", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "no node reachable") {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
}

// TestLoadThenCheck runs the original README's command shape against an
// in-process W5R1 cluster (shortened), then checks the history it wrote.
func TestLoadThenCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c, err := cluster.Start(context.Background(), cluster.Config{Preset: "w5r1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := runCmd(t, Load, "-mode", "leader", "-write-ratio", "0.5", "-duration", "1", "-qps", "50",
		"--nodes", strings.Join(c.URLs(), ","), "--read-from", "leader", "-out", out)
	if code != 0 {
		t.Fatalf("load exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"scheduled 50", "p99.9", "read", "write", "stale reads: 0", "linearizable: yes", out} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	var sum map[string]any
	b, err := os.ReadFile(filepath.Join(out, load.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"target_qps", "achieved_qps", "stale_reads", "inversions", "linearizable", "read", "write"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("summary.json lacks %q", k)
		}
	}
	for _, k := range []string{"count", "errors", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"} {
		if _, ok := sum["read"].(map[string]any)[k]; !ok {
			t.Errorf("summary.json read lacks %q", k)
		}
	}

	code, stdout, _ = runCmd(t, Check, out, "-timeout", "20s")
	if code != 0 || !strings.Contains(stdout, "linearizable: yes") {
		t.Fatalf("check exit %d:\n%s", code, stdout)
	}
}
