package experiment

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	kvclient "github.com/kvdb/kvdb/client"
	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/ctxtime"
	"github.com/kvdb/kvdb/internal/history"
)

// FinalFile holds every node's own copy of every key a run acknowledged a
// write of, read after the run, once the cluster had settled.
const FinalFile = "final.json"

// FinalCopies is final.json.
type FinalCopies struct {
	// Nodes are the node IDs, in the order of each key's copies.
	Nodes []string `json:"nodes"`
	// SettledMs is how long after the load ended the copies were read:
	// the wait for every node to be ready and idle, then until every node
	// held the same copy of every key or the settle bound passed.
	SettledMs float64 `json:"settled_ms"`
	// Converged reports whether every node held the same copy of every key.
	Converged bool `json:"converged"`
	// Copies maps each key to its copy on each node (Nodes' order).
	Copies map[string][]Copy `json:"copies"`
}

// Copy is one node's copy of a key (GET /local_read: no coordination).
type Copy struct {
	Found   bool   `json:"found,omitempty"`
	Value   string `json:"value,omitempty"`
	Version uint64 `json:"version,omitempty"`
	// Err is set when the node did not answer; its copy is then unknown.
	Err string `json:"err,omitempty"`
}

// ackedKeys lists the keys of ops' acknowledged writes.
func ackedKeys(ops []history.Op) []string {
	seen := map[string]bool{}
	var keys []string
	for _, op := range ops {
		if op.IsWrite() && op.Outcome() == history.WriteAcked && !seen[op.Key] {
			seen[op.Key] = true
			keys = append(keys, op.Key)
		}
	}
	return keys
}

// settleAndRead waits for the cluster to settle — every node ready (a
// restarted one caught up), no background replication in flight — and
// then reads every key from every node's own copy until all agree or
// bound passes (hinted handoff and a rejoining node's sync may still be
// moving), and returns the last copies read.
func settleAndRead(ctx context.Context, c *cluster.Cluster, keys []string, bound time.Duration) FinalCopies {
	start := time.Now()
	deadline := start.Add(bound)
	_ = c.WaitReady(ctx, bound)
	waitQuiet(ctx, c, time.Until(deadline))
	nodes := c.Nodes()
	fc := FinalCopies{Nodes: make([]string, len(nodes))}
	for i, n := range nodes {
		fc.Nodes[i] = n.ID()
	}
	cl, err := kvclient.New(kvclient.Config{Retry: kvclient.NoRetry(), Timeout: 2 * time.Second, MaxIdleConnsPerHost: 4})
	if err != nil {
		panic("experiment: a fixed client config is invalid: " + err.Error())
	}
	defer cl.Close()
	urls := c.URLs()
	var prev map[string][]Copy
	for {
		fc.Copies = readCopies(ctx, cl, urls, keys)
		fc.Converged = converged(fc.Copies)
		if fc.Converged || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		// Copies that disagree but stopped moving, with nothing left that
		// could move them (no replication in flight, no hint held, every
		// node ready), stay as they are: kvdb has no anti-entropy.
		if prev != nil && maps.EqualFunc(prev, fc.Copies, slices.Equal) && idle(c) {
			break
		}
		prev = fc.Copies
		ctxtime.Sleep(ctx, 200*time.Millisecond)
	}
	fc.SettledMs = float64(time.Since(start).Microseconds()) / 1000
	return fc
}

// idle reports whether every node is ready, has no background
// replication in flight and holds no hint for a peer (kvdb_hints).
func idle(c *cluster.Cluster) bool {
	for _, n := range c.Nodes() {
		if !n.Ready() || n.Pending() > 0 || hintsHeld(n.Handler()) != 0 {
			return false
		}
	}
	return true
}

// hintsHeld reads the kvdb_hints gauge from a node's /metrics, in process;
// -1 if it is not there.
func hintsHeld(h http.Handler) float64 {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if v, ok := strings.CutPrefix(line, "kvdb_hints "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// readCopies reads every key from every node (each node's keys in turn,
// the nodes in parallel).
func readCopies(ctx context.Context, cl *kvclient.Client, urls, keys []string) map[string][]Copy {
	out := make(map[string][]Copy, len(keys))
	for _, k := range keys {
		out[k] = make([]Copy, len(urls))
	}
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() {
			for _, k := range keys {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				got, err := cl.LocalRead(rctx, k, kvclient.At(u))
				cancel()
				var cp Copy
				switch {
				case errors.Is(err, kvclient.ErrNotFound):
				case err != nil:
					cp.Err = err.Error()
				default:
					cp = Copy{Found: true, Value: got.Value, Version: got.Version}
				}
				out[k][i] = cp // each goroutine writes its own index
			}
		})
	}
	wg.Wait()
	return out
}

// converged reports whether every node answered and all hold the same copy
// of every key.
func converged(copies map[string][]Copy) bool {
	for _, cs := range copies {
		for _, c := range cs {
			if c.Err != "" || c != cs[0] {
				return false
			}
		}
	}
	return true
}
