package replication

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvdb/kvdb/internal/store"
)

type metrics struct {
	messages          *prometheus.CounterVec
	replicaUpdates    *prometheus.CounterVec
	quorumFailures    *prometheus.CounterVec
	retries           prometheus.Counter
	dropped           prometheus.Counter
	refused           prometheus.Counter
	pending           prometheus.Gauge
	hints             prometheus.Gauge
	hintsDelivered    prometheus.Counter
	readRepairs       prometheus.Counter
	versionQueries    prometheus.Counter
	writeBacks        *prometheus.CounterVec
	invalid           prometheus.Counter
	batches           prometheus.Histogram
	staleTerm         prometheus.Counter
	catchUpIncomplete prometheus.Counter
	tombstonesPurged  prometheus.Counter
	tombstoneChecks   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvdb_replication_messages_total",
			Help: "Replication messages sent to peers, by result.",
		}, []string{"result"}),
		replicaUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvdb_replica_updates_total",
			Help: "Updates received from coordinators: applied, or stale (an equal or newer version was held).",
		}, []string{"result"}),
		quorumFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvdb_quorum_failures_total",
			Help: "Client requests that did not reach their quorum, by op.",
		}, []string{"op"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_replication_retries_total",
			Help: "Hinted-handoff delivery attempts.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_replication_dropped_total",
			Help: "Updates a peer missed that were dropped: hinted handoff off, hint limit reached, or past the retry window.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_replication_refused_total",
			Help: "Updates a peer refused permanently (a 4xx answer such as 400 or 413): dropped, not retried; read repair and catch-up remain.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvdb_replication_pending",
			Help: "Writes whose replication to all peers is still in progress.",
		}),
		hints: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvdb_hints",
			Help: "Updates held for peers that missed them (hinted handoff).",
		}),
		hintsDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_hints_delivered_total",
			Help: "Hinted updates delivered to a peer that came back.",
		}),
		readRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_read_repairs_total",
			Help: "Replicas brought up to date by a read that saw them behind.",
		}),
		versionQueries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_version_queries_total",
			Help: "Leaderless writes that first learned the key's version from N-W+1 replicas (ABD query phase).",
		}),
		writeBacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvdb_read_write_backs_total",
			Help: "Quorum reads (R+W>N) that wrote the newest version back to a write quorum before answering, by result.",
		}, []string{"result"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_replica_invalid_versions_total",
			Help: "Updates from peers refused because their version is out of range.",
		}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvdb_replication_batch_size",
			Help:    "Updates per replication message to a peer.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		staleTerm: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_replica_stale_term_total",
			Help: "Fresh writes refused because they came from a leader of an older term (a deposed leader).",
		}),
		catchUpIncomplete: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_leader_catchup_incomplete_total",
			Help: "Elections after which this node led without copying N-W+1 nodes in time: writes acknowledged before them may have been lost.",
		}),
		tombstonesPurged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_tombstones_purged_total",
			Help: "Tombstones dropped from this node's store: by its own collection, or by a purge from the tombstone's collector.",
		}),
		tombstoneChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvdb_tombstone_checks_total",
			Help: "Checks by this node, as a tombstone's collector, that every replica holds the tombstone, by result (held, behind, unreachable).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.tombstonesPurged, m.tombstoneChecks)
		reg.MustRegister(m.messages, m.replicaUpdates, m.quorumFailures, m.retries, m.dropped, m.refused, m.pending,
			m.hints, m.hintsDelivered, m.readRepairs, m.versionQueries, m.writeBacks, m.invalid, m.batches,
			m.staleTerm, m.catchUpIncomplete)
	}
	return m
}

// registerStore registers the gauges read from the store: the tombstones it
// holds (kvdb_store_tombstones).
func (m *metrics) registerStore(reg prometheus.Registerer, st *store.Store) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kvdb_store_tombstones",
		Help: "Tombstones (deleted keys not yet collected) held by this node.",
	}, func() float64 { return float64(st.Tombstones()) }))
}
