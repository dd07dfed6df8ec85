// Package node assembles one kvdb node — store, peer transport, replicator
// and HTTP server — from a single Config, and runs it on a listener with an
// ordered, graceful shutdown.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kvdb/kvdb/internal/consensus"
	"github.com/kvdb/kvdb/internal/hops"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/resp"
	"github.com/kvdb/kvdb/internal/server"
	"github.com/kvdb/kvdb/internal/store"
	"github.com/kvdb/kvdb/internal/transport"
	"github.com/kvdb/kvdb/internal/wal"
)

// Config is everything one node needs: the replication engine's config,
// the HTTP layer's config, and the few settings that belong to the node
// itself. Zero fields take the defaults that SetDefaults documents;
// DefaultConfig returns them filled in (what the CLI flags start from).
type Config struct {
	// Replication configures the engine: Self is this node's member ID
	// (default "node1"), Members the cluster (empty: a single-node
	// cluster of this node at http://127.0.0.1:<listen port>), then mode,
	// leader, W and R, delays, peer timeout and the repair switches (see
	// replication.Config). New sets Journal and Registerer, and Logger
	// unless it is set.
	Replication replication.Config
	// Server configures the HTTP layer: key and value limits, request and
	// body timeouts, the cluster token (see server.Config). The token also
	// authenticates this node's calls to its peers. New sets Registry and
	// Raft, and Logger unless it is set.
	Server server.Config
	// Election configures leader election in leader-follower mode with
	// more than one member: raft's timeouts (see consensus.Config). New
	// fills in the rest — Self, Members (their URLs are the raft
	// addresses: raft runs over this node's own HTTP port, an upgrade at
	// /internal/raft), Bootstrap (the node named by Replication.Leader
	// founds the cluster, so it leads first), DataDir (DataDir/raft, when
	// the node has one), W, R, Logger and Registerer. Leaderless mode
	// runs no election.
	Election consensus.Config
	// RESP configures the Redis-protocol listener, when RESPListen is set:
	// its limits default to the HTTP layer's (key, value, body, request
	// timeout); Addrs names the members' RESP addresses for READONLY
	// errors. New sets Logger, Registerer and Durable.
	RESP resp.Config
	// RESPListen, if set, is the address Run serves the Redis protocol on
	// beside HTTP (kvdb serve --resp-addr); ServeRESP serves it on a
	// listener of the caller's. Empty: no RESP listener.
	RESPListen string

	// Listen is the address to listen on (default ":8080").
	Listen string
	// Role, if set ("leader" or "follower"), must agree with
	// Replication.Leader; it exists so container configs can state a
	// node's role and have it checked. With Role "leader" and no leader
	// given, this node is the leader.
	Role string
	// DataDir, if set, holds a write-ahead log: every update the node
	// applies is logged before it is acknowledged and replayed at start.
	DataDir string
	// Fsync is the log's fsync policy: always (default), interval or never
	// (see package wal).
	Fsync string
	// ShutdownTimeout bounds the graceful shutdown (default 15s).
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout and IdleTimeout protect the HTTP server (defaults 5s
	// and 120s).
	ReadHeaderTimeout, IdleTimeout time.Duration
	// Logger receives the node's logs (default: discard).
	Logger *slog.Logger
	// WrapTransport, if set, wraps the peer transport (fault injection).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// RaftDial, if set, opens the election's TCP connections and the
	// replication streams' (fault injection: transport.Faults.Dialer).
	RaftDial func(ctx context.Context, network, address string) (net.Conn, error)
	// PeerTransport is how this node sends its messages to its peers:
	// PeerStream (default) over one persistent, multiplexed binary stream
	// per peer (an upgrade at /internal/stream on the peer's HTTP port,
	// HTTP while it is down or for peers without it), or PeerHTTP, one
	// HTTP request per message. Either way the node serves both.
	PeerTransport string
	// Network, if set, carries node-to-node calls in place of HTTP (an
	// in-process network such as transport.InmemNetwork, for tests): it
	// builds the peers and the election's streams, and New registers the
	// node's replica side on it.
	Network interface {
		Peers(self string, members []replication.Member) ([]replication.Peer, error)
		RaftStreams(self string, members []replication.Member) raft.StreamLayer
		Register(self string, rep transport.Replica)
	}
}

// Peer transports (Config.PeerTransport).
const (
	PeerStream = "stream"
	PeerHTTP   = "http"
)

// DefaultConfig returns a node config with every default filled in that
// does not depend on the membership (see replication.DefaultConfig and
// server.DefaultConfig).
func DefaultConfig() Config {
	return Config{
		Replication:       replication.DefaultConfig(),
		Server:            server.DefaultConfig(),
		Election:          consensus.DefaultConfig(),
		Listen:            ":8080",
		PeerTransport:     PeerStream,
		Fsync:             wal.SyncAlways,
		ShutdownTimeout:   15 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
}

// ID is this node's member ID (Replication.Self).
func (c *Config) ID() string { return c.Replication.Self }

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	d := DefaultConfig()
	rc := &c.Replication
	if rc.Self == "" {
		rc.Self = "node1"
	}
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if len(rc.Members) == 0 {
		_, port, _ := net.SplitHostPort(c.Listen)
		rc.Members = []replication.Member{{ID: rc.Self, URL: "http://127.0.0.1:" + port}}
	}
	if rc.Mode == "" {
		rc.Mode = d.Replication.Mode
	}
	if rc.Mode == replication.LeaderFollower && rc.Leader == "" && c.Role == "leader" {
		rc.Leader = rc.Self
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	if c.PeerTransport == "" {
		c.PeerTransport = d.PeerTransport
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if rc.Logger == nil {
		rc.Logger = c.Logger
	}
	if c.Server.Logger == nil {
		c.Server.Logger = c.Logger
	}
	rc.SetDefaults()
	c.Server.SetDefaults()
	// Election's zero timings take consensus's defaults in electionConfig.
}

// elected reports whether the node runs an election: leader-follower mode
// with more than one member.
func (c *Config) elected() bool {
	return c.Replication.Mode == replication.LeaderFollower && len(c.Replication.Members) > 1
}

// electionConfig is Election with the per-node fields filled in.
func (c *Config) electionConfig() consensus.Config {
	e := c.Election
	rc := &c.Replication
	e.Self, e.Bootstrap, e.W, e.R = rc.Self, rc.Self == rc.Leader, rc.W, rc.R
	e.Members = make([]consensus.Member, len(rc.Members))
	for i, m := range rc.Members {
		e.Members[i] = consensus.Member{ID: m.ID, Addr: m.URL}
	}
	if c.DataDir != "" {
		e.DataDir = c.DataDir
	}
	if e.Logger == nil {
		e.Logger = c.Logger
	}
	e.SetDefaults()
	return e
}

// Validate reports every problem with the configuration, the replication
// and HTTP parts included.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen address %q: %w", c.Listen, err))
	}
	if c.RESPListen != "" {
		if _, _, err := net.SplitHostPort(c.RESPListen); err != nil {
			errs = append(errs, fmt.Errorf("RESP listen address %q: %w", c.RESPListen, err))
		}
	}
	switch c.Role {
	case "":
	case "leader", "follower":
		if c.Replication.Mode != replication.LeaderFollower {
			errs = append(errs, fmt.Errorf("role %q is only meaningful in leader-follower mode", c.Role))
		} else if (c.Role == "leader") != (c.Replication.Leader == c.ID()) {
			errs = append(errs, fmt.Errorf("role %q disagrees with leader %q for node %q", c.Role, c.Replication.Leader, c.ID()))
		}
	default:
		errs = append(errs, fmt.Errorf("role %q: want leader or follower", c.Role))
	}
	if c.PeerTransport != PeerStream && c.PeerTransport != PeerHTTP {
		errs = append(errs, fmt.Errorf("peer transport %q: want %s or %s", c.PeerTransport, PeerStream, PeerHTTP))
	}
	if c.ShutdownTimeout < 0 || c.ReadHeaderTimeout < 0 || c.IdleTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	if err := c.Replication.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Server.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("server config: %w", err))
	}
	if c.elected() {
		e := c.electionConfig()
		if err := e.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("election config: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Node is one running kvdb node.
type Node struct {
	cfg    Config
	client *http.Client
	// catch-up runs beside the server from Serve until it is done or Close.
	catchCtx    context.Context
	catchCancel context.CancelFunc
	catchDone   chan struct{}
	started     atomic.Bool
	journal     *wal.Log // nil without a data directory
	journalOnce sync.Once
	rep         *replication.Engine
	election    *consensus.Node // nil without an election
	hops        *hops.Recorder
	streams     peerStreams // zero with an in-process network
	http        *http.Server
	resp        *resp.Server // nil without RESPListen
	fresh       freshConns
	log         *slog.Logger
	url         string
}

// New builds a node from cfg; it does not listen yet, and starts nothing:
// no goroutine runs until Serve. If it fails, everything it opened is
// closed again.
func New(cfg Config) (*Node, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rcfg, scfg := cfg.Replication, cfg.Server
	rcfg.Registerer, scfg.Registry = reg, reg
	client := transport.NewHTTPClient(rcfg.PeerTimeout, cfg.WrapTransport)
	hopRec := hops.New(0, reg)
	// Peer messages carry whatever the client API accepts.
	limits := scfg.PeerLimits()
	var peers []replication.Peer
	var self string
	for _, m := range rcfg.Members {
		if m.ID == rcfg.Self {
			self = m.URL
			continue
		}
		if cfg.Network == nil {
			p := transport.NewHTTPPeer(m.ID, m.URL, scfg.ClusterToken, client, limits)
			p.RecordHops(hopRec)
			peers = append(peers, p)
		}
	}
	var streams peerStreams
	if cfg.Network == nil {
		var err error
		if peers, streams.peers, err = streamPeers(&cfg, peers, reg); err != nil {
			client.CloseIdleConnections()
			return nil, err
		}
	}
	if cfg.Network != nil {
		var err error
		if peers, err = cfg.Network.Peers(rcfg.Self, rcfg.Members); err != nil {
			return nil, err
		}
	}
	st := store.New(0)
	var journal *wal.Log
	if cfg.DataDir != "" {
		var err error
		journal, err = wal.Open(wal.Config{Dir: cfg.DataDir, Sync: cfg.Fsync, Logger: cfg.Logger},
			func(r wal.Record) {
				st.ApplyEntry(r.Key, store.Entry{Value: r.Value, Version: r.Version, Deleted: r.Deleted})
			},
			func(emit func(wal.Record)) {
				_ = st.Snapshot(func(k string, e store.Entry) error {
					emit(wal.Record{Key: k, Value: e.Value, Version: e.Version, Deleted: e.Deleted})
					return nil
				})
			})
		if err != nil {
			client.CloseIdleConnections()
			return nil, err
		}
		rcfg.Journal = walJournal{journal}
	}
	fail := func(err error) (*Node, error) {
		streams.close()
		client.CloseIdleConnections()
		return nil, errors.Join(err, closeJournal(journal))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kvdb_store_keys", Help: "Keys held by this node.",
	}, func() float64 { return float64(st.Len()) }))
	n := &Node{cfg: cfg, client: client, log: cfg.Logger, url: self, catchDone: make(chan struct{}), journal: journal, hops: hopRec, streams: streams}
	if cfg.elected() {
		ecfg := cfg.electionConfig()
		ecfg.Registerer = reg
		var streams raft.StreamLayer
		if cfg.Network != nil {
			streams = cfg.Network.RaftStreams(rcfg.Self, rcfg.Members)
		} else {
			var opts []transport.RaftStreamsOption
			if cfg.RaftDial != nil {
				opts = append(opts, transport.WithRaftDialer(cfg.RaftDial))
			}
			rs, err := transport.NewRaftStreams(self, scfg.ClusterToken, opts...)
			if err != nil {
				return fail(err)
			}
			scfg.Raft = rs.Handler()
			streams = rs
		}
		// The hooks run only after Serve starts the election, when n.rep
		// is set.
		el, err := consensus.New(ecfg, streams, consensus.Hooks{
			Leadership: func(s consensus.State) {
				n.rep.LeaderChanged(replication.Leadership{Leader: s.Leader, Term: s.Term, Self: s.Self})
			},
			Quorum: func(w, r int) {
				if err := n.rep.SetQuorum(w, r); err != nil {
					n.log.Error("the election's log carries an invalid quorum", "w", w, "r", r, "err", err)
				}
			},
		})
		if err != nil {
			_ = streams.Close()
			return fail(err)
		}
		n.election = el
		rcfg.Elector = elector{el}
	}
	closeElection := func() {
		if n.election != nil {
			_ = n.election.Close()
		}
	}
	rep, err := replication.New(rcfg, st, peers)
	if err != nil {
		closeElection()
		return fail(err)
	}
	n.rep = rep
	if cfg.Network == nil {
		if scfg.Stream, err = n.streams.serve(&cfg, limits, rep); err != nil {
			closeElection()
			return fail(err)
		}
	}
	srv, err := server.New(scfg, rep)
	if err != nil {
		// The engine has started nothing yet; Close only marks it closed.
		_ = rep.Close(context.Background())
		closeElection()
		return fail(err)
	}
	if cfg.RESPListen != "" {
		if n.resp, err = resp.New(cfg.respConfig(reg), rep); err != nil {
			_ = rep.Close(context.Background())
			closeElection()
			return fail(fmt.Errorf("RESP: %w", err))
		}
	}
	if cfg.Network != nil {
		cfg.Network.Register(rcfg.Self, rep)
	}
	n.catchCtx, n.catchCancel = context.WithCancel(context.Background())
	n.http = &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		ConnState:         n.fresh.track,
	}
	n.http.RegisterOnShutdown(n.fresh.closeAll)
	return n, nil
}

