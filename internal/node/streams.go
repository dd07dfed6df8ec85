package node

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
	"github.com/kvdb/kvdb/internal/wal"
)

// peerStreams is the node's part of the replication stream: the dialing
// side (a StreamPeer per peer, with PeerTransport "stream") and the
// serving side (always, so peers of either setting can use it). The zero
// value (an in-process network) does nothing.
type peerStreams struct {
	peers  []*transport.StreamPeer
	server *transport.StreamServer
}

// streamPeers wraps each HTTP peer in a StreamPeer when cfg asks for the
// stream; it returns the peers to give the engine and the stream peers to
// close. Their metrics go to reg.
func streamPeers(cfg *Config, peers []replication.Peer, reg prometheus.Registerer) ([]replication.Peer, []*transport.StreamPeer, error) {
	if cfg.PeerTransport != PeerStream {
		return peers, nil, nil
	}
	scfg := transport.StreamConfig{
		Dial:             cfg.RaftDial,
		Wrap:             cfg.WrapTransport,
		HandshakeTimeout: cfg.Replication.PeerTimeout,
		Metrics:          transport.NewStreamMetrics(reg),
		Logger:           cfg.Logger,
	}
	out := make([]replication.Peer, len(peers))
	sps := make([]*transport.StreamPeer, 0, len(peers))
	for i, p := range peers {
		hp, ok := p.(*transport.HTTPPeer)
		if !ok {
			out[i] = p
			continue
		}
		sp, err := transport.NewStreamPeer(hp, scfg)
		if err != nil {
			for _, s := range sps {
				_ = s.Close()
			}
			return nil, nil, err
		}
		out[i] = sp
		sps = append(sps, sp)
	}
	return out, sps, nil
}

// serve builds the serving side over rep and returns its handler, for
// server.Config.Stream.
func (s *peerStreams) serve(cfg *Config, limits transport.Limits, rep transport.Replica) (http.Handler, error) {
	srv, err := transport.NewStreamServer(transport.StreamServerConfig{Limits: limits, Logger: cfg.Logger, Inline: inlineReplica(cfg)}, rep)
	if err != nil {
		return nil, err
	}
	s.server = srv
	return srv.Handler(), nil
}

// inlineReplica reports whether this node's replica applies and reads
// without blocking — no apply or read delay, and no fsync before an apply —
// so the stream server may run them on each connection's reader
// (transport.StreamServerConfig.Inline).
func inlineReplica(cfg *Config) bool {
	d := cfg.Replication.Delays
	return d.Apply == 0 && d.Read == 0 && (cfg.DataDir == "" || cfg.Fsync == wal.SyncInterval || cfg.Fsync == wal.SyncNever)
}

// shutdown lets the streams' requests in progress answer (within ctx),
// then closes the served connections.
func (s *peerStreams) shutdown(ctx context.Context) error {
	if s.server == nil {
		return nil
	}
	return s.server.Close(ctx)
}

// kill closes the served connections at once.
func (s *peerStreams) kill() {
	if s.server != nil {
		s.server.Kill()
	}
}

// close closes the dialing side.
func (s *peerStreams) close() {
	for _, p := range s.peers {
		_ = p.Close()
	}
}
