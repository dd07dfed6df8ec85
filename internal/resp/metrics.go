package resp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the RESP server's Prometheus series, on the node's registry.
type metrics struct {
	commands       *prometheus.CounterVec   // by command
	errors         *prometheus.CounterVec   // by command and error prefix
	duration       *prometheus.HistogramVec // by command
	conns          prometheus.Gauge
	connsTotal     prometheus.Counter
	rejected       prometheus.Counter
	protocolErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvdb_resp_commands_total", Help: "RESP commands processed, by command (unknown commands as \"unknown\").",
		}, []string{"command"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvdb_resp_errors_total", Help: "RESP commands answered with an error, by command and error prefix (ERR, NOREPLICAS, READONLY, ...).",
		}, []string{"command", "error"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvdb_resp_command_duration_seconds",
			Help:    "Time to run a RESP command, coordination included (not the network or the wait in a pipeline).",
			Buckets: prometheus.ExponentialBuckets(20e-6, 2.5, 12),
		}, []string{"command"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvdb_resp_connections", Help: "Open RESP client connections.",
		}),
		connsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_resp_connections_total", Help: "RESP client connections accepted.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_resp_rejected_connections_total", Help: "RESP connections refused because MaxClients were open.",
		}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_resp_protocol_errors_total", Help: "RESP connections closed for a protocol error (malformed or over the limits).",
		}),
	}
	for _, c := range []prometheus.Collector{m.commands, m.errors, m.duration, m.conns, m.connsTotal, m.rejected, m.protocolErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
