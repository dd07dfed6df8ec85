package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	kvdbOnce sync.Once
	kvdbPath string
	kvdbErr  error
	binDir   string // removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// kvdbBinary builds the kvdb binary for this host once per test binary; it
// returns "" (and logs why) if `kvdb load` is not available.
func kvdbBinary(t *testing.T) string {
	t.Helper()
	kvdbOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kvdb-systemtest-")
		if err != nil {
			kvdbErr = err
			return
		}
		binDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		p := filepath.Join(dir, "kvdb")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", p, "./cmd/kvdb")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			kvdbErr = fmt.Errorf("go build ./cmd/kvdb: %w\n%s", err, out)
			return
		}
		if err := exec.Command(p, "load", "-h").Run(); err != nil {
			kvdbErr = fmt.Errorf("kvdb load -h: %w (load tester not available)", err)
			return
		}
		kvdbPath = p
	})
	if kvdbErr != nil {
		t.Logf("not running kvdb load: %v", kvdbErr)
	}
	return kvdbPath
}

// loadStats is one op kind's part of kvdb load's summary.json.
type loadStats struct {
	Count          int            `json:"count"`
	OK             int            `json:"ok"`
	Errors         int            `json:"errors"`
	ErrorsByStatus map[string]int `json:"errors_by_status"`
	Dropped        int            `json:"dropped"`
	P50            float64        `json:"p50_ms"`
	P99            float64        `json:"p99_ms"`
	Max            float64        `json:"max_ms"`
}

// loadSummary is the part of summary.json the tests check.
type loadSummary struct {
	Sent         int       `json:"sent"`
	Dropped      int       `json:"dropped"`
	AchievedQPS  float64   `json:"achieved_qps"`
	Read         loadStats `json:"read"`
	Write        loadStats `json:"write"`
	StaleReads   int       `json:"stale_reads"`
	Inversions   int       `json:"inversions"`
	Linearizable *bool     `json:"linearizable"`
}

func (s *loadSummary) String() string {
	lin := "unknown"
	if s.Linearizable != nil {
		lin = fmt.Sprint(*s.Linearizable)
	}
	return fmt.Sprintf("sent %d at %.1f qps; reads n=%d ok=%d errors=%v p50=%.1fms p99=%.1fms max=%.1fms; writes n=%d ok=%d errors=%v p50=%.1fms p99=%.1fms max=%.1fms; stale reads %d, inversions %d, linearizable %s",
		s.Sent, s.AchievedQPS, s.Read.Count, s.Read.OK, s.Read.ErrorsByStatus, s.Read.P50, s.Read.P99, s.Read.Max,
		s.Write.Count, s.Write.OK, s.Write.ErrorsByStatus, s.Write.P50, s.Write.P99, s.Write.Max,
		s.StaleReads, s.Inversions, lin)
}

// loadRun is `kvdb load` running in the background against a cluster.
type loadRun struct {
	cmd  *exec.Cmd
	out  string
	log  bytes.Buffer
	done chan error
}

// startLoad starts `kvdb load` against nodes (the first is the leader in
// leader mode) for d at qps; nil if the load tester is not available. Every
// request is bounded by the cluster's request timeout plus a margin.
func startLoad(t *testing.T, c *cluster, mode string, nodes []*node, writeRatio float64, d time.Duration, qps int) *loadRun {
	t.Helper()
	bin := kvdbBinary(t)
	if bin == "" {
		return nil
	}
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.URL)
	}
	lr := &loadRun{out: t.TempDir(), done: make(chan error, 1)}
	args := []string{"load", "-mode", mode, "-write-ratio", fmt.Sprint(writeRatio), "-duration", d.String(),
		"-qps", fmt.Sprint(qps), "-nodes", strings.Join(urls, ","), "-timeout", c.limit().String(),
		"-out", lr.out, "-check-timeout", "20s"}
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Minute)
	t.Cleanup(cancel)
	lr.cmd = exec.CommandContext(ctx, bin, args...)
	lr.cmd.Stdout, lr.cmd.Stderr = &lr.log, &lr.log
	if err := lr.cmd.Start(); err != nil {
		t.Fatalf("kvdb load: %v", err)
	}
	t.Logf("kvdb %s", strings.Join(args, " "))
	go func() { lr.done <- lr.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-lr.done:
		default:
			lr.cmd.Process.Kill()
			<-lr.done
		}
	})
	return lr
}

// wait waits for the load run to finish and returns its summary.
func (lr *loadRun) wait(t *testing.T) *loadSummary {
	t.Helper()
	err := <-lr.done
	lr.done <- err // for the cleanup
	b, rerr := os.ReadFile(filepath.Join(lr.out, "summary.json"))
	if rerr != nil {
		t.Fatalf("kvdb load (%v) left no summary: %v\n%s", err, rerr, lr.log.String())
	}
	var s loadSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("kvdb load summary: %v", err)
	}
	if err != nil {
		t.Logf("kvdb load exited with %v (non-zero exit is expected when requests fail)", err)
	}
	t.Logf("kvdb load: %s", &s)
	return &s
}

// checkLoad asserts what holds for every fault: the open-loop load never
// dropped a request, no request took longer than the limit, and errors are
// only the given statuses.
func checkLoad(t *testing.T, c *cluster, s *loadSummary, readErrs, writeErrs []string) {
	t.Helper()
	limitMs := float64(c.limit().Milliseconds())
	if s.Dropped != 0 {
		t.Errorf("kvdb load dropped %d requests", s.Dropped)
	}
	for _, st := range []struct {
		name    string
		s       loadStats
		allowed []string
	}{{"read", s.Read, readErrs}, {"write", s.Write, writeErrs}} {
		if st.s.Count == 0 {
			t.Errorf("kvdb load sent no %ss", st.name)
		}
		if st.s.Max > limitMs {
			t.Errorf("kvdb load: a %s took %.0fms, over the %v limit", st.name, st.s.Max, c.limit())
		}
		for status, n := range st.s.ErrorsByStatus {
			ok := false
			for _, a := range st.allowed {
				ok = ok || a == status
			}
			if !ok {
				t.Errorf("kvdb load: %d %ss failed with status %s (allowed: %v)", n, st.name, status, st.allowed)
			}
		}
	}
}
