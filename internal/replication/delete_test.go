package replication

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kvdb/kvdb/internal/store"
)

// A delete is a tombstone replicated like a write, in both architectures:
// every replica holds it, reads answer ErrNotFound, deleting a missing key
// succeeds, and a later set brings the key back everywhere.
func TestDeleteReplicates(t *testing.T) {
	for _, mode := range []Mode{LeaderFollower, Leaderless} {
		t.Run(string(mode), func(t *testing.T) {
			nodes := newLinkedCluster(t, 3, func(c *Config) { c.Mode = mode })
			coord := nodes[0]
			set, err := coord.Write(bg(), "k", "v1", Options{})
			if err != nil {
				t.Fatal(err)
			}
			del, err := coord.Delete(bg(), "k", Options{})
			if err != nil || del.Version <= set.Version || del.Acks != 3 || del.Key != "k" {
				t.Fatalf("delete = %+v, %v (set was version %d)", del, err, set.Version)
			}
			for i, n := range nodes {
				if e, ok := n.LocalRead("k"); ok {
					t.Fatalf("node %d local read after delete = %+v", i, e)
				}
				if _, err := n.Read(bg(), "k", Options{R: 3}); !errors.Is(err, ErrNotFound) {
					t.Fatalf("node %d R=3 read after delete: %v", i, err)
				}
				if n.Tombstones() != 1 || n.Keys() != 0 {
					t.Fatalf("node %d holds %d keys and %d tombstones, want 0 and 1", i, n.Keys(), n.Tombstones())
				}
			}
			if res, err := coord.Delete(bg(), "never-written", Options{}); err != nil || res.Version == 0 {
				t.Fatalf("delete of a missing key = %+v, %v", res, err)
			}
			again, err := coord.Write(bg(), "k", "v2", Options{})
			if err != nil || again.Version <= del.Version {
				t.Fatalf("set after delete = %+v, %v", again, err)
			}
			for i, n := range nodes {
				if r, err := n.Read(bg(), "k", Options{R: 3}); err != nil || r.Value != "v2" {
					t.Fatalf("node %d read after the later set = %+v, %v", i, r, err)
				}
				if n.Tombstones() != 1 || n.Keys() != 1 { // never-written's tombstone remains
					t.Fatalf("node %d holds %d keys and %d tombstones, want 1 and 1", i, n.Keys(), n.Tombstones())
				}
			}
		})
	}
}

// Replicas order tombstones and values by version alone, whatever order
// they arrive in.
func TestTombstoneOrdering(t *testing.T) {
	tests := []struct {
		name    string
		updates []Update
		want    store.Entry
	}{
		{"newer tombstone beats a value", []Update{{Key: "k", Value: "a", Version: 1}, {Key: "k", Version: 2, Deleted: true}}, store.Entry{Version: 2, Deleted: true}},
		{"older value after a tombstone is stale", []Update{{Key: "k", Version: 2, Deleted: true}, {Key: "k", Value: "a", Version: 1}}, store.Entry{Version: 2, Deleted: true}},
		{"newer set beats a tombstone", []Update{{Key: "k", Version: 2, Deleted: true}, {Key: "k", Value: "b", Version: 3}}, store.Entry{Value: "b", Version: 3}},
		{"older tombstone after a set is stale", []Update{{Key: "k", Value: "b", Version: 3}, {Key: "k", Version: 2, Deleted: true}}, store.Entry{Value: "b", Version: 3}},
		{"purge drops the tombstone", []Update{{Key: "k", Version: 2, Deleted: true}, {Key: "k", Version: 2, Deleted: true, Purge: true}}, store.Entry{}},
		{"purge drops an older value", []Update{{Key: "k", Value: "a", Version: 1}, {Key: "k", Version: 2, Deleted: true, Purge: true}}, store.Entry{}},
		{"purge keeps a newer set", []Update{{Key: "k", Value: "b", Version: 3}, {Key: "k", Version: 2, Deleted: true, Purge: true}}, store.Entry{Value: "b", Version: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCluster(t, 3, nil)
			for _, u := range tt.updates {
				if err := tc.rep.ApplyReplica(bg(), u); err != nil {
					t.Fatal(err)
				}
			}
			got, _ := tc.st.Get("k")
			if got != tt.want {
				t.Fatalf("holds %+v, want %+v", got, tt.want)
			}
			// The ledger forgets a tombstone a set replaced at its next
			// sweep, so it may hold more than the store, never fewer.
			if tc.st.Tombstones() > tc.rep.tombs.len() {
				t.Fatalf("store holds %d tombstones, the ledger %d", tc.st.Tombstones(), tc.rep.tombs.len())
			}
		})
	}
}

