package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	kvclient "github.com/kvdb/kvdb/client"
	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
)

// deletePresets are the configs deletes are tested in: both architectures,
// quorum and non-quorum reads.
var deletePresets = []string{"w5r1", "w3r3", "w1r5", "leaderless", "leaderless-w3r3"}

// Over real HTTP, in every config: a delete through any node (a follower
// redirects it to the leader) makes every replica answer 404, a node that
// missed it (isolated) catches up and answers 404, a node restarted empty
// copies the tombstone, and a later set works everywhere.
func TestDeleteEverywhere(t *testing.T) {
	for _, preset := range deletePresets {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			net := newNetwork(t)
			c := start(t, cluster.Config{Preset: preset, N: 5, Network: net, Node: node.Config{Replication: replication.Config{PeerTimeout: 300 * time.Millisecond}}})
			kv := followingClient(t)
			urls, names := c.URLs(), ids(c)
			ctx := context.Background()
			if _, err := kv.Set(ctx, "k", "v1", kvclient.At(urls[1])); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the set everywhere", func() bool { return localsAre(ctx, kv, urls, "k", "v1") })
			// The last node misses the delete (its quorum does not need it
			// in any preset with W<5; with W=5 the delete waits for it and
			// fails, so it is isolated only when the delete can succeed).
			away := len(urls) - 1
			w := c.Nodes()[0].Info().W
			if w < 5 {
				net.Isolate(names[away])
			}
			res, err := kv.Delete(ctx, "k", kvclient.At(urls[2]))
			if err != nil || res.Version == 0 {
				t.Fatalf("delete: %+v, %v", res, err)
			}
			for i, u := range urls[:away] {
				if _, err := kv.Get(ctx, "k", kvclient.At(u), kvclient.WithR(1)); w == 5 && !errors.Is(err, kvclient.ErrNotFound) {
					t.Fatalf("node %d after a W=5 delete: %v", i+1, err)
				}
			}
			net.Heal()
			waitFor(t, 15*time.Second, "every replica to answer 404", func() bool { return localsAre(ctx, kv, urls, "k", "") })
			// A node restarted empty copies the tombstone (not the value).
			if err := c.Stop(1); err != nil {
				t.Fatal(err)
			}
			if err := c.Restart(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitReady(ctx, 15*time.Second); err != nil {
				t.Fatal(err)
			}
			if _, err := kv.LocalRead(ctx, "k", kvclient.At(urls[1])); !errors.Is(err, kvclient.ErrNotFound) {
				t.Fatalf("restarted node reads the deleted key: %v", err)
			}
			if _, err := kv.Set(ctx, "k", "v2", kvclient.At(urls[3])); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the later set everywhere", func() bool { return localsAre(ctx, kv, urls, "k", "v2") })
		})
	}
}

// A delete racing a set of the same key: whichever got the higher version
// wins on every replica, and the reads agree.
func TestDeleteRacesSet(t *testing.T) {
	for _, preset := range []string{"w3r3", "leaderless-w3r3", "leaderless"} {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			c := start(t, cluster.Config{Preset: preset, N: 5, Network: newNetwork(t)})
			kv := followingClient(t)
			urls := c.URLs()
			ctx := context.Background()
			for round := range 20 {
				key := fmt.Sprint("race", round)
				var wg sync.WaitGroup
				var set kvclient.SetResult
				var del kvclient.DeleteResult
				var setErr, delErr error
				wg.Go(func() { set, setErr = kv.Set(ctx, key, "v", kvclient.At(urls[round%5])) })
				wg.Go(func() { del, delErr = kv.Delete(ctx, key, kvclient.At(urls[(round+2)%5])) })
				wg.Wait()
				if setErr != nil || delErr != nil {
					t.Fatalf("round %d: set %v, delete %v", round, setErr, delErr)
				}
				want := ""
				if set.Version > del.Version {
					want = "v"
				}
				waitFor(t, 10*time.Second, fmt.Sprintf("round %d converged on %q", round, want), func() bool {
					return localsAre(ctx, kv, urls, key, want)
				})
				for _, u := range urls {
					got, err := kv.Get(ctx, key, kvclient.At(u), kvclient.WithR(5))
					if (want == "" && !errors.Is(err, kvclient.ErrNotFound)) || (want != "" && (err != nil || got.Value != want)) {
						t.Fatalf("round %d: R=5 read at %s = %+v, %v; want %q (set v%d, delete v%d)", round, u, got, err, want, set.Version, del.Version)
					}
				}
			}
		})
	}
}

// localsAre reports whether every node's own copy of key is want ("": absent).
func localsAre(ctx context.Context, kv *kvclient.Client, urls []string, key, want string) bool {
	for _, u := range urls {
		got, err := kv.LocalRead(ctx, key, kvclient.At(u))
		switch {
		case want == "" && errors.Is(err, kvclient.ErrNotFound):
		case want != "" && err == nil && got.Value == want:
		default:
			return false
		}
	}
	return true
}

// followingClient follows a follower's 307 to the leader and retries what
// the client retries by default, as users' clients do.
func followingClient(t *testing.T) *kvclient.Client {
	t.Helper()
	kv, err := kvclient.New(kvclient.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kv.Close)
	return kv
}
