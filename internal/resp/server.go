// Package resp serves kvdb's client API over the Redis protocol (RESP2), so
// redis-cli, redis-benchmark and Redis client libraries work against a node
// unchanged. It speaks to the node's replication engine through the small
// Backend interface it declares (the consumer owns it, as package server
// does for HTTP) and maps the engine's errors to Redis's in one place
// (errors.go).
//
// Commands: SET, GET, DEL, EXISTS, PING, ECHO, INFO, COMMAND, HELLO, QUIT,
// CLIENT, SELECT, CONFIG GET (see commands.go). Connections and pipelining
// come from github.com/tidwall/redcon: every connection has its own
// goroutine, which runs that connection's commands one after another and
// answers them in order, so a SET waiting for W acknowledgements holds up
// only its own connection. The framing guard in guard.go bounds what a
// connection may make the server buffer.
package resp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"

	"github.com/kvdb/kvdb/internal/replication"
)

// Backend is what the RESP server needs from the node: coordinated writes,
// reads and deletes, and the node's description. *replication.Engine
// implements it.
type Backend interface {
	// Write coordinates a write: it returns once W copies are
	// acknowledged (a follower answers *replication.NotLeaderError).
	Write(ctx context.Context, key, value string, o replication.Options) (replication.WriteResult, error)
	// Read coordinates a read of R copies (replication.ErrNotFound when
	// none has the key).
	Read(ctx context.Context, key string, o replication.Options) (replication.ReadResult, error)
	// Delete coordinates a delete: a versioned tombstone replicated like
	// a write.
	Delete(ctx context.Context, key string, o replication.Options) (replication.WriteResult, error)
	// Info describes the node's replication settings and role.
	Info() replication.Info
	// Quorums returns the node's W and R: a cheap read for every request
	// (a GET at R=1 reads the local copy and needs no request timer).
	Quorums() (w, r int)
	// Ready reports whether the node serves clients (it has caught up).
	Ready() bool
}

// Stats is optional: a Backend that has it gets INFO keyspace and
// kvdb_pending_replication. *replication.Engine has it.
type Stats interface {
	Keys() int
	Pending() int
}

// ErrServerClosed is what Serve returns after Close.
var ErrServerClosed = errors.New("resp: server closed")

// Server serves RESP clients on one listener.
type Server struct {
	cfg  Config
	b    Backend
	cmds map[string]*command
	m    *metrics
	// leaderless: every write asks the peers first (see writeWaits).
	leaderless bool

	ctx    context.Context // ends when the server stops: cuts commands short
	cancel context.CancelFunc

	mu       sync.Mutex
	ln       net.Listener
	closed   bool
	release  chan struct{} // closed when redcon may cut the connections
	served   chan struct{} // closed when Serve has returned
	serving  bool
	conns    sync.WaitGroup // connection goroutines
	clients  atomic.Int64
	nextID   atomic.Int64
	total    atomic.Int64 // connections accepted
	commands atomic.Int64 // commands processed

	// Graceful stop: commands running now finish, new ones are refused.
	draining atomic.Bool
	active   atomic.Int64
	idle     chan struct{} // signalled when active falls to zero while draining
	started  time.Time
}

// New builds a server; it serves nothing until Serve.
func New(cfg Config, b Backend) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		b:       b,
		m:       m,
		release: make(chan struct{}),
		served:  make(chan struct{}),
		idle:    make(chan struct{}, 1),
		started: time.Now(),
	}
	s.cmds = s.commandTable()
	s.leaderless = b.Info().Mode == replication.Leaderless
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// client is one connection's state.
type client struct {
	id      int64
	name    string
	lib     string
	libVer  string
	created time.Time
	// unflushed counts value bytes answered since the last mid-pipeline
	// flush (see cmdGet).
	unflushed int
}

// Serve serves clients on l until Close; it returns ErrServerClosed then
// (and at once if Close came first). Serve takes l over and closes it.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed || s.serving {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.ln, s.serving = l, true
	s.mu.Unlock()
	defer close(s.served)
	s.cfg.Logger.Info("RESP listening", "addr", l.Addr().String())
	gl := &guardListener{Listener: l, lim: s.cfg.limits(), release: s.release, onErr: func(err error) {
		s.cfg.Logger.Warn("RESP accept failed", "err", err)
	}}
	srv := redcon.NewServerNetwork(l.Addr().Network(), l.Addr().String(), s.handle, s.accept, s.closedConn)
	if err := srv.Serve(gl); err != nil {
		return fmt.Errorf("resp: %w", err)
	}
	return ErrServerClosed
}

// Addr is the listener's address (nil before Serve).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the server: it stops accepting, lets the commands already
// running finish (until ctx ends; new commands on open connections are
// refused meanwhile), then closes every connection, cuts whatever still
// runs short and waits for the connections' goroutines. A cancelled ctx
// stops at once (a node being killed). Idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ln, serving := s.ln, s.serving
	s.mu.Unlock()
	s.draining.Store(true)
	var err error
	if ln != nil {
		err = ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	for s.active.Load() > 0 && ctx.Err() == nil {
		select {
		case <-s.idle:
		case <-ctx.Done():
		}
	}
	// Connections are cut first (redcon closes them all when Accept
	// fails), then whatever still runs is cancelled: a stop never
	// answers a command it cut short.
	close(s.release)
	if serving {
		<-s.served
	}
	s.cancel()
	s.conns.Wait()
	return err
}

// accept admits a connection (redcon calls it before the connection's
// goroutine starts).
func (s *Server) accept(conn redcon.Conn) bool {
	if s.clients.Load() >= int64(s.cfg.MaxClients) {
		conn.WriteError("ERR max number of clients reached")
		s.m.rejected.Inc()
		return false
	}
	s.conns.Add(1)
	s.clients.Add(1)
	s.total.Add(1)
	s.m.conns.Inc()
	s.m.connsTotal.Inc()
	conn.SetContext(&client{id: s.nextID.Add(1), created: time.Now()})
	return true
}

// closedConn runs when a connection's goroutine ends.
func (s *Server) closedConn(conn redcon.Conn, err error) {
	if err != nil {
		var pe *errProtocol
		if errors.As(err, &pe) {
			s.m.protocolErrors.Inc()
			s.cfg.Logger.Debug("RESP protocol error", "remote", conn.RemoteAddr(), "err", err)
		}
	}
	s.clients.Add(-1)
	s.m.conns.Dec()
	s.conns.Done()
}

// waitOrRelease waits a little before an accept is retried; true if the
// server is stopping.
func waitOrRelease(release <-chan struct{}) bool {
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-release:
		return true
	case <-t.C:
		return false
	}
}
