package transport

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// This file carries raft's traffic (hashicorp/raft's NetworkTransport) over
// the node's own HTTP listener, so a node needs no second port: the dialing
// side sends GET /internal/raft with "Connection: Upgrade" and
// "Upgrade: kvdb-raft", the serving side answers 101 Switching Protocols and
// both then hand the raw TCP connection to raft. The idea is the WebSocket
// handshake without WebSocket's framing: raft's own framing (msgpack over a
// byte stream) runs on the bare connection.

// Raft stream constants.
const (
	// PathRaft is the endpoint the raft stream layer upgrades.
	PathRaft = "/internal/raft"
	// RaftProtocol is the Upgrade token of the raft handshake.
	RaftProtocol = "kvdb-raft"
)

// defaultRaftHandshake bounds a handshake when raft dials without a
// timeout, and how long an upgraded connection waits to be accepted.
const defaultRaftHandshake = 10 * time.Second

// ErrRaftStreamsClosed is returned by Accept and Dial of a closed stream
// layer. It matches net.ErrClosed.
var ErrRaftStreamsClosed = fmt.Errorf("transport: raft stream layer closed: %w", net.ErrClosed)

// RaftStreams is a raft.StreamLayer over HTTP/1.1 Upgrade on the node's
// HTTP port. The serving half is Handler, which the node's HTTP server
// mounts at PathRaft behind its own authentication (cluster token,
// protected mode): the stream layer does not authenticate callers. The
// dialing half sends the cluster token, if any, as a bearer token.
//
// Close makes Accept fail, closes every connection the layer accepted or
// dialed that is still open (the HTTP server does not track hijacked
// connections, so its Shutdown does not close them) and makes later
// handshakes answer 503. It is safe for concurrent use.
type RaftStreams struct {
	addr          raftAddr
	token         string
	dial          func(ctx context.Context, network, address string) (net.Conn, error)
	acceptTimeout time.Duration

	accept chan net.Conn
	done   chan struct{}

	mu     sync.Mutex
	closed bool
	conns  map[*raftConn]struct{}
}

// RaftStreamsOption configures NewRaftStreams.
type RaftStreamsOption func(*RaftStreams)

// WithRaftDialer makes Dial open its TCP connections with dial instead of a
// net.Dialer (tests: fault injection, counting).
func WithRaftDialer(dial func(ctx context.Context, network, address string) (net.Conn, error)) RaftStreamsOption {
	return func(s *RaftStreams) { s.dial = dial }
}

// WithRaftAcceptTimeout bounds how long an upgraded connection waits for
// Accept before it is dropped (default 10 s).
func WithRaftAcceptTimeout(d time.Duration) RaftStreamsOption {
	return func(s *RaftStreams) { s.acceptTimeout = d }
}

// NewRaftStreams returns the stream layer of the node whose base URL is
// advertise ("http://host:port"): that is its raft address (Addr) and what
// its peers dial. token, if not empty, is sent as "Authorization: Bearer
// token" on every handshake.
func NewRaftStreams(advertise, token string, opts ...RaftStreamsOption) (*RaftStreams, error) {
	if _, _, err := raftTarget(advertise); err != nil {
		return nil, fmt.Errorf("transport: raft streams: advertise address: %w", err)
	}
	if strings.ContainsAny(token, "\r\n\x00") {
		return nil, errors.New("transport: raft streams: the token contains a control character")
	}
	s := &RaftStreams{
		addr:          raftAddr(advertise),
		token:         token,
		acceptTimeout: defaultRaftHandshake,
		accept:        make(chan net.Conn),
		done:          make(chan struct{}),
		conns:         map[*raftConn]struct{}{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.dial == nil {
		var d net.Dialer
		s.dial = d.DialContext
	}
	if s.acceptTimeout <= 0 {
		s.acceptTimeout = defaultRaftHandshake
	}
	return s, nil
}

// raftTarget parses a base URL into the TCP address to dial and the
// request path of the raft endpoint.
func raftTarget(base string) (hostport, path string, err error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", "", err
	}
	if u.Scheme != "http" {
		return "", "", fmt.Errorf("%q: want an http:// base URL", base)
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("%q: no host", base)
	}
	hostport = u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), "80")
	}
	return hostport, strings.TrimSuffix(u.EscapedPath(), "/") + PathRaft, nil
}