// gcConfig makes tombstones collectable within a test: a short hint window
// and peer timeout, and the shortest TTL they allow.
func gcConfig(c *Config) {
	c.RetryFor, c.PeerTimeout = 40*time.Millisecond, 40*time.Millisecond
	c.TombstoneTTL = c.RetryFor + tombstoneMessageSlack*c.PeerTimeout
}

// Tombstones are collected once every replica holds them and the TTL has
// passed: every node's store is empty again (memory returns), and nothing
// deleted comes back.
func TestTombstonesCollected(t *testing.T) {
	for _, mode := range []Mode{LeaderFollower, Leaderless} {
		t.Run(string(mode), func(t *testing.T) {
			nodes := newLinkedCluster(t, 3, func(c *Config) { c.Mode = mode; gcConfig(c) })
			for i := range 30 {
				k := fmt.Sprint("k", i)
				if _, err := nodes[0].Write(bg(), k, "v", Options{}); err != nil {
					t.Fatal(err)
				}
				if _, err := nodes[0].Delete(bg(), k, Options{}); err != nil {
					t.Fatal(err)
				}
			}
			for i, n := range nodes {
				if n.Tombstones() != 30 {
					t.Fatalf("node %d holds %d tombstones before collection", i, n.Tombstones())
				}
			}
			waitFor(t, "every tombstone collected", func() bool {
				for _, n := range nodes {
					if n.Tombstones() != 0 || n.Keys() != 0 || n.tombs.len() != 0 {
						return false
					}
				}
				return true
			})
			for i, n := range nodes {
				if _, err := n.Read(bg(), "k7", Options{R: 3}); !errors.Is(err, ErrNotFound) {
					t.Fatalf("node %d reads a collected key: %v", i, err)
				}
			}
			if _, err := nodes[0].Write(bg(), "k7", "again", Options{}); err != nil {
				t.Fatal(err)
			}
			if r, err := nodes[2].Read(bg(), "k7", Options{R: 3}); err != nil || r.Value != "again" {
				t.Fatalf("set after collection: %+v, %v", r, err)
			}
		})
	}
}

// A replica that missed a delete, and is away longer than the TTL, still
// holds the old value: the collector keeps the tombstone while it does not
// answer (nothing is collected that could let the old value back), and once
// it answers it gets the tombstone, then the purge. The deleted value is
// never read again.
func TestTombstoneKeptWhileAReplicaIsAway(t *testing.T) {
	nodes, links := newLinkedClusterLinks(t, 3, func(c *Config) { c.Mode = Leaderless; c.W = 2; gcConfig(c) })
	away := nodes[2]
	cut := func(m peerMode) {
		for _, l := range links {
			if l.target == away {
				l.setMode(m)
			}
		}
	}
	// A key whose collector is not the node away.
	key := ""
	for i := 0; key == ""; i++ {
		if k := fmt.Sprint("k", i); collector(k, 3) != 2 {
			key = k
		}
	}
	if _, err := nodes[0].Write(bg(), key, "old", Options{W: 3}); err != nil {
		t.Fatal(err)
	}
	cut(peerFail)
	if _, err := nodes[0].Delete(bg(), key, Options{}); err != nil {
		t.Fatal(err)
	}
	coll := nodes[collector(key, 3)]
	unreachable := coll.met.tombstoneChecks.WithLabelValues("unreachable")
	waitFor(t, "the collector to find the replica away twice", func() bool { return testutil.ToFloat64(unreachable) >= 2 })
	if e, ok := away.LocalRead(key); !ok || e.Value != "old" {
		t.Fatalf("the replica away holds %+v, %v; want the old value", e, ok)
	}
	for i, n := range nodes[:2] {
		if n.Tombstones() != 1 {
			t.Fatalf("node %d dropped the tombstone while a replica still holds the old value", i)
		}
	}
	cut(peerOK)
	waitFor(t, "the tombstone everywhere, then collected", func() bool {
		for _, n := range nodes {
			if n.Tombstones() != 0 || n.Keys() != 0 {
				return false
			}
		}
		return true
	})
	for i, n := range nodes {
		if _, err := n.Read(bg(), key, Options{R: 3}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("node %d: the deleted value came back: %v", i, err)
		}
	}
}

func TestTombstoneTTLValidated(t *testing.T) {
	cfg := Config{Self: "n1", Members: members(3), RetryFor: time.Minute, PeerTimeout: time.Second, TombstoneTTL: time.Minute}
	cfg.SetDefaults()
	if err := cfg.Validate(); err == nil {
		t.Fatal("a TTL no longer than the hint window was accepted")
	}
	cfg.TombstoneTTL = 0
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil || cfg.TombstoneTTL != time.Minute+copyTimeout+4*time.Second {
		t.Fatalf("default TTL %v: %v", cfg.TombstoneTTL, err)
	}
}