// respConfig is RESP with the node's limits, logger and registry.
func (c *Config) respConfig(reg prometheus.Registerer) resp.Config {
	r := c.RESP
	if r.MaxKeyBytes == 0 {
		r.MaxKeyBytes = c.Server.MaxKeyBytes
	}
	if r.MaxValueBytes == 0 {
		r.MaxValueBytes = c.Server.MaxValueBytes
	}
	if r.MaxCommandBytes == 0 {
		r.MaxCommandBytes = int(c.Server.MaxBodyBytes)
	}
	if r.RequestTimeout == 0 {
		r.RequestTimeout = c.Server.RequestTimeout
	}
	if r.Logger == nil {
		r.Logger = c.Logger
	}
	r.Registerer = reg
	r.Durable = c.DataDir != ""
	return r
}

// ServeRESP serves the Redis protocol on l until Close or Kill (it needs
// RESPListen set, which builds the RESP server); it returns nil then.
func (n *Node) ServeRESP(l net.Listener) error {
	if n.resp == nil {
		l.Close()
		return fmt.Errorf("node %s: no RESP listener configured", n.cfg.ID())
	}
	if err := n.resp.Serve(l); err != nil && !errors.Is(err, resp.ErrServerClosed) {
		return fmt.Errorf("node %s: %w", n.cfg.ID(), err)
	}
	return nil
}