// Dial opens a raft connection to the node whose base URL is address: a
// TCP connection, then the upgrade handshake, all within timeout.
func (s *RaftStreams) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if s.isClosed() {
		return nil, ErrRaftStreamsClosed
	}
	hostport, path, err := raftTarget(string(address))
	if err != nil {
		return nil, fmt.Errorf("transport: raft dial: %w", err)
	}
	if timeout <= 0 {
		timeout = defaultRaftHandshake
	}
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	conn, err := s.dial(ctx, "tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("transport: raft dial %s: %w", address, err)
	}
	br, err := s.handshake(conn, hostport, path, deadline)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: raft dial %s: %w", address, err)
	}
	c := newRaftConn(s, conn, br)
	if !s.track(c) {
		return nil, ErrRaftStreamsClosed
	}
	return c, nil
}

// handshake sends the upgrade request on conn and reads the answer. It
// returns the reader the answer was read with when it holds bytes that
// followed the answer (nil otherwise).
func (s *RaftStreams) handshake(conn net.Conn, host, path string, deadline time.Time) (*bufio.Reader, error) {
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: %s\r\n", path, host, RaftProtocol)
	if s.token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", s.token)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, fmt.Errorf("reading the upgrade answer: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("upgrade refused: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), RaftProtocol) {
		return nil, fmt.Errorf("upgrade answered with protocol %q, want %q", resp.Header.Get("Upgrade"), RaftProtocol)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if br.Buffered() == 0 {
		return nil, nil
	}
	return br, nil
}

// Handler serves the upgrade: mount it at PathRaft behind the node's
// authentication. It answers 405 to methods other than GET, 400 to a
// request without "Upgrade: kvdb-raft", 503 once the layer is closed, and
// otherwise 101, after which the connection belongs to Accept.
func (s *RaftStreams) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *RaftStreams) serveHTTP(w http.ResponseWriter, r *http.Request) {
	up := upgrade{protocol: RaftProtocol, what: "the raft stream layer", handshake: s.acceptTimeout}
	// Raft sets its own deadlines once it has the connection.
	conn, br, ok := up.accept(w, r, s.isClosed())
	if !ok {
		return
	}
	c := newRaftConn(s, conn, br)
	if !s.track(c) {
		return
	}
	t := time.NewTimer(s.acceptTimeout)
	defer t.Stop()
	select {
	case s.accept <- c:
	case <-s.done:
		c.Close()
	case <-t.C:
		c.Close()
	}
}

// raftHTTPError writes kvdb's JSON error body.
func raftHTTPError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{msg, code})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// Accept waits for the next upgraded connection; after Close it returns an
// error matching net.ErrClosed.
func (s *RaftStreams) Accept() (net.Conn, error) {
	select {
	case c := <-s.accept:
		return c, nil
	case <-s.done:
		return nil, ErrRaftStreamsClosed
	}
}

// Close closes the layer and every connection it handed out. It is
// idempotent.
func (s *RaftStreams) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	conns := make([]*raftConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// Addr is the node's advertised base URL.
func (s *RaftStreams) Addr() net.Addr { return s.addr }

func (s *RaftStreams) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track records c as handed out; if the layer is closed it closes c and
// reports false.
func (s *RaftStreams) track(c *raftConn) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Conn.Close()
		return false
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return true
}

func (s *RaftStreams) forget(c *raftConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// raftAddr is a base URL as a net.Addr.
type raftAddr string

func (a raftAddr) Network() string { return RaftProtocol }
func (a raftAddr) String() string  { return string(a) }

// raftConn is an upgraded connection: it first returns the bytes the
// handshake's reader had already buffered, and leaves its layer's list when
// closed.
type raftConn struct {
	net.Conn
	s    *RaftStreams
	once sync.Once

	rmu sync.Mutex
	br  *bufio.Reader // nil once drained
}

func newRaftConn(s *RaftStreams, conn net.Conn, br *bufio.Reader) *raftConn {
	return &raftConn{Conn: conn, s: s, br: br}
}

func (c *raftConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	br := c.br
	if br != nil && br.Buffered() == 0 {
		c.br, br = nil, nil
	}
	c.rmu.Unlock()
	if br != nil {
		// With bytes buffered, a bufio.Reader returns only those: it does
		// not read the connection.
		return br.Read(p[:min(len(p), br.Buffered())])
	}
	return c.Conn.Read(p)
}

func (c *raftConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = c.Conn.Close()
		c.s.forget(c)
	})
	return err
}
