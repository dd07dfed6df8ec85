// Package replication holds kvdb's two replication architectures behind one
// interface, Replicator:
//
//   - leader-follower: one leader coordinates every write and assigns its
//     version; followers redirect writes to it. W and R are tunable.
//   - leaderless: every node coordinates reads and writes; versions come from
//     a Lamport clock with the node index as tie-break.
//
// Both share one coordinator core: the same quorum fan-out for writes (write
// locally, replicate, acknowledge after W copies, finish the rest in the
// background), the same parallel read of R replicas, the same delay profiles.
// They differ only in who may coordinate a write and how versions are made.
package replication