// RESPAddr is the address the RESP listener serves on ("" before
// ServeRESP, or without one).
func (n *Node) RESPAddr() string {
	if n.resp == nil {
		return ""
	}
	if a := n.resp.Addr(); a != nil {
		return a.String()
	}
	return ""
}

// closeRESP stops the RESP listener: commands running finish until ctx
// ends (at once if it has). Idempotent.
func (n *Node) closeRESP(ctx context.Context) {
	if n.resp == nil {
		return
	}
	if err := n.resp.Close(ctx); err != nil {
		n.log.Warn("closing the RESP listener", "err", err)
	}
}

// URL is the node's base URL as its members list gives it.
func (n *Node) URL() string { return n.url }

// ID is the node's member ID.
func (n *Node) ID() string { return n.cfg.ID() }

// Info describes the node's replication settings.
func (n *Node) Info() replication.Info { return n.rep.Info() }

// Ready reports whether the node serves clients (it has caught up).
func (n *Node) Ready() bool { return n.rep.Ready() }

// Hops is what the node measured of its messages to its peers, as their
// coordinator: one-way times of replication messages and reads (over HTTP
// and the replication stream alike, not over an in-process network; see
// package hops).
func (n *Node) Hops() *hops.Recorder { return n.hops }

// Pending is the number of writes whose background replication is still in
// flight.
func (n *Node) Pending() int { return n.rep.Pending() }

