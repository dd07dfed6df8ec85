package replication

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	messages       *prometheus.CounterVec
	replicaUpdates *prometheus.CounterVec
	quorumFailures *prometheus.CounterVec
	retries        prometheus.Counter
	dropped        prometheus.Counter
	pending        prometheus.Gauge
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
			Help: "Background retries of failed replication messages.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_replication_dropped_total",
			Help: "Updates given up on after retrying a peer for the retry window.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvdb_replication_pending",
			Help: "Writes whose replication to all peers is still in progress.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.replicaUpdates, m.quorumFailures, m.retries, m.dropped, m.pending)
	}
	return m
}
