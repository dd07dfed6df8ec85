package transport

import "github.com/prometheus/client_golang/prometheus"

// StreamMetrics counts what a node's replication streams do: the calls
// that went on a stream and those that went over HTTP because it was down,
// the connections opened and the ones that broke. One value serves all of
// a node's peers (NewStreamMetrics registers it once); nil counts nothing.
type StreamMetrics struct {
	calls  *prometheus.CounterVec
	dials  *prometheus.CounterVec
	breaks *prometheus.CounterVec
}

// NewStreamMetrics registers the stream's metrics with reg.
func NewStreamMetrics(reg prometheus.Registerer) *StreamMetrics {
	m := &StreamMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvdb_peer_stream_calls_total",
			Help: "Node-to-node calls of a stream peer, by peer and by the path they took: stream, or http while the stream was down (or the peer does not serve it).",
		}, []string{"peer", "path"}),
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvdb_peer_stream_connects_total",
			Help: "Replication stream connections opened, by peer.",
		}, []string{"peer"}),
		breaks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvdb_peer_stream_breaks_total",
			Help: "Replication stream connections that broke (their calls in flight failed), by peer.",
		}, []string{"peer"}),
	}
	reg.MustRegister(m.calls, m.dials, m.breaks)
	return m
}

// peerCounters are one peer's counters (no-ops without metrics).
type peerCounters struct {
	stream, http, dials, breaks prometheus.Counter
}

func (m *StreamMetrics) forPeer(id string) peerCounters {
	if m == nil {
		nop := prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})
		return peerCounters{nop, nop, nop, nop}
	}
	return peerCounters{
		stream: m.calls.WithLabelValues(id, "stream"),
		http:   m.calls.WithLabelValues(id, "http"),
		dials:  m.dials.WithLabelValues(id),
		breaks: m.breaks.WithLabelValues(id),
	}
}
