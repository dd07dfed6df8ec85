package cluster_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
)

// A replica cut off during a W=3 write is brought up to date by a later
// R=5 read that sees it behind (read repair), with hinted handoff off so
// that nothing else can heal it.
func TestReadRepairHealsDivergence(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	faults := newNetwork(t)
	c := start(t, cluster.Config{Preset: "leaderless", Network: faults, Node: node.Config{Replication: replication.Config{DisableHintedHandoff: true}}})
	cl := newClient(t)
	urls, names := c.URLs(), ids(c)
	faults.Isolate(names[4])
	w := cl.setQ(urls[0], "k", "v1", "w=3")
	mustStatus(t, "W=3 write with node5 cut off", w, http.StatusCreated)
	waitFor(t, 5*time.Second, "the other live replicas", func() bool { return converged(cl, urls[:4], "k", w.Version) })
	faults.Heal()
	if r := cl.localRead(urls[4], "k"); r.Status != http.StatusNotFound {
		t.Fatalf("node5 has the write before any repair: %d v%d", r.Status, r.Version)
	}
	g := cl.getQ(urls[1], "k", "r=5")
	if g.Status != http.StatusOK || g.Version != w.Version {
		t.Fatalf("R=5 read: %d v%d, want 200 v%d", g.Status, g.Version, w.Version)
	}
	waitFor(t, 5*time.Second, "read repair to reach node5", func() bool { return converged(cl, urls, "k", w.Version) })
}

// Hinted handoff: updates a node missed while cut off reach it once it is
// reachable again, without any read. With hinted handoff off, the same
// node stays behind on the key it missed (while later writes reach it).
func TestHintedHandoff(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	for _, handoff := range []bool{true, false} {
		t.Run(fmt.Sprintf("handoff=%t", handoff), func(t *testing.T) {
			faults := newNetwork(t)
			c := start(t, cluster.Config{Preset: "leaderless", Network: faults, Node: node.Config{Replication: replication.Config{DisableHintedHandoff: !handoff, DisableReadRepair: true}}})
			cl := newClient(t)
			urls, names := c.URLs(), ids(c)
			faults.Isolate(names[4])
			var missed []reply
			for i := range 20 {
				w := cl.setQ(urls[i%4], fmt.Sprintf("k%d", i), value(i), "w=4")
				mustStatus(t, "write while node5 is cut off", w, http.StatusCreated)
				missed = append(missed, w)
			}
			faults.Heal()
			// A W=5 write reaches node5 again once its peers stop treating
			// it as failed (at most a second after their last failure).
			waitFor(t, 5*time.Second, "a W=5 write after healing", func() bool {
				return cl.set(urls[0], "after", "x").Status == http.StatusCreated
			})
			if handoff {
				waitFor(t, 10*time.Second, "hints delivered to node5", func() bool {
					for i, w := range missed {
						if r := cl.localRead(urls[4], fmt.Sprintf("k%d", i)); r.Version != w.Version {
							return false
						}
					}
					return true
				})
				return
			}
			for i := range missed {
				if r := cl.localRead(urls[4], fmt.Sprintf("k%d", i)); r.Status != http.StatusNotFound {
					t.Fatalf("with hinted handoff off node5 got k%d anyway: %d", i, r.Status)
				}
			}
		})
	}
}

// A node that restarts empty catches up before it serves: meanwhile
// /health and client calls answer 503 "catching-up"; afterwards every
// acknowledged write is readable from it, local reads included.
func TestRestartedNodeCatchesUp(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	for _, preset := range []string{"w1r5", "leaderless"} {
		t.Run(preset, func(t *testing.T) {
			faults := newNetwork(t)
			c := start(t, cluster.Config{Preset: preset, Network: faults})
			cl := newClient(t)
			urls, names := c.URLs(), ids(c)
			acked := map[string]uint64{}
			write := func(i int) {
				key := fmt.Sprintf("k%d", i)
				w := cl.setQ(urls[0], key, value(i), "w=3")
				mustStatus(t, "write "+key, w, http.StatusCreated)
				acked[key] = w.Version
			}
			for i := range 30 {
				write(i)
			}
			if err := c.Stop(2); err != nil {
				t.Fatal(err)
			}
			for i := 30; i < 60; i++ {
				write(i)
			}
			for i := range 10 { // overwrite some keys while node3 is down
				write(i)
			}
			// Slow every peer down so the catch-up window is observable.
			for i, h := range names {
				if i != 2 {
					faults.Delay(h, 300*time.Millisecond)
				}
			}
			if err := c.Restart(context.Background(), 2); err != nil {
				t.Fatal(err)
			}
			h := cl.do(http.MethodGet, urls[2]+"/health", nil)
			if h.Status != http.StatusServiceUnavailable {
				t.Fatalf("/health right after restart: %d, want 503 catching-up", h.Status)
			}
			if r := cl.localRead(urls[2], "k1"); r.Status != http.StatusServiceUnavailable {
				t.Fatalf("local_read while catching up: %d, want 503", r.Status)
			}
			faults.Heal()
			if err := c.WaitReady(context.Background(), 10*time.Second); err != nil {
				t.Fatal(err)
			}
			for key, v := range acked {
				if r := cl.localRead(urls[2], key); r.Status != http.StatusOK || r.Version < v {
					t.Fatalf("after catch-up node3 has %s at %d v%d, acknowledged v%d", key, r.Status, r.Version, v)
				}
			}
			// The restarted node takes part again: a W=N write needs it (its
			// peers may skip it for up to a second after it last failed).
			waitFor(t, 5*time.Second, "a W=N write after the restart", func() bool {
				return cl.setQ(urls[0], "after-restart", "x", "w=5").Status == http.StatusCreated
			})
		})
	}
}

// With write-ahead logs, a crash of the whole cluster loses nothing that
// was acknowledged: every node is killed, restarted empty, replays its log
// and serves every acknowledged write.
func TestWholeClusterCrashWithWAL(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	for _, preset := range []string{"w5r1", "leaderless"} {
		t.Run(preset, func(t *testing.T) {
			c := start(t, cluster.Config{Network: newNetwork(t), Preset: preset, DataDir: t.TempDir()})
			cl := newClient(t)
			urls := c.URLs()
			acked := map[string]uint64{}
			for i := range 50 {
				key := fmt.Sprintf("k%d", i%40)
				w := cl.set(urls[0], key, value(i))
				mustStatus(t, "write", w, http.StatusCreated)
				acked[key] = w.Version
			}
			for i := range urls {
				if err := c.Stop(i); err != nil {
					t.Fatal(err)
				}
			}
			for i := range urls {
				if err := c.Restart(context.Background(), i); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.WaitReady(context.Background(), 10*time.Second); err != nil {
				t.Fatal(err)
			}
			for _, u := range urls {
				for key, v := range acked {
					if r := cl.localRead(u, key); r.Status != http.StatusOK || r.Version != v {
						t.Fatalf("%s after the crash: %s is %d v%d, acknowledged v%d", u, key, r.Status, r.Version, v)
					}
				}
			}
			// Versions continue past those replayed, whoever leads now (in
			// leader-follower mode the restarted nodes hold an election of
			// their own: with their raft state on disk, any may win it).
			at := urls[0]
			if li := c.Leader(); li >= 0 {
				at = urls[li]
			}
			w := cl.set(at, "k0", "after")
			mustStatus(t, "write after restart", w, http.StatusCreated)
			if w.Version <= acked["k0"] {
				t.Fatalf("new version %d not above replayed %d", w.Version, acked["k0"])
			}
		})
	}
}
