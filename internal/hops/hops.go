// Package hops records the one-way times of node-to-node messages, as a
// coordinator sees them: how long a replication message takes until the
// replica has applied it (write), how long its acknowledgement takes back
// (ack), how long a read request takes until the replica has read its copy
// (read), and how long the answer takes back (response). They are the W, A,
// R and S of the WARS model that predicts staleness (package pbs).
//
// The replica stamps its answer with the moment it applied or read
// (transport.HeaderStamp, Unix nanoseconds); the coordinator splits the
// round trip at that stamp. That needs the two clocks to agree, which holds
// for the nodes of one process (the embedded clusters of kvdb experiment)
// and, to within clock sync, on one machine. Across machines with clocks
// that disagree by more than the hops themselves, use the round trip
// instead: half of it each way, or the replica's own processing time
// subtracted (what Bailis et al. did with Cassandra).
package hops

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kind names a hop.
type Kind string

// The four hops of a write and a read.
const (
	Write    Kind = "write"    // coordinator send → applied on the replica (its apply delay included)
	Ack      Kind = "ack"      // applied on the replica → acknowledgement at the coordinator
	Read     Kind = "read"     // coordinator send → copy read on the replica (its read delay included)
	Response Kind = "response" // copy read on the replica → answer at the coordinator
)

// Kinds lists the hops in WARS order.
var Kinds = []Kind{Write, Ack, Read, Response}

// DefaultCapacity is the samples kept per hop.
const DefaultCapacity = 50_000

// Recorder keeps a uniform sample of each hop's times (reservoir sampling:
// the first Capacity samples, then each later one replaces a random kept
// one with the right probability), and feeds a Prometheus histogram. It is
// safe for concurrent use; a nil *Recorder records nothing.
type Recorder struct {
	mu   sync.Mutex
	cap  int
	rng  *rand.Rand
	kept map[Kind][]time.Duration
	seen map[Kind]int64
	hist *prometheus.HistogramVec
}

// New returns a recorder keeping up to capacity samples per hop (default
// DefaultCapacity when capacity <= 0). reg, if not nil, gets the histogram
// kvdb_hop_seconds{hop}.
func New(capacity int, reg prometheus.Registerer) *Recorder {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	r := &Recorder{
		cap:  capacity,
		rng:  rand.New(rand.NewPCG(1, 2)),
		kept: map[Kind][]time.Duration{},
		seen: map[Kind]int64{},
		hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvdb_hop_seconds",
			Help:    "One-way times of node-to-node messages seen by this node as coordinator: write (send to applied), ack (applied to acknowledged), read (send to read), response (read to answered).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}, []string{"hop"}),
	}
	if reg != nil {
		reg.MustRegister(r.hist)
	}
	return r
}

// Observe records one hop time; negative times (clocks that disagree) are
// recorded as zero.
func (r *Recorder) Observe(k Kind, d time.Duration) {
	if r == nil {
		return
	}
	d = max(d, 0)
	r.hist.WithLabelValues(string(k)).Observe(d.Seconds())
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[k]++
	if s := r.kept[k]; len(s) < r.cap {
		r.kept[k] = append(s, d)
		return
	}
	if i := r.rng.Int64N(r.seen[k]); i < int64(r.cap) {
		r.kept[k][i] = d
	}
}

// Split records a round trip that began at sent, was stamped by the
// replica at stamp and ended at done as its two hops out and back.
func (r *Recorder) Split(out, back Kind, sent, stamp, done time.Time) {
	if r == nil {
		return
	}
	r.Observe(out, stamp.Sub(sent))
	r.Observe(back, done.Sub(stamp))
}

// Samples returns a copy of the samples kept for k.
func (r *Recorder) Samples(k Kind) []time.Duration {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.kept[k]...)
}

// Count is the number of times observed for k (kept or not).
func (r *Recorder) Count(k Kind) int64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[k]
}
