package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kvdb/kvdb/internal/check"
	"github.com/kvdb/kvdb/internal/ctxtime"
	"github.com/kvdb/kvdb/internal/history"
)

// Errors Run may wrap.
var (
	// ErrInvalidConfig wraps configuration errors (bad usage).
	ErrInvalidConfig = errors.New("invalid load configuration")
	// ErrUnreachable means no node answered /health.
	ErrUnreachable = errors.New("no node reachable")
)

// probeTimeout bounds one /health probe of one node; probeEvery spaces
// the probes while waiting for the nodes to be ready.
const (
	probeTimeout = 2 * time.Second
	probeEvery   = 50 * time.Millisecond
)

// Run runs one load test: it probes the nodes, schedules requests open
// loop for cfg.Duration (or until ctx is done), waits for those in flight,
// then writes the history, the consistency check, summary.json and the
// histograms into cfg.OutDir. An interrupted run still writes its partial
// results and returns them with Summary.Interrupted set.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	cfg.SetDefaults(time.Now())
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = NewHTTPClient(cfg.MaxInFlight)
	}
	client := NewClient(hc)
	defer client.CloseIdle()
	clusterInfo, err := preflight(ctx, client, &cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	hw, err := history.Create(filepath.Join(cfg.OutDir, HistoryFile))
	if err != nil {
		return nil, err
	}
	rec := &recorder{w: hw}
	t0 := time.Now()
	s := newScheduler(&cfg, client, rec, t0)
	if cfg.OnStart != nil {
		cfg.OnStart(t0)
	}
	stopProgress := startProgress(&cfg, s, t0)
	completed, window := s.run(ctx)
	stopProgress()
	if err := hw.Close(); err != nil {
		return nil, err
	}
	ops := rec.snapshot()
	res, checkErr := check.Run(ctx, ops, cfg.Check)
	sum := Summarize(ops, res, RunInfo{Config: &cfg, Started: t0, Window: window, Interrupted: !completed, Cluster: clusterInfo})
	if err := sum.WriteFiles(cfg.OutDir); err != nil {
		return sum, err
	}
	return sum, checkErr
}

// health is the part of a node's /health document the preflight reads.
type health struct {
	Mode string `json:"mode"`
	Role string `json:"role"`
}

// probe is one node's /health answer.
type probe struct {
	doc   json.RawMessage
	ready bool
	err   error
}

// preflight probes every node's /health until all are ready or
// cfg.ReadyWait passes. It fails when no node answers at all; otherwise it
// warns about each node that is unreachable or not ready, and when the
// cluster's mode or leader disagrees with cfg. It returns the first
// answering node's document.
func preflight(ctx context.Context, client *Client, cfg *Config) (json.RawMessage, error) {
	deadline := time.Now().Add(cfg.ReadyWait)
	probes := probeAll(ctx, client, cfg.Nodes)
	for !allReady(probes) && time.Now().Before(deadline) && ctxtime.Sleep(ctx, probeEvery) {
		probes = probeAll(ctx, client, cfg.Nodes)
	}
	first := slices.IndexFunc(probes, func(p probe) bool { return p.err == nil })
	if first < 0 {
		return nil, fmt.Errorf("%w: none of the %d nodes answered /health within %v (first error: %w); is the cluster running? (kvdb cluster --config w5r1)",
			ErrUnreachable, len(cfg.Nodes), cfg.ReadyWait, probes[0].err)
	}
	for i, p := range probes {
		switch {
		case p.err != nil:
			cfg.Logger.Warn("node did not answer /health", "node", cfg.Nodes[i], "err", p.err)
		case !p.ready:
			cfg.Logger.Warn("node is not ready; requests to it may fail", "node", cfg.Nodes[i], "health", string(p.doc))
		}
		if p.err == nil {
			checkHealth(cfg, i, p.doc)
		}
	}
	return probes[first].doc, nil
}

// probeAll fetches every node's /health in parallel.
func probeAll(ctx context.Context, client *Client, nodes []string) []probe {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	probes := make([]probe, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			p := &probes[i]
			p.doc, p.ready, p.err = client.Health(ctx, n)
		})
	}
	wg.Wait()
	return probes
}

func allReady(probes []probe) bool {
	return !slices.ContainsFunc(probes, func(p probe) bool { return !p.ready })
}

// checkHealth warns about a node whose mode or role contradicts cfg.
func checkHealth(cfg *Config, i int, doc json.RawMessage) {
	var h health
	if json.Unmarshal(doc, &h) != nil {
		return
	}
	node := cfg.Nodes[i]
	leaderless := strings.HasPrefix(h.Mode, ModeLeaderless)
	if h.Mode != "" && leaderless != (cfg.Mode == ModeLeaderless) {
		cfg.Logger.Warn("node runs a different replication mode", "node", node, "node_mode", h.Mode, "load_mode", cfg.Mode)
	}
	if cfg.Mode == ModeLeader && i == 0 && h.Role != "" && h.Role != "leader" {
		cfg.Logger.Warn("first node is not the leader; its writes will be answered 307", "node", node, "role", h.Role)
	}
}
