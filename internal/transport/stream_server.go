package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kvdb/kvdb/internal/errcode"
	"github.com/kvdb/kvdb/internal/replication"
)

// This file is the serving side of the replication stream: the upgrade
// handler, and per connection a reader that decodes requests and runs each
// in its own goroutine (a replica that sleeps before acknowledging, as the
// paper delay profile asks, holds up no other request), and a writer that
// sends their answers as they finish, batching whatever is ready into one
// write.

// StreamServerConfig configures a StreamServer.
type StreamServerConfig struct {
	// Limits bound the updates a request may carry: this node's key and
	// value limits (server.Config.PeerLimits). Required.
	Limits Limits
	// MaxInFlight bounds the requests one connection may have running at
	// once (default 1024); beyond it the server stops reading that
	// connection until one finishes.
	MaxInFlight int
	// HandshakeTimeout bounds writing the upgrade's answer (default 10s).
	HandshakeTimeout time.Duration
	// Logger receives connection errors (default: discard).
	Logger *slog.Logger
	// Inline runs updates and reads on the connection's reader instead of
	// a goroutine each. Set it only when the replica never blocks on them
	// (no apply or read delay, no fsync before an apply): then a goroutine,
	// a context and a cancel entry per request are pure cost, and the
	// requests of one connection run in their order anyway. Other requests
	// (quorum changes, probes) always get their own goroutine.
	Inline bool
}