// Handler is the node's HTTP handler.
func (n *Node) Handler() http.Handler { return n.http.Handler }

// Serve serves on l until Shutdown; it returns nil after a clean shutdown.
func (n *Node) Serve(l net.Listener) error {
	inf := n.rep.Info()
	peers := make([]string, 0, len(n.cfg.Replication.Members))
	for _, m := range n.cfg.Replication.Members {
		peers = append(peers, m.ID+"="+m.URL)
	}
	n.log.Info("node started", "node", inf.Node, "addr", l.Addr().String(), "mode", inf.Mode, "role", inf.Role,
		"w", inf.W, "r", inf.R, "n", inf.N, "delays", inf.Delays.String(), "gap", inf.Delays.Gap,
		"apply_delay", inf.Delays.Apply, "read_delay", inf.Delays.Read, "sequential", inf.Delays.Sequential,
		"members", strings.Join(peers, ","), "token", n.cfg.Server.ClusterToken != "")
	n.started.Store(true)
	n.rep.Start()
	go func() {
		defer close(n.catchDone)
		if err := n.rep.CatchUp(n.catchCtx); err != nil && n.catchCtx.Err() == nil {
			n.log.Error("catch-up failed", "err", err)
		}
	}()
	if n.election != nil {
		if err := n.election.Start(); err != nil {
			n.log.Error("election failed to start: this node takes no part in choosing a leader", "err", err)
		}
	}
	if n.cfg.Server.ClusterToken == "" {
		n.log.Warn("protected mode: no cluster token, so /internal/ endpoints and PUT /config answer loopback callers only (others get 403); " +
			"for nodes on different hosts or containers set the same --cluster-token or KVDB_CLUSTER_TOKEN on every node")
	}
	if err := n.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("node %s: %w", n.cfg.ID(), err)
	}
	return nil
}

