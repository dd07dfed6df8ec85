package load

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
)

// These tests run the load tester against in-process clusters with the
// paper's delays scaled down 10x (a W=5 write takes ~120 ms), for about
// two or three seconds each.

func startCluster(t *testing.T, preset string) *cluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test")
	}
	delays, err := replication.ParseDelays("paper*0.1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Start(context.Background(), cluster.Config{Preset: preset, Node: node.Config{Replication: replication.Config{Delays: delays}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("closing cluster: %v", err)
		}
	})
	return c
}

// clusterConfig is a short, dense, local-in-time run against c.
func clusterConfig(t *testing.T, c *cluster.Cluster, mode string) Config {
	cfg := testConfig(t, c.URLs())
	cfg.Mode = mode
	cfg.QPS = 200
	cfg.Duration = 2 * time.Second
	cfg.Keys.Keys = 10_000
	return cfg
}

func requireNoErrors(t *testing.T, s *Summary) {
	t.Helper()
	if s.Read.Errors+s.Write.Errors+s.Dropped != 0 {
		t.Fatalf("errors: read %v write %v dropped %d", s.Read.ErrorsByStatus, s.Write.ErrorsByStatus, s.Dropped)
	}
}

// Leader-follower W=5 R=1, reads from the leader: every read sees the
// latest acknowledged write.
func TestIntegrationLeaderW5R1ReadsFromLeader(t *testing.T) {
	c := startCluster(t, "w5r1")
	cfg := clusterConfig(t, c, ModeLeader)
	cfg.ReadFrom = ReadLeader
	s := mustRun(t, context.Background(), cfg)
	requireNoErrors(t, s)
	if s.StaleReads != 0 || s.Inversions != 0 || s.Linearizable == nil || !*s.Linearizable {
		t.Fatalf("stale %d inversions %d linearizable: %s", s.StaleReads, s.Inversions, s.Linearizability)
	}
	if s.Write.P50Ms < 100 {
		t.Errorf("W=5 write p50 %.1f ms; want at least the scaled paper floor (~120 ms)", s.Write.P50Ms)
	}
	if s.WriteRead.ReadsDuringWrite == 0 {
		t.Errorf("no read fell inside a write window; the workload is not local in time: %+v", s.WriteRead)
	}
	t.Logf("w5r1 leader reads: %d reads %d writes, write p50 %.1f ms, %d reads during a write", s.Read.Count, s.Write.Count, s.Write.P50Ms, s.WriteRead.ReadsDuringWrite)
}

// Leaderless W=N R=1 under a write-heavy local-in-time load: a read that
// reaches an updated replica and a later one that reaches a lagging
// replica inside one write's window are an inversion, and the checker
// finds the history not linearizable.
func TestIntegrationLeaderlessInversions(t *testing.T) {
	c := startCluster(t, "leaderless")
	cfg := clusterConfig(t, c, ModeLeaderless)
	cfg.WriteRatio = 0.6
	s := mustRun(t, context.Background(), cfg)
	requireNoErrors(t, s)
	if s.Inversions == 0 || s.Linearizable == nil || *s.Linearizable {
		t.Fatalf("inversions %d linearizable: %s; want inversions and a violation", s.Inversions, s.Linearizability)
	}
	if s.StaleReads != 0 {
		t.Errorf("W=N acknowledges only once every replica has the write, yet %d stale reads", s.StaleReads)
	}
	t.Logf("leaderless: %d inversions in %d reads, %d of %d keys not linearizable", s.Inversions, s.Reads, s.Linearizability.IllegalKeyCount, s.Linearizability.Keys)
}

// W=1 R=1 with reads from followers: a follower answers from its own copy
// before replication reaches it, after the write was acknowledged.
func TestIntegrationWeakConfigStaleReads(t *testing.T) {
	c := startCluster(t, "w1r5")
	setQuorum(t, c.URLs()[0], 1, 1)
	cfg := clusterConfig(t, c, ModeLeader)
	cfg.ReadFrom = ReadFollowers
	s := mustRun(t, context.Background(), cfg)
	requireNoErrors(t, s)
	if s.StaleReads == 0 || s.Linearizable == nil || *s.Linearizable {
		t.Fatalf("stale %d linearizable: %s; want stale reads", s.StaleReads, s.Linearizability)
	}
	var health struct{ W, R int }
	if err := json.Unmarshal(s.Cluster, &health); err != nil || health.W != 1 || health.R != 1 {
		t.Errorf("summary's cluster info %s; want w=1 r=1", s.Cluster)
	}
	t.Logf("w1r1 follower reads: %d stale of %d reads", s.StaleReads, s.Reads)
}

// setQuorum changes W and R cluster-wide through PUT /config.
func setQuorum(t *testing.T, node string, w, r int) {
	t.Helper()
	body, _ := json.Marshal(map[string]int{"w": w, "r": r})
	req, err := http.NewRequest(http.MethodPut, node+"/config", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Close = true // leave no idle connection behind
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		W, R   int
		Failed map[string]string
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK || got.W != w || got.R != r || len(got.Failed) > 0 {
		t.Fatalf("PUT /config: status %d, %+v, %v", resp.StatusCode, got, err)
	}
}