// SetDefaults fills zero fields.
func (c *StreamServerConfig) SetDefaults() {
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 1024
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = defaultRaftHandshake
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports invalid settings.
func (c *StreamServerConfig) Validate() error {
	var errs []error
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in flight %d must be at least 1", c.MaxInFlight))
	}
	if c.HandshakeTimeout < 0 {
		errs = append(errs, errors.New("handshake timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// StreamServer serves replication streams: mount Handler at PathStream
// behind the node's authentication (cluster token, protected mode), as
// RaftStreams' handler is; it does not authenticate callers itself.
//
// The HTTP server does not track the connections it hands over, so the
// node closes them: Close lets the requests in progress finish (within its
// context), then closes every connection; Kill closes them at once. It is
// safe for concurrent use.
type StreamServer struct {
	cfg StreamServerConfig
	rep Replica
	max int64

	mu     sync.Mutex
	closed bool
	conns  map[*serverConn]struct{}
	wg     sync.WaitGroup // connections' goroutines
}

// NewStreamServer returns the serving side of the replication stream over
// rep (the node's replica side).
func NewStreamServer(cfg StreamServerConfig, rep Replica) (*StreamServer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("transport: stream server config: %w", err)
	}
	return &StreamServer{cfg: cfg, rep: rep, max: maxFrameLen(cfg.Limits), conns: map[*serverConn]struct{}{}}, nil
}

// Handler serves the upgrade. It answers 405 to methods other than GET,
// 400 to a request without "Upgrade: kvdb-stream/1" (a peer that speaks
// another version falls back to HTTP), 503 once the server is closed, and
// otherwise 101, after which the connection carries frames.
func (s *StreamServer) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *StreamServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	up := upgrade{protocol: StreamProtocol, what: "the replication stream", handshake: s.cfg.HandshakeTimeout}
	conn, buffered, ok := up.accept(w, r, s.isClosed())
	if !ok {
		return
	}
	// Bytes the HTTP server read past the request are the first frames.
	var src io.Reader = conn
	if buffered != nil {
		early, _ := buffered.Peek(buffered.Buffered())
		src = io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &serverConn{
		s: s, nc: conn, br: bufio.NewReaderSize(src, 64<<10), ctx: ctx, cancel: cancel,
		out: make(chan []byte, 256), sem: make(chan struct{}, s.cfg.MaxInFlight),
		running: map[uint32]context.CancelFunc{}, writerDone: make(chan struct{}), finished: make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		conn.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(2)
	s.mu.Unlock()
	go c.writeLoop()
	go c.readLoop()
}

func (s *StreamServer) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close refuses new streams, stops reading requests, lets those in
// progress answer (until ctx ends; then it cuts them) and closes every
// connection. It is idempotent.
func (s *StreamServer) Close(ctx context.Context) error {
	conns := s.shut()
	for _, c := range conns {
		c.drain()
	}
	var err error
	for _, c := range conns {
		select {
		case <-c.finished:
		case <-ctx.Done():
			err = ctx.Err()
			c.close()
		}
	}
	if err != nil {
		s.wg.Wait()
	}
	return err
}

// shut marks the server closed and returns its connections.
func (s *StreamServer) shut() []*serverConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Kill closes every connection at once, cancelling the requests in
// progress, as a crash would look to the peers.
func (s *StreamServer) Kill() {
	for _, c := range s.shut() {
		c.close()
	}
}

// serverConn is one upgraded connection.
type serverConn struct {
	s      *StreamServer
	nc     net.Conn
	br     *bufio.Reader
	ctx    context.Context // ends when the connection closes
	cancel context.CancelFunc
	out    chan []byte // answers for the writer
	sem    chan struct{}

	mu       sync.Mutex
	running  map[uint32]context.CancelFunc // requests in progress, by ID
	reqs     sync.WaitGroup
	draining bool

	closeOnce  sync.Once
	writerDone chan struct{} // the writer has sent everything and stopped
	finished   chan struct{} // the connection is closed, its goroutines done
}

// drain stops the reader taking new requests: it closes the read side so
// the reader's blocked read returns.
func (c *serverConn) drain() {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	_ = c.nc.SetReadDeadline(time.Now())
}

// close closes the connection and cancels its requests. Idempotent.
func (c *serverConn) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.nc.Close()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
}

// finish runs when the reader stops: the requests in progress answer (if
// the connection still works), the writer sends their answers, and the
// connection closes.
func (c *serverConn) finish() {
	c.reqs.Wait()
	close(c.out) // no request runs: nothing sends any more
	<-c.writerDone
	c.close()
	close(c.finished)
}

// readLoop reads requests until the connection fails or drains, starting
// each in its own goroutine.
func (c *serverConn) readLoop() {
	defer c.s.wg.Done()
	defer c.finish()
	var buf []byte
	for {
		fh, body, err := readFrame(c.br, buf, c.s.max)
		if tooLarge, ok := errors.AsType[*frameTooLargeError](err); ok {
			// Skip the body and refuse the request as the HTTP endpoints
			// refuse an oversized body (413): a permanent refusal of that
			// message, not a broken stream.
			if _, err = io.CopyN(io.Discard, c.br, int64(tooLarge.h.n)); err == nil {
				fh, body, err = tooLarge.h, nil, tooLarge
			}
		}
		if err != nil && !errors.Is(err, errFrameTooLarge) {
			c.mu.Lock()
			draining := c.draining
			c.mu.Unlock()
			if !draining && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && c.ctx.Err() == nil {
				c.s.cfg.Logger.Debug("replication stream: reading a request failed; closing the connection", "peer", c.nc.RemoteAddr().String(), "err", err)
			}
			return
		}
		buf = body[:0]
		if fh.typ == frameCancel {
			c.mu.Lock()
			if cancel := c.running[fh.id]; cancel != nil {
				cancel()
			}
			c.mu.Unlock()
			continue
		}
		var req request
		if err == nil {
			req, err = c.decode(fh, body)
		}
		if err == nil && c.s.cfg.Inline && inlineType(fh.typ) {
			ans, err := c.run(c.ctx, fh.typ, req)
			if !c.answer(c.ctx, fh, ans, err) {
				return
			}
			continue
		}
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		rctx, cancel := context.WithCancel(c.ctx)
		c.mu.Lock()
		c.running[fh.id] = cancel
		c.mu.Unlock()
		c.reqs.Add(1)
		go c.handle(rctx, cancel, fh, req, err)
	}
}

// request is a decoded request.
type request struct {
	us   []replication.Update
	key  string
	w, r int
}

// decode decodes a request's body (the reader's buffer, reused after it
// returns: everything is copied out).
func (c *serverConn) decode(fh frameHeader, body []byte) (request, error) {
	var req request
	switch fh.typ {
	case frameReplicate, frameBatch:
		us, err := DecodeUpdates(body, c.s.cfg.Limits)
		if err != nil {
			return req, err
		}
		if fh.typ == frameReplicate && len(us) != 1 {
			return req, fmt.Errorf("%w: replicate carries one update, got %d", errStreamBadRequest, len(us))
		}
		for i, u := range us {
			switch {
			case u.Key == "" || u.Version == 0:
				return req, fmt.Errorf("%w: update %d: every update needs a key and a version", errStreamBadRequest, i+1)
			case !utf8.ValidString(u.Key) || !utf8.ValidString(u.Value):
				return req, fmt.Errorf("%w: update %d: keys and values must be valid UTF-8", errStreamBadRequest, i+1)
			}
		}
		req.us = us
	case frameRead:
		if len(body) > c.s.cfg.Limits.MaxKeyBytes {
			return req, fmt.Errorf("%w: key of %d bytes, limit %d", ErrTooLarge, len(body), c.s.cfg.Limits.MaxKeyBytes)
		}
		req.key = string(body)
	case frameQuorum:
		w, r, err := parseQuorum(body)
		if err != nil {
			return req, err
		}
		req.w, req.r = w, r
	case frameProbe:
		if len(body) != 0 {
			return req, fmt.Errorf("%w: a probe has no body", errStreamBadRequest)
		}
	default:
		return req, fmt.Errorf("%w: unknown request type %d", errStreamBadRequest, fh.typ)
	}
	return req, nil
}

// errStreamBadRequest is a request the server refuses as the HTTP
// endpoints' 400 bad_request would.
var errStreamBadRequest = errors.New("bad request")

// handle runs one request and queues its answer. A request whose context
// ended (the caller cancelled it, or the connection is closing) is not
// answered: its caller has stopped waiting.
func (c *serverConn) handle(ctx context.Context, cancel context.CancelFunc, fh frameHeader, req request, err error) {
	defer func() {
		c.mu.Lock()
		delete(c.running, fh.id)
		c.mu.Unlock()
		cancel()
		<-c.sem
		c.reqs.Done()
	}()
	var ans []byte
	if err == nil {
		ans, err = c.run(ctx, fh.typ, req)
	}
	c.answer(ctx, fh, ans, err)
}

// inlineType reports whether requests of type typ may run on the reader
// (StreamServerConfig.Inline).
func inlineType(typ byte) bool {
	return typ == frameReplicate || typ == frameBatch || typ == frameRead
}

// answer queues the answer to fh (ans, or err as an error frame) unless
// ctx ended: its caller has stopped waiting. It reports false when the
// connection is closing.
func (c *serverConn) answer(ctx context.Context, fh frameHeader, ans []byte, err error) bool {
	if ctx.Err() != nil {
		return c.ctx.Err() == nil
	}
	if err != nil {
		status, code := streamStatus(err)
		ans = appendError(newFrame(frameError, 3+len(code)+min(len(err.Error()), maxErrorMessage)), status, code, err.Error())
	}
	select {
	case c.out <- finishFrame(ans, fh.id):
		return true
	case <-c.ctx.Done():
		return false
	}
}

// run executes a request on the replica and returns its answer frame
// (without its id).
func (c *serverConn) run(ctx context.Context, typ byte, req request) ([]byte, error) {
	rep := c.s.rep
	switch typ {
	case frameReplicate:
		if err := rep.ApplyReplica(ctx, req.us[0]); err != nil {
			return nil, err
		}
	case frameBatch:
		if err := rep.ApplyReplicas(ctx, req.us); err != nil {
			return nil, err
		}
	case frameRead:
		e, found, err := rep.ReadReplica(ctx, req.key)
		if err != nil {
			return nil, err
		}
		ns := time.Now().UnixNano()
		n := 9
		if found {
			n += EncodedLen([]replication.Update{entryUpdate(e)})
		}
		return appendEntry(newFrame(frameEntry, n), ns, e, found), nil
	case frameQuorum:
		if err := rep.SetQuorum(req.w, req.r); err != nil {
			return nil, err
		}
	case frameProbe:
		if !rep.Ready() {
			return nil, replication.ErrNotReady
		}
	}
	return appendStamp(newFrame(frameOK, 8), time.Now().UnixNano()), nil
}

// writeLoop writes answers as they come, flushing when none is waiting,
// until out is closed (or writing fails: then it closes the connection,
// which cancels the requests, and drops what comes).
func (c *serverConn) writeLoop() {
	defer c.s.wg.Done()
	defer close(c.writerDone)
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	failed := false
	for b := range c.out {
		if failed {
			continue
		}
		more := true
		for more {
			if _, err := bw.Write(b); err != nil {
				failed = true
				break
			}
			select {
			case b, more = <-c.out:
				continue
			default:
			}
			// Nothing queued: give the requests finishing now one
			// chance to queue their answers, so one write carries them.
			runtime.Gosched()
			select {
			case b, more = <-c.out:
			default:
				more = false
			}
		}
		if failed || bw.Flush() != nil {
			failed = true
			c.close()
		}
	}
}

// streamStatus maps a replica's error to the HTTP status and machine code
// the /internal/ endpoints answer it with (the stream's own framing errors,
// then errcode.Replication, which package server's classify uses too), so
// the caller builds the same StatusError from a stream answer as from an
// HTTP one.
func streamStatus(err error) (int, string) {
	switch {
	case errors.Is(err, errStreamBadRequest), errors.Is(err, ErrMalformed):
		return http.StatusBadRequest, errcode.BadRequest
	case errors.Is(err, ErrTooLarge), errors.Is(err, errFrameTooLarge):
		return http.StatusRequestEntityTooLarge, errcode.TooLarge
	}
	if status, code, ok := errcode.Replication(err); ok {
		return status, code
	}
	return http.StatusInternalServerError, errcode.Internal
}
