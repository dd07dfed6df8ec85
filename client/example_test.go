package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/kvdb/kvdb/client"
	"github.com/kvdb/kvdb/internal/cluster"
)

// Example runs against a five-node leader-follower cluster in this
// process (W=5, R=1; node1 leads).
func Example() {
	ctx := context.Background()
	kv, err := cluster.Start(ctx, cluster.Config{Preset: "w5r1", N: 5})
	if err != nil {
		log.Fatal(err)
	}
	defer kv.Close(ctx)
	urls := kv.URLs()

	// The first endpoint is a follower: it answers the write with 307 to
	// the leader, and the client sends the write there.
	c, err := client.New(client.Config{Endpoints: []string{urls[2], urls[0]}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	set, err := c.Set(ctx, "greeting", "hello")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("set: coordinated by %s, %d of %d copies, leader answered: %v\n",
		set.Node, set.Acks, set.W, set.Endpoint == urls[0])

	// W=5: every replica has it, so any node's own copy shows it.
	got, err := c.LocalRead(ctx, "greeting", client.At(urls[4]))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("local_read on %s: %q, same version: %v\n", got.Node, got.Value, got.Version == set.Version)

	// Errors carry the server's code; match them with errors.Is.
	_, err = c.Get(ctx, "missing")
	var e *client.Error
	fmt.Println("missing:", errors.Is(err, client.ErrNotFound), errors.As(err, &e) && e.Status == 404)

	// A per-call override: ?w=6 is more than N.
	_, err = c.Set(ctx, "greeting", "hi", client.WithW(6), client.At(urls[0]))
	if errors.As(err, &e) {
		fmt.Println("w=6:", e.Status, e.Code, errors.Is(err, client.ErrBadRequest))
	}

	// W and R, changed on every node: the follower redirects the change to
	// the leader, which commits it to the election's log (loopback callers
	// need no token when the nodes have none).
	cfg, err := c.SetConfig(ctx, 3, 3)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("config: w=%d r=%d n=%d committed: %v\n", cfg.W, cfg.R, cfg.N, cfg.LogIndex > 0)

	// Output:
	// set: coordinated by node1, 5 of 5 copies, leader answered: true
	// local_read on node5: "hello", same version: true
	// missing: true true
	// w=6: 400 invalid_argument true
	// config: w=3 r=3 n=5 committed: true
}
