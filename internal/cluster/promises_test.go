package cluster_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
)

// The reproduction: under the paper profile (scaled)
// node5 writes "first" and is acknowledged; node4, which the sequential
// replication reaches last, then writes "second". The later write must win
// on every node, in every config (leader-follower writes both go to the
// leader). Before the leaderless version query, node4 issued version 1027
// below "first"'s 1028 and every node ended with "first".
func TestLaterAcknowledgedWriteWinsEverywhere(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	for _, preset := range cluster.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			c := start(t, cluster.Config{Network: newNetwork(t), Preset: preset, Node: node.Config{Replication: replication.Config{Delays: scaled(0.1)}}})
			cl := newClient(t)
			urls := c.URLs()
			firstAt, laterAt := urls[4], urls[3]
			if c.Preset().Mode != "leaderless" {
				firstAt, laterAt = urls[0], urls[0]
			}
			first := cl.set(firstAt, "K", "first")
			mustStatus(t, "first write", first, http.StatusCreated)
			later := cl.set(laterAt, "K", "second")
			mustStatus(t, "later write", later, http.StatusCreated)
			if later.Version <= first.Version {
				t.Fatalf("the later write got version %d, not above the acknowledged %d", later.Version, first.Version)
			}
			waitFor(t, 10*time.Second, "every node to hold the later write", func() bool {
				return converged(cl, urls, "K", later.Version)
			})
			for _, u := range urls {
				if r := cl.localRead(u, "K"); r.Value != "second" {
					t.Fatalf("%s holds %q", u, r.Value)
				}
			}
		})
	}
}

// A quorum read that returns a write still in flight makes it durable at a
// write quorum first, so a later quorum read through any node cannot miss
// it. Under the paper profile (scaled) node1 coordinates a W=3 write that
// reaches node2 first; messages to node1 and node2 are slowed, so node3's
// quorum reads hear from node4 and node5 first. Once node2 holds the write,
// an R=3 read through node2 returns it (its own copy is the newest); an R=3
// read through node3 right after must return it too. Before the write-back,
// node3 answered the older value: an inversion.
func TestQuorumReadsNeverGoBack(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	for _, preset := range []string{"w3r3", "leaderless-w3r3"} {
		t.Run(preset, func(t *testing.T) {
			faults := newNetwork(t)
			c := start(t, cluster.Config{Preset: preset, Network: faults, Node: node.Config{Replication: replication.Config{Delays: scaled(0.5)}}})
			cl := newClient(t)
			urls, names := c.URLs(), ids(c)
			first := cl.set(urls[0], "k", "old")
			mustStatus(t, "old write", first, http.StatusCreated)
			waitFor(t, 10*time.Second, "the old write everywhere", func() bool { return converged(cl, urls, "k", first.Version) })
			faults.Delay(names[0], 100*time.Millisecond)
			faults.Delay(names[1], 100*time.Millisecond)
			done := make(chan reply, 1)
			go func() { done <- cl.set(urls[0], "k", "new") }()
			waitFor(t, 10*time.Second, "node2 to hold the new write", func() bool { return cl.localRead(urls[1], "k").Value == "new" })
			if r := cl.get(urls[1], "k"); r.Value != "new" {
				t.Fatalf("R=3 read through node2 returned %q (%s), want its own newer copy", r.Value, r.Error)
			}
			if r := cl.get(urls[2], "k"); r.Value != "new" {
				t.Fatalf("R=3 read through node3 returned %q (%s) after a read through node2 returned \"new\"", r.Value, r.Error)
			}
			mustStatus(t, "new write", <-done, http.StatusCreated)
		})
	}
}
