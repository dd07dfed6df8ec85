package server

import (
	"context"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/store"
)

// The HTTP layer declares what it needs from the replication engine as
// small interfaces, one per API it serves (the consumer owns them, as
// rqlite's HTTP service declares its Store). *replication.Engine
// implements all of them; tests use fakes. Lifecycle (Start, CatchUp,
// Close) is not here: the node that owns the engine calls it.

// Coordinator serves the client API: it coordinates reads and writes
// across the cluster and changes W and R cluster-wide.
type Coordinator interface {
	// Write coordinates a client write (a follower answers
	// *replication.NotLeaderError).
	Write(ctx context.Context, key, value string, o replication.Options) (replication.WriteResult, error)
	// Delete coordinates a client delete: a tombstone replicated like a
	// write, with Write's errors.
	Delete(ctx context.Context, key string, o replication.Options) (replication.WriteResult, error)
	// Read coordinates a client read of R copies.
	Read(ctx context.Context, key string, o replication.Options) (replication.ReadResult, error)
	// LocalRead returns this node's copy, with no coordination or delay
	// (a deleted key is absent).
	LocalRead(key string) (store.Entry, bool)
	// SetClusterQuorum changes W and R on every node.
	SetClusterQuorum(ctx context.Context, w, r int) (replication.ClusterQuorum, error)
	// Info describes the node's replication settings and role.
	Info() replication.Info
	// Quorums returns the node's W and R: a cheap read for every request
	// (Info also asks the election for the role).
	Quorums() (w, r int)
	// Ready reports whether the node serves clients (it has caught up).
	Ready() bool
}

// Replica serves the node-to-node /internal/ API: a coordinator's
// updates, reads and W/R change, and the snapshot a starting peer copies.
type Replica interface {
	// ApplyReplica applies an update sent by a coordinator.
	ApplyReplica(ctx context.Context, u replication.Update) error
	// ApplyReplicas applies a batch of updates after one apply delay.
	ApplyReplicas(ctx context.Context, us []replication.Update) error
	// ReadReplica answers a coordinator's read (after the read delay).
	ReadReplica(ctx context.Context, key string) (store.Entry, bool, error)
	// SetQuorum changes W and R on this node only.
	SetQuorum(w, r int) error
	// Snapshot calls fn for every entry held (ErrNotReady while catching
	// up), after fencing this node at term if it is non-zero.
	Snapshot(term uint64, fn func(replication.Update) error) error
	// Info describes the node's replication settings and role.
	Info() replication.Info
	// Ready reports whether the node has caught up.
	Ready() bool
}

// Stats are the counters /health reports.
type Stats interface {
	// Keys is the number of keys this node holds (tombstones not
	// included).
	Keys() int
	// Tombstones is the number of deleted keys not yet collected.
	Tombstones() int
	// Pending is the number of background replication tasks in flight.
	Pending() int
	// Hints is the number of updates held for unreachable peers.
	Hints() int
}

// Backend is everything the server uses, as New takes it: one value
// (normally a *replication.Engine) that is Coordinator, Replica and Stats.
type Backend interface {
	Coordinator
	Replica
	Stats
}

var _ Backend = (*replication.Engine)(nil)
