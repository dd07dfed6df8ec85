package load

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/check"
	"github.com/kvdb/kvdb/internal/history"
)

func mustRun(t *testing.T, ctx context.Context, cfg Config) *Summary {
	t.Helper()
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func readHistory(t *testing.T, dir string) []history.Op {
	t.Helper()
	ops, err := history.ReadFile(filepath.Join(dir, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ops, func(a, b history.Op) int { return int(a.Seq - b.Seq) })
	return ops
}

// TestSlowServerKeepsRate: the server handles one request at a time and
// each takes 20 ms, so it completes at most 50 per second. At a target of
// 100 QPS a closed-loop client would fall to 50 QPS; the open-loop
// scheduler still sends every request at its intended time, and the
// latency measured from the intended time grows as the server's queue
// does.
func TestSlowServerKeepsRate(t *testing.T) {
	var serial sync.Mutex
	node := newFakeNode(t, newFakeStore(), "leader", func() {
		serial.Lock()
		time.Sleep(20 * time.Millisecond)
		serial.Unlock()
	})
	cfg := testConfig(t, urls(node))
	cfg.Check.SkipLinearizability = true
	sum := mustRun(t, context.Background(), cfg)
	ops := readHistory(t, cfg.OutDir)

	if len(ops) != 100 || sum.Scheduled != 100 || sum.Sent != 100 || sum.Dropped != 0 {
		t.Fatalf("history %d ops, scheduled %d sent %d dropped %d; want 100 sent", len(ops), sum.Scheduled, sum.Sent, sum.Dropped)
	}
	t0 := sum.Started.UnixMicro()
	for i, op := range ops {
		if want := t0 + int64(i)*10_000; op.Seq != int64(i) || op.IntendedUS != want {
			t.Fatalf("op %d: seq %d intended %d, want seq %d intended %d (t0 + i/QPS)", i, op.Seq, op.IntendedUS, i, want)
		}
	}
	if sum.AchievedQPS != 100 || sum.TargetQPS != 100 {
		t.Errorf("achieved %v QPS of target %v; want the target rate", sum.AchievedQPS, sum.TargetQPS)
	}
	// The server can finish request i no sooner than (i+1)*20ms after the
	// first arrives, while it was intended at i*10ms: latency from the
	// intended start must grow to at least ~1s by the last request.
	if last := ops[99].Latency(); last < 900*time.Millisecond {
		t.Errorf("last request latency %v; want >= 900ms (queueing counted from the intended start)", last)
	}
	if first, last := ops[0].Latency(), ops[99].Latency(); last < 10*first {
		t.Errorf("latency did not grow: first %v, last %v", first, last)
	}
	if sum.Write.P99Ms < sum.Write.Service.P50Ms || sum.Read.MaxMs < 900 && sum.Write.MaxMs < 900 {
		t.Errorf("summary latencies do not show the queue: read %+v write %+v", sum.Read.Percentiles, sum.Write.Percentiles)
	}
	if p := node.peak.Load(); p < 10 {
		t.Errorf("server saw at most %d concurrent requests; an open loop keeps sending (want >= 10)", p)
	}
}

func TestDropsWhenInFlightCapReached(t *testing.T) {
	release := make(chan struct{})
	node := newFakeNode(t, newFakeStore(), "leader", func() { <-release })
	cfg := testConfig(t, urls(node))
	cfg.MaxInFlight = 2
	cfg.Duration = 300 * time.Millisecond
	cfg.Check.SkipLinearizability = true
	done := make(chan *Summary)
	go func() {
		sum, err := Run(context.Background(), cfg)
		if err != nil {
			t.Error(err)
		}
		done <- sum
	}()
	// Hold both requests until the schedule is over, then let them finish.
	waitFor(t, func() bool { return node.requests.Load() == 2 })
	time.AfterFunc(cfg.Duration, func() { close(release) })
	sum := <-done
	if sum == nil {
		t.FailNow()
	}
	if sum.Scheduled != 30 || sum.Sent != 2 || sum.Dropped != 28 || node.peak.Load() != 2 {
		t.Fatalf("scheduled %d sent %d dropped %d peak %d; want 30 2 28 2", sum.Scheduled, sum.Sent, sum.Dropped, node.peak.Load())
	}
	ops := readHistory(t, cfg.OutDir)
	if len(ops) != 30 {
		t.Fatalf("history has %d ops, want every scheduled one (30)", len(ops))
	}
	for _, op := range ops {
		if op.Dropped && (op.Client != -1 || op.SentUS != 0 || op.ErrorClass() != history.ClassDropped) {
			t.Fatalf("bad dropped op %+v", op)
		}
	}
}

// waitFor polls cond until it holds or 5s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunAgainstLinearizableFake(t *testing.T) {
	store := newFakeStore()
	nodes := []*fakeNode{newFakeNode(t, store, "leader", nil), newFakeNode(t, store, "follower", nil), newFakeNode(t, store, "follower", nil)}
	cfg := testConfig(t, urls(nodes...))
	cfg.Mode = ModeLeaderless
	cfg.Keys.Keys = 20
	sum := mustRun(t, context.Background(), cfg)

	if sum.StaleReads != 0 || sum.Inversions != 0 || sum.Linearizable == nil || !*sum.Linearizable {
		t.Fatalf("stale %d inversions %d linearizable %v (%s)", sum.StaleReads, sum.Inversions, sum.Linearizable, sum.Linearizability)
	}
	if sum.Read.Count+sum.Write.Count != 100 || sum.Read.Errors+sum.Write.Errors != 0 || sum.Write.Count < 30 {
		t.Fatalf("read %+v write %+v", sum.Read, sum.Write)
	}
	ops := readHistory(t, cfg.OutDir)
	values := map[string]bool{}
	perNode := map[string]int{}
	for _, op := range ops {
		perNode[op.Node]++
		if !op.IsWrite() {
			continue
		}
		if values[op.Value] || !strings.HasPrefix(op.Value, sum.RunID+"-c") || !strings.HasPrefix(op.Key, sum.RunID+"-k") {
			t.Fatalf("write value %q key %q: want unique, prefixed with the run id %q", op.Value, op.Key, sum.RunID)
		}
		values[op.Value] = true
	}
	if len(perNode) != 3 {
		t.Errorf("leaderless load reached %d of 3 nodes", len(perNode))
	}
	if sum.WriteRead.Count == 0 || sum.WriteRead.P50Ms > 200 {
		t.Errorf("write->read intervals %+v: want reads close to writes", sum.WriteRead)
	}
	for _, f := range []string{SummaryFile, HistoryFile, ReadHDRFile, WriteHDRFile, IntervalHDRFile, PercentilesFile} {
		if _, err := os.Stat(filepath.Join(cfg.OutDir, f)); err != nil {
			t.Error(err)
		}
	}
	back, err := ReadSummary(cfg.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Read.P99Ms != sum.Read.P99Ms || back.Read.Latency.TotalCount() != int64(sum.Read.OK) || back.Config.Mode != ModeLeaderless || back.Linearizable == nil {
		t.Errorf("summary does not round-trip: %+v", back)
	}
}

// A follower that never receives data answers 404 after acknowledged
// writes: stale reads, not linearizable.
func TestStaleReadsFromLaggingFollower(t *testing.T) {
	store := newFakeStore()
	leader := newFakeNode(t, store, "leader", nil)
	follower := newFakeNode(t, nil, "follower", nil)
	cfg := testConfig(t, urls(leader, follower))
	cfg.ReadFrom = ReadFollowers
	cfg.Keys.HotRead, cfg.Keys.Recency = 1, 1
	sum := mustRun(t, context.Background(), cfg)
	if sum.StaleReads == 0 || sum.Linearizable == nil || *sum.Linearizable {
		t.Fatalf("stale %d linearizable %v", sum.StaleReads, sum.Linearizable)
	}
	if leader.requests.Load() != int64(sum.Write.Count) || follower.requests.Load() != int64(sum.Read.Count) {
		t.Errorf("leader got %d requests for %d writes, follower %d for %d reads", leader.requests.Load(), sum.Write.Count, follower.requests.Load(), sum.Read.Count)
	}
	if _, err := os.Stat(filepath.Join(cfg.OutDir, VizFile)); err != nil {
		t.Errorf("no visualization: %v", err)
	}
	if len(sum.StaleExamples) == 0 || sum.StaleExamples[0].Node != follower.URL {
		t.Errorf("stale examples %+v", sum.StaleExamples)
	}
}

func TestInterruptedRunWritesPartialResults(t *testing.T) {
	node := newFakeNode(t, newFakeStore(), "leader", nil)
	cfg := testConfig(t, urls(node))
	cfg.Duration = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		waitFor(t, func() bool { return node.requests.Load() >= 20 })
		cancel()
	}()
	start := time.Now()
	sum := mustRun(t, ctx, cfg)
	if !sum.Interrupted || sum.Scheduled < 20 || sum.Scheduled > 360_000-1 {
		t.Fatalf("interrupted %v scheduled %d", sum.Interrupted, sum.Scheduled)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("took %v to stop", time.Since(start))
	}
	if sum.Linearizability.Verdict != check.Unknown {
		t.Errorf("verdict after cancellation %q, want unknown", sum.Linearizability.Verdict)
	}
	if _, err := ReadSummary(filepath.Join(cfg.OutDir, SummaryFile)); err != nil {
		t.Error(err)
	}
}

func TestRunFailsFastWhenNothingListens(t *testing.T) {
	node := newFakeNode(t, nil, "leader", nil)
	url := node.URL
	node.Close()
	cfg := testConfig(t, []string{url})
	cfg.ReadyWait = 100 * time.Millisecond
	_, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig(t, []string{"ftp://x"})
	cfg.WriteRatio = 2
	_, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "write-ratio") || !strings.Contains(err.Error(), "ftp://x") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunWaitsForReadyNodes(t *testing.T) {
	node := newFakeNode(t, newFakeStore(), "leader", nil)
	node.notReady.Store(true)
	cfg := testConfig(t, urls(node))
	cfg.Duration = 100 * time.Millisecond
	cfg.ReadyWait = 10 * time.Second
	go func() {
		waitFor(t, func() bool { return node.healthChecks.Load() >= 3 })
		node.notReady.Store(false)
	}()
	sum := mustRun(t, context.Background(), cfg)
	if sum.Sent != 10 || node.healthChecks.Load() < 3 {
		t.Fatalf("sent %d after %d health checks", sum.Sent, node.healthChecks.Load())
	}
}

func TestRunStartsAfterWaitWhenSomeNodesNotReady(t *testing.T) {
	store := newFakeStore()
	ready, lagging := newFakeNode(t, store, "leader", nil), newFakeNode(t, store, "follower", nil)
	lagging.notReady.Store(true)
	var logs syncLog
	cfg := testConfig(t, urls(ready, lagging))
	cfg.Duration, cfg.ReadyWait = 100*time.Millisecond, 200*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	sum := mustRun(t, context.Background(), cfg)
	if sum.Sent != 10 || !strings.Contains(logs.String(), "node is not ready") {
		t.Fatalf("sent %d, logs %q", sum.Sent, logs.String())
	}
}

// syncLog is a log sink safe for concurrent writes.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// With FollowLeader a write that fails at the node writes go to moves the
// next write to the next node, and a follower's 307 is followed to the
// leader, which then takes the writes directly; without it every write
// goes to Nodes[0]. OnStart sees t0 before the first request.
func TestFollowLeader(t *testing.T) {
	store := newFakeStore()
	leader := newFakeNode(t, store, "leader", nil)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // refuses connections: a killed leader
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"status": "ok", "node": "f", "mode": "leader-follower", "role": "follower", "w": 1, "r": 1, "n": 3})
	})
	var redirected atomic.Int64
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		http.Redirect(w, r, leader.URL+"/set", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("GET /get/{key}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, map[string]string{"error": "key not found", "code": "not_found"})
	})
	follower := httptest.NewServer(mux)
	t.Cleanup(follower.Close)

	cfg := testConfig(t, []string{dead.URL, follower.URL, leader.URL})
	cfg.ReadFrom = ReadLeader
	cfg.WriteRatio = 1
	cfg.FollowLeader = true
	cfg.MaxInFlight = 1 // one request at a time: the sequence is exact
	cfg.QPS = 50
	var t0 time.Time
	cfg.OnStart = func(t time.Time) { t0 = t }
	sum := mustRun(t, context.Background(), cfg)
	if t0.IsZero() || !sum.Started.Equal(t0) {
		t.Errorf("OnStart saw t0 %v, the summary %v", t0, sum.Started)
	}
	ops := readHistory(t, cfg.OutDir)
	var sent []string
	for _, op := range ops {
		if !op.Dropped {
			sent = append(sent, op.Node)
		}
	}
	if len(sent) < 10 || sent[0] != dead.URL || ops[0].OK() {
		t.Fatalf("first write %+v: want it sent to the dead node and failed", ops[0])
	}
	if sent[1] != follower.URL || !ops[1].OK() || ops[1].ServedBy != "fake" {
		t.Fatalf("second write %+v: want it sent to the next node and acknowledged through its redirect", ops[1])
	}
	for _, op := range ops[2:] {
		if !op.Dropped && (op.Node != leader.URL || !op.OK()) {
			t.Fatalf("write %+v: want it sent to the leader and acknowledged", op)
		}
	}
	if redirected.Load() != 1 || sum.Write.Errors != 1 {
		t.Errorf("%d redirects, %d errors: want 1 and 1", redirected.Load(), sum.Write.Errors)
	}
}