// Drain refuses new writes and waits for background replication to finish
// (until ctx ends). The HTTP server keeps answering peers meanwhile.
//
// A leader hands its leadership to another node first (raft's leadership
// transfer), so a graceful stop (SIGTERM, docker stop, a rolling restart)
// leaves writes unavailable for a transfer rather than an election timeout.
func (n *Node) Drain(ctx context.Context) error {
	if n.election != nil && n.started.Load() {
		if err := n.election.HandOff(); err != nil {
			n.log.Warn("could not hand leadership over before stopping; the others will elect a leader", "err", err)
		}
	}
	return n.rep.Close(ctx)
}

// closeElection stops taking part in the election (its connections,
// which the HTTP server does not track, close with it). Idempotent.
func (n *Node) closeElection() {
	if n.election != nil {
		if err := n.election.Close(); err != nil {
			n.log.Warn("closing the election", "err", err)
		}
	}
}

// closeJournal closes the write-ahead log once; requests still running
// after it get ErrStorage.
func (n *Node) closeJournal() error {
	var err error
	n.journalOnce.Do(func() { err = closeJournal(n.journal) })
	return err
}

// elector adapts the election to replication.Elector.
type elector struct{ n *consensus.Node }

func (e elector) Leadership() replication.Leadership {
	s := e.n.State()
	return replication.Leadership{Leader: s.Leader, Term: s.Term, Self: s.Self}
}

func (e elector) Term() uint64 { return e.n.Term() }

func (e elector) Barrier(ctx context.Context) error { return e.n.Barrier(ctx) }

// ProposeQuorum maps the election's errors to replication's: not the
// leader (or none known) to ErrNotLeader, a bad value to ErrInvalid, an
// outcome it cannot tell to a timeout, an election already stopped to
// ErrClosed (503 shutting_down).
func (e elector) ProposeQuorum(ctx context.Context, w, r int) (uint64, error) {
	idx, err := e.n.ProposeQuorum(ctx, w, r)
	switch {
	case err == nil:
		return idx, nil
	case errors.Is(err, consensus.ErrNotLeader), errors.Is(err, consensus.ErrNoLeader):
		return 0, fmt.Errorf("%w: %v", replication.ErrNotLeader, err)
	case errors.Is(err, consensus.ErrInvalid):
		return 0, fmt.Errorf("%w: %v", replication.ErrInvalid, err)
	case errors.Is(err, consensus.ErrUnknownOutcome):
		return 0, fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	case errors.Is(err, consensus.ErrClosed):
		return 0, fmt.Errorf("%w: %v", replication.ErrClosed, err)
	}
	return 0, err
}

// walJournal adapts the write-ahead log to replication.Journal.
type walJournal struct{ log *wal.Log }

