// Package replication holds kvdb's two replication architectures in one
// engine, Engine, that differ only behind a small internal seam
// (architecture):
//
//   - leader-follower: one leader coordinates every write and assigns its
//     version; followers redirect writes to it. W and R are tunable.
//   - leaderless: every node coordinates reads and writes; versions come from
//     a Lamport clock with the node index as tie-break.
//
// Both share one coordinator core: the same quorum fan-out for writes (write
// locally, replicate, acknowledge after W copies, finish the rest in the
// background), the same parallel read of R replicas, the same delay profiles.
// They differ only in who may coordinate a write, how versions are made,
// how a node describes its role and whom it catches up from.
//
// The engine exports no fat interface: each consumer declares the few
// methods it uses (package server's Coordinator and Replica), and the
// lifecycle (Start, CatchUp, Close) is called by the node that owns it.
package replication
