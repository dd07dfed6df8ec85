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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/server"
	"github.com/kvdb/kvdb/internal/store"
	"github.com/kvdb/kvdb/internal/transport"
	"github.com/kvdb/kvdb/internal/wal"
)

// Config is everything one node needs. Zero fields take the defaults that
// SetDefaults documents.
type Config struct {
	// ID is this node's member ID (default "node1").
	ID string
	// Listen is the address to listen on (default ":8080").
	Listen string
	// Mode is leader-follower or leaderless (default leader-follower).
	Mode replication.Mode
	// Members lists every node, this one included, in order. Empty means a
	// single-node cluster of this node at http://127.0.0.1:<listen port>.
	Members []replication.Member
	// Leader is the leader's ID in leader-follower mode (default: first member).
	Leader string
	// Role, if set ("leader" or "follower"), must agree with Leader; it exists
	// so container configs can state a node's role and have it checked.
	Role string
	// LeaderRedirectURL overrides the leader URL that followers redirect
	// client writes to (for published ports).
	LeaderRedirectURL string
	// W and R are the quorums (default W=N, R=1).
	W, R int
	// Delays is the delay profile (default none).
	Delays replication.Delays
	// PeerTimeout bounds one node-to-node message (default 2s).
	PeerTimeout time.Duration
	// RequestTimeout bounds a client request (default 5s).
	RequestTimeout time.Duration
	// RetryFor is how long updates a peer missed are kept for it (hinted
	// handoff, default 10m).
	RetryFor time.Duration
	// DisableHintedHandoff, DisableReadRepair and DisableCatchUp turn those
	// mechanisms off (for experiments; see replication.Config).
	DisableHintedHandoff, DisableReadRepair, DisableCatchUp bool
	// DisableBatching sends every replication update as its own message.
	DisableBatching bool
	// ShutdownTimeout bounds the graceful shutdown (default 15s).
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout and IdleTimeout protect the HTTP server (defaults 5s
	// and 120s).
	ReadHeaderTimeout, IdleTimeout time.Duration
	// MaxKeyBytes and MaxValueBytes bound keys and values (defaults 1 KiB and
	// 1 MiB).
	MaxKeyBytes, MaxValueBytes int
	// DataDir, if set, holds a write-ahead log: every update the node
	// applies is logged before it is acknowledged and replayed at start.
	DataDir string
	// Fsync is the log's fsync policy: always (default), interval or never
	// (see package wal).
	Fsync string
	// BodyReadTimeout bounds reading a request body (default 10s; see
	// server.Config).
	BodyReadTimeout time.Duration
	// ClusterToken, if set, guards /internal/ and PUT /config. Without one
	// the node is in protected mode: those endpoints answer loopback
	// callers only.
	ClusterToken string
	// Logger receives the node's logs (default: discard).
	Logger *slog.Logger
	// WrapTransport, if set, wraps the peer transport (fault injection).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.ID == "" {
		c.ID = "node1"
	}
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Mode == "" {
		c.Mode = replication.LeaderFollower
	}
	if len(c.Members) == 0 {
		_, port, _ := net.SplitHostPort(c.Listen)
		c.Members = []replication.Member{{ID: c.ID, URL: "http://127.0.0.1:" + port}}
	}
	if c.Mode == replication.LeaderFollower && c.Leader == "" {
		switch {
		case c.Role == "leader":
			c.Leader = c.ID
		default:
			c.Leader = c.Members[0].ID
		}
	}
	if c.Delays.Name == "" {
		c.Delays = replication.NoDelays()
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 5 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem that the replication and HTTP configs
// would not.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen address %q: %w", c.Listen, err))
	}
	switch c.Role {
	case "":
	case "leader", "follower":
		if c.Mode != replication.LeaderFollower {
			errs = append(errs, fmt.Errorf("role %q is only meaningful in leader-follower mode", c.Role))
		} else if (c.Role == "leader") != (c.Leader == c.ID) {
			errs = append(errs, fmt.Errorf("role %q disagrees with leader %q for node %q", c.Role, c.Leader, c.ID))
		}
	default:
		errs = append(errs, fmt.Errorf("role %q: want leader or follower", c.Role))
	}
	if c.ShutdownTimeout < 0 || c.ReadHeaderTimeout < 0 || c.IdleTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
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
	rep         replication.Replicator
	http        *http.Server
	fresh       freshConns
	log         *slog.Logger
	url         string
}

