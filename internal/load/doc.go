// Package load is kvdb's load tester (`kvdb load`).
//
// It sends an open-loop mix of reads and writes to a cluster through the
// client API: request i is intended at t0 + i/QPS and is sent then on its
// own goroutine, whatever earlier requests are doing, so a slow server
// shows up as latency measured from the intended time rather than as a
// lower request rate (no coordinated omission). A cap on requests in
// flight drops (and counts) requests instead of delaying them.
//
// Keys come from a local-in-time generator (KeyConfig): reads and writes
// of one key cluster close together in time while the key space can be
// large. Every value written is unique (run id, client id and request
// sequence), so a read names the write it saw.
//
// Every operation goes to DIR/history.ndjson (package history); the run's
// figures are derived from it into DIR/summary.json (type Summary, read
// back with ReadSummary) with HDR histograms beside it, and package check
// adds stale reads, inversions and a porcupine linearizability verdict.
package load
