package consensus

import (
	"errors"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's raft gauges; the gauges read raft when scraped.
type metrics struct {
	reg           prometheus.Registerer
	collectors    []prometheus.Collector
	leaderChanges prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, n *Node) (*metrics, error) {
	m := &metrics{
		reg: reg,
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvdb_raft_leader_changes_total",
			Help: "Times this node learned of a new leader (another node, or a new term).",
		}),
	}
	m.collectors = []prometheus.Collector{
		m.leaderChanges,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kvdb_raft_term",
			Help: "Raft's current term on this node.",
		}, func() float64 { return float64(n.Term()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kvdb_raft_state",
			Help: "Raft state: 0 follower, 1 candidate, 2 leader, 3 shutdown (or not started).",
		}, func() float64 {
			r := n.raft.Load()
			if r == nil {
				return float64(raft.Shutdown)
			}
			return float64(r.State())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kvdb_raft_commit_index",
			Help: "Raft's commit index on this node.",
		}, func() float64 {
			if r := n.raft.Load(); r != nil {
				return float64(r.CommitIndex())
			}
			return 0
		}),
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, errors.Join(errors.New("consensus: registering metrics"), err)
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