func (j walJournal) Append(us ...replication.Update) error {
	recs := make([]wal.Record, len(us))
	for i, u := range us {
		recs[i] = wal.Record{Key: u.Key, Value: u.Value, Version: u.Version, Deleted: u.Deleted}
	}
	return j.log.Append(recs...)
}

func (j walJournal) Err() error { return j.log.Err() }

func closeJournal(j *wal.Log) error {
	if j == nil {
		return nil
	}
	return j.Close()
}

// Close stops the HTTP server after in-flight requests finish (until ctx
// ends, then it closes connections), then stops the replication engine's
// workers (after Drain there is nothing left for them to do; without one,
// Close drains first, within ctx).
func (n *Node) Close(ctx context.Context) error {
	defer n.client.CloseIdleConnections()
	defer n.streams.close()
	defer n.closeJournal()
	defer n.rep.Close(ctx) //nolint:errcheck // Drain reports what was cut short
	n.catchCancel()
	if n.started.Load() {
		select {
		case <-n.catchDone:
		case <-ctx.Done():
		}
	}
	n.closeElection()
	n.closeRESP(ctx)
	if err := n.http.Shutdown(ctx); err != nil {
		n.http.Close()
		n.streams.kill()
		return fmt.Errorf("node %s: http shutdown: %w", n.cfg.ID(), err)
	}
	if err := n.streams.shutdown(ctx); err != nil {
		return fmt.Errorf("node %s: replication stream shutdown: %w", n.cfg.ID(), err)
	}
	return nil
}

// Kill stops the node at once, as a crash would look to its peers: open
// connections are cut and background replication is abandoned.
func (n *Node) Kill() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.catchCancel()
	n.closeElection()
	_ = n.rep.Close(ctx) // cancelled: cuts background work short
	n.closeRESP(ctx)
	err := n.http.Close()
	n.streams.kill()
	n.streams.close()
	n.client.CloseIdleConnections()
	if n.started.Load() {
		<-n.catchDone
	}
	return errors.Join(err, n.closeJournal())
}

// Shutdown drains, then closes, within ShutdownTimeout.
func (n *Node) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	err := n.Drain(ctx)
	err = errors.Join(err, n.Close(ctx))
	n.log.Info("node stopped", "node", n.cfg.ID(), "err", err)
	return err
}

// Run listens on cfg.Listen (and cfg.RESPListen, if set) and serves until
// ctx is done, then shuts down.
func (n *Node) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.cfg.ID(), err)
	}
	var rl net.Listener
	if n.cfg.RESPListen != "" {
		if rl, err = net.Listen("tcp", n.cfg.RESPListen); err != nil {
			l.Close()
			return fmt.Errorf("node %s: RESP: %w", n.cfg.ID(), err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- n.Serve(l) }()
	respc := make(chan error, 1)
	if rl != nil {
		go func() { respc <- n.ServeRESP(rl) }()
	}
	select {
	case err := <-errc:
		n.closeRESP(context.Background())
		if rl != nil {
			err = errors.Join(err, <-respc)
		}
		return err
	case err = <-respc:
		// The RESP listener failed: stop the node with it.
		return errors.Join(err, n.Shutdown(), <-errc)
	case <-ctx.Done():
	}
	err = n.Shutdown()
	err = errors.Join(err, <-errc)
	if rl != nil {
		err = errors.Join(err, <-respc)
	}
	return err
}

// freshConns tracks the server's connections that have not yet carried a
// request. http.Server.Shutdown counts such a connection as active for five
// seconds, and peers' HTTP clients leave them behind routinely (a dial that
// lost a race to a connection freed meanwhile goes unused into the pool), so
// without closing them a node's shutdown waited five seconds for nothing.
// No request is in progress on one, so closing it at shutdown loses nothing.
type freshConns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

// track is the server's ConnState hook.
func (f *freshConns) track(c net.Conn, state http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state == http.StateNew {
		if f.m == nil {
			f.m = map[net.Conn]struct{}{}
		}
		f.m[c] = struct{}{}
		return
	}
	delete(f.m, c)
}

// closeAll closes every connection still waiting for its first request; it
// runs when Shutdown has closed the listeners.
func (f *freshConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.m {
		c.Close()
		delete(f.m, c)
	}
}