// New builds a node from cfg; it does not listen yet.
func New(cfg Config) (*Node, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rcfg := replication.Config{
		Self: cfg.ID, Members: cfg.Members, Mode: cfg.Mode, Leader: cfg.Leader,
		LeaderRedirectURL: cfg.LeaderRedirectURL, W: cfg.W, R: cfg.R, Delays: cfg.Delays,
		PeerTimeout: cfg.PeerTimeout, RetryFor: cfg.RetryFor, Logger: cfg.Logger, Registerer: reg,
		DisableHintedHandoff: cfg.DisableHintedHandoff, DisableReadRepair: cfg.DisableReadRepair,
		DisableCatchUp: cfg.DisableCatchUp, DisableBatching: cfg.DisableBatching,
	}
	rcfg.SetDefaults()
	if err := rcfg.Validate(); err != nil {
		return nil, err
	}
	client := transport.NewHTTPClient(rcfg.PeerTimeout, cfg.WrapTransport)
	// Peer messages carry whatever the client API accepts.
	limits := server.Config{MaxKeyBytes: cfg.MaxKeyBytes, MaxValueBytes: cfg.MaxValueBytes}.PeerLimits()
	var peers []replication.Peer
	var self string
	for _, m := range cfg.Members {
		if m.ID == cfg.ID {
			self = m.URL
			continue
		}
		peers = append(peers, transport.NewHTTPPeer(m.ID, m.URL, cfg.ClusterToken, client, limits))
	}
	st := store.New(0)
	var journal *wal.Log
	if cfg.DataDir != "" {
		var err error
		journal, err = wal.Open(wal.Config{Dir: cfg.DataDir, Sync: cfg.Fsync, Logger: cfg.Logger},
			func(r wal.Record) { st.Apply(r.Key, r.Value, r.Version) },
			func(emit func(wal.Record)) {
				_ = st.Snapshot(func(k, v string, version uint64) error {
					emit(wal.Record{Key: k, Value: v, Version: version})
					return nil
				})
			})
		if err != nil {
			return nil, err
		}
		rcfg.Journal = walJournal{journal}
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kvdb_store_keys", Help: "Keys held by this node.",
	}, func() float64 { return float64(st.Len()) }))
	rep, err := replication.New(rcfg, st, peers)
	if err != nil {
		closeJournal(journal)
		return nil, err
	}
	srv, err := server.New(server.Config{
		MaxKeyBytes: cfg.MaxKeyBytes, MaxValueBytes: cfg.MaxValueBytes,
		RequestTimeout: cfg.RequestTimeout, ClusterToken: cfg.ClusterToken, BodyReadTimeout: cfg.BodyReadTimeout,
		Registry: reg, Logger: cfg.Logger,
	}, rep)
	if err != nil {
		closeJournal(journal)
		return nil, err
	}
	n := &Node{cfg: cfg, client: client, rep: rep, log: cfg.Logger, url: self, catchDone: make(chan struct{}), journal: journal}
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

// URL is the node's base URL as its members list gives it.
func (n *Node) URL() string { return n.url }

// ID is the node's member ID.
func (n *Node) ID() string { return n.cfg.ID }

// Info describes the node's replication settings.
func (n *Node) Info() replication.Info { return n.rep.Info() }

// Ready reports whether the node serves clients (it has caught up).
func (n *Node) Ready() bool { return n.rep.Ready() }

// Pending is the number of writes whose background replication is still in
// flight.
func (n *Node) Pending() int { return n.rep.Pending() }

// Handler is the node's HTTP handler.
func (n *Node) Handler() http.Handler { return n.http.Handler }

// Serve serves on l until Shutdown; it returns nil after a clean shutdown.
func (n *Node) Serve(l net.Listener) error {
	inf := n.rep.Info()
	peers := make([]string, 0, len(n.cfg.Members))
	for _, m := range n.cfg.Members {
		peers = append(peers, m.ID+"="+m.URL)
	}
	n.log.Info("node started", "node", inf.Node, "addr", l.Addr().String(), "mode", inf.Mode, "role", inf.Role,
		"w", inf.W, "r", inf.R, "n", inf.N, "delays", inf.Delays.String(), "gap", inf.Delays.Gap,
		"apply_delay", inf.Delays.Apply, "read_delay", inf.Delays.Read, "sequential", inf.Delays.Sequential,
		"members", strings.Join(peers, ","), "token", n.cfg.ClusterToken != "")
	n.started.Store(true)
	go func() {
		defer close(n.catchDone)
		if err := n.rep.CatchUp(n.catchCtx); err != nil && n.catchCtx.Err() == nil {
			n.log.Error("catch-up failed", "err", err)
		}
	}()
	if n.cfg.ClusterToken == "" {
		n.log.Warn("protected mode: no cluster token, so /internal/ endpoints and PUT /config answer loopback callers only (others get 403); " +
			"for nodes on different hosts or containers set the same --cluster-token or KVDB_CLUSTER_TOKEN on every node")
	}
	if err := n.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("node %s: %w", n.cfg.ID, err)
	}
	return nil
}

// Drain refuses new writes and waits for background replication to finish
// (until ctx ends). The HTTP server keeps answering peers meanwhile.
func (n *Node) Drain(ctx context.Context) error { return n.rep.Close(ctx) }

// closeJournal closes the write-ahead log once; requests still running
// after it get ErrStorage.
func (n *Node) closeJournal() error {
	var err error
	n.journalOnce.Do(func() { err = closeJournal(n.journal) })
	return err
}

// walJournal adapts the write-ahead log to replication.Journal.
type walJournal struct{ log *wal.Log }

func (j walJournal) Append(us ...replication.Update) error {
	recs := make([]wal.Record, len(us))
	for i, u := range us {
		recs[i] = wal.Record{Key: u.Key, Value: u.Value, Version: u.Version}
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
// ends, then it closes connections).
func (n *Node) Close(ctx context.Context) error {
	defer n.client.CloseIdleConnections()
	defer n.closeJournal()
	n.catchCancel()
	if n.started.Load() {
		select {
		case <-n.catchDone:
		case <-ctx.Done():
		}
	}
	if err := n.http.Shutdown(ctx); err != nil {
		n.http.Close()
		return fmt.Errorf("node %s: http shutdown: %w", n.cfg.ID, err)
	}
	return nil
}

// Kill stops the node at once, as a crash would look to its peers: open
// connections are cut and background replication is abandoned.
func (n *Node) Kill() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.catchCancel()
	_ = n.rep.Close(ctx) // cancelled: cuts background work short
	err := n.http.Close()
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
	n.log.Info("node stopped", "node", n.cfg.ID, "err", err)
	return err
}

// Run listens on cfg.Listen and serves until ctx is done, then shuts down.
func (n *Node) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.cfg.ID, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- n.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	err = n.Shutdown()
	return errors.Join(err, <-errc)
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
