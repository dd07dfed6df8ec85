package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvdb/kvdb/internal/hops"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/store"
)

// This file is the dialing side of the replication stream: StreamPeer, a
// replication.Peer that keeps one persistent connection to its peer (an
// HTTP/1.1 upgrade on the peer's own port, as the election's raft stream)
// and multiplexes every call on it, with compact binary frames
// (stream_frame.go) in place of an HTTP round trip per message.
//
// Calls are pipelined: each gets an ID, its answer may come in any order,
// a caller that gives up (its context ends) sends a cancel frame and
// leaves, and a broken connection fails every call in flight with an
// error that, like a broken HTTP connection's, leaves the outcome unknown
// (it wraps io.ErrUnexpectedEOF), so hints retry the update as today.
//
// The HTTP endpoints stay: while the stream is down (not yet connected,
// broken, or waiting to redial after a backoff) and for a peer that does
// not serve the stream (an older kvdb answers the upgrade 404 or 400),
// calls go over HTTP, and the snapshot of a catch-up always does — it is
// rare, large and already a binary stream there, and over a multiplexed
// connection it would need flow control of its own to keep memory bounded.
// Calls never wait for a dial: a background goroutine redials.

// ErrStreamBroken is the error of a call in flight on a stream connection
// that broke (or of one the node closed). Its outcome is unknown.
var ErrStreamBroken = errors.New("transport: replication stream broken")

// StreamConfig configures the replication stream of a node's peers.
type StreamConfig struct {
	// Dial opens the TCP connections (default: a net.Dialer with 30 s
	// keep-alives). Tests pass a fault-injecting dialer
	// (Faults.Dialer): a cut link fails the dial and breaks the open
	// connection at its next read or write.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Wrap, if set, wraps every call in an HTTP round trip through the
	// RoundTripper it returns before the call goes on the stream, so the
	// fault injectors of the HTTP transport (Faults.Wrap: cut links,
	// drops, delays per message; a paused node's gate) apply to each
	// message on the stream as they do to each HTTP request. Tests only:
	// it costs an http.Request per call.
	Wrap func(http.RoundTripper) http.RoundTripper
	// HandshakeTimeout bounds a dial and its upgrade handshake (default
	// 5 s).
	HandshakeTimeout time.Duration
	// MaxInFlight bounds the calls one connection carries at once
	// (default 1024); more wait for a slot (or their context).
	MaxInFlight int
	// MinBackoff and MaxBackoff bound the wait before redialing after a
	// failed dial or a broken connection: it starts at MinBackoff and
	// doubles per failure up to MaxBackoff, with jitter (defaults 50 ms
	// and 2 s). Calls go over HTTP meanwhile.
	MinBackoff, MaxBackoff time.Duration
	// UnsupportedBackoff is the wait before asking again a peer that does
	// not serve the stream (default 1 min).
	UnsupportedBackoff time.Duration
	// Metrics, if set, counts the calls by path, the connections and the
	// breaks (NewStreamMetrics; shared by a node's peers).
	Metrics *StreamMetrics
	// Logger receives connection events (default: discard).
	Logger *slog.Logger
}

// SetDefaults fills zero fields.
func (c *StreamConfig) SetDefaults() {
	if c.Dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		c.Dial = d.DialContext
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 1024
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 50 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 2 * time.Second
	}
	if c.UnsupportedBackoff == 0 {
		c.UnsupportedBackoff = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports invalid settings.
func (c *StreamConfig) Validate() error {
	var errs []error
	if c.HandshakeTimeout < 0 {
		errs = append(errs, errors.New("handshake timeout must not be negative"))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in flight %d must be at least 1", c.MaxInFlight))
	}
	if c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff || c.UnsupportedBackoff < 0 {
		errs = append(errs, fmt.Errorf("backoffs: want 0 <= min (%v) <= max (%v), unsupported (%v) >= 0", c.MinBackoff, c.MaxBackoff, c.UnsupportedBackoff))
	}
	return errors.Join(errs...)
}

// StreamPeer implements replication.Peer over a replication stream, with
// an HTTPPeer for the snapshot and as the fallback. Close it when the node
// stops.
type StreamPeer struct {
	http     *HTTPPeer
	cfg      StreamConfig
	hostport string
	path     string
	rt       http.RoundTripper // Wrap's, nil without it
	req      *http.Request     // template of Wrap's requests
	max      int64

	mu      sync.Mutex
	conn    *streamConn // nil while down
	dialing bool
	next    time.Time // no dial before
	backoff time.Duration
	closed  bool
	ctx     context.Context // ends at Close (cuts a dial short)
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	dials atomic.Int64 // successful dials (tests)
	met   peerCounters
}

// NewStreamPeer returns a peer that talks to fallback's node over a
// replication stream (fallback carries what the stream does not, and
// everything while the stream is down; its token, limits and hop recorder
// are the stream's too).
func NewStreamPeer(fallback *HTTPPeer, cfg StreamConfig) (*StreamPeer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("transport: stream config: %w", err)
	}
	hostport, path, err := raftTarget(fallback.base)
	if err != nil {
		return nil, fmt.Errorf("transport: stream to %s: %w", fallback.id, err)
	}
	path = strings.TrimSuffix(path, PathRaft) + PathStream
	if strings.ContainsAny(fallback.token, "\r\n\x00") {
		return nil, errors.New("transport: stream: the token contains a control character")
	}
	p := &StreamPeer{http: fallback, cfg: cfg, hostport: hostport, path: path, max: maxFrameLen(fallback.limits),
		met: cfg.Metrics.forPeer(fallback.id)}
	if cfg.Wrap != nil {
		u, err := url.Parse(fallback.base + PathStream)
		if err != nil {
			return nil, fmt.Errorf("transport: stream to %s: %w", fallback.id, err)
		}
		p.rt = cfg.Wrap(streamRT{header: http.Header{}})
		p.req = &http.Request{Method: http.MethodPost, URL: u, Host: u.Host, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: http.NoBody}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

// ID returns the peer's member ID.
func (p *StreamPeer) ID() string { return p.http.id }

// Connected reports whether the stream is up now.
func (p *StreamPeer) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn != nil
}

// Dials is the number of stream connections opened so far.
func (p *StreamPeer) Dials() int64 { return p.dials.Load() }

// Close closes the stream (failing the calls in flight with
// ErrStreamBroken) and stops redialing; later calls go over HTTP. It is
// idempotent.
func (p *StreamPeer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	c := p.conn
	p.conn = nil
	p.mu.Unlock()
	if c != nil {
		c.fail(errors.New("the node closed its peer transport"))
	}
	p.wg.Wait()
	return nil
}

// current returns the live connection, or nil (then the call goes over
// HTTP) after starting a dial if none is running and the backoff allows.
func (p *StreamPeer) current() *streamConn {
	p.mu.Lock()
	c := p.conn
	if c == nil && !p.closed && !p.dialing && !time.Now().Before(p.next) {
		p.dialing = true
		p.wg.Add(1)
		go p.dial()
	}
	p.mu.Unlock()
	if c == nil {
		p.met.http.Inc()
	} else {
		p.met.stream.Inc()
	}
	return c
}

// dial opens a connection in the background.
func (p *StreamPeer) dial() {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.HandshakeTimeout)
	c, err := p.connect(ctx)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dialing = false
	if p.closed {
		if c != nil {
			p.mu.Unlock() // fail takes it
			c.fail(errors.New("the node closed its peer transport"))
			p.mu.Lock()
		}
		return
	}
	if err != nil {
		wait := p.nextBackoff()
		if errors.Is(err, errStreamUnsupported) {
			wait = p.cfg.UnsupportedBackoff
		}
		p.next = time.Now().Add(wait)
		p.cfg.Logger.Debug("replication stream: dial failed; HTTP meanwhile", "peer", p.ID(), "retry_in", wait, "err", err)
		return
	}
	p.dials.Add(1)
	p.met.dials.Inc()
	p.backoff = 0 // a break after this one waits the shortest backoff again
	p.conn = c
	p.cfg.Logger.Debug("replication stream: connected", "peer", p.ID())
}

// nextBackoff returns the wait before the next dial and doubles it; p.mu
// held.
func (p *StreamPeer) nextBackoff() time.Duration {
	if p.backoff < p.cfg.MinBackoff {
		p.backoff = p.cfg.MinBackoff
	}
	d := p.backoff
	p.backoff = min(2*p.backoff, p.cfg.MaxBackoff)
	// Jitter: between half and all of d, so peers do not redial in step.
	if d > 1 {
		d = d/2 + rand.N(d/2+1)
	}
	return d
}

// broken takes c out of service after it broke: the next call redials,
// after a backoff.
func (p *StreamPeer) broken(c *streamConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == c {
		p.conn = nil
		p.next = time.Now().Add(p.nextBackoff())
		if !p.closed {
			p.met.breaks.Inc()
			p.cfg.Logger.Debug("replication stream: connection broken; HTTP until it is redialled", "peer", p.ID(), "err", c.err)
		}
	}
}

// errNotSent is a call that failed before its frame was queued for the
// connection (it broke first): the peer certainly did not get it, so the
// call is made over HTTP instead, as net/http retries a request on a
// reused connection that turns out closed before anything was written.
var errNotSent = errors.New("the stream broke before the call was sent")

// errStreamUnsupported is a peer that does not serve the stream.
var errStreamUnsupported = errors.New("the peer does not serve the replication stream")

// connect dials and upgrades.
func (p *StreamPeer) connect(ctx context.Context) (*streamConn, error) {
	nc, err := p.cfg.Dial(ctx, "tcp", p.hostport)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	br, err := p.handshake(nc, deadline)
	if !stop() || err != nil {
		nc.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	c := &streamConn{
		p: p, nc: nc, br: br,
		sendq:   make(chan []byte, 256),
		pending: map[uint32]*streamCall{},
		slots:   make(chan struct{}, p.cfg.MaxInFlight),
		done:    make(chan struct{}),
	}
	p.wg.Add(2)
	go c.writeLoop()
	go c.readLoop()
	return c, nil
}

// handshake sends the upgrade request and reads its answer.
func (p *StreamPeer) handshake(nc net.Conn, deadline time.Time) (*bufio.Reader, error) {
	if err := nc.SetDeadline(deadline); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: %s\r\n", p.path, p.hostport, StreamProtocol)
	if p.http.token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", p.http.token)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, fmt.Errorf("reading the upgrade answer: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		se := statusError(resp.StatusCode, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusBadRequest:
			return nil, fmt.Errorf("%w: %w", errStreamUnsupported, se)
		}
		return nil, fmt.Errorf("upgrade refused: %w", se)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), StreamProtocol) {
		return nil, fmt.Errorf("%w: upgrade answered with protocol %q", errStreamUnsupported, resp.Header.Get("Upgrade"))
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return br, nil
}

// Replicate sends u.
func (p *StreamPeer) Replicate(ctx context.Context, u replication.Update) error {
	c := p.current()
	if c == nil {
		return p.http.Replicate(ctx, u)
	}
	err := p.sendUpdates(ctx, c, frameReplicate, []replication.Update{u})
	if errors.Is(err, errNotSent) {
		return p.http.Replicate(ctx, u)
	}
	return err
}

// ReplicateBatch sends several updates in one message.
func (p *StreamPeer) ReplicateBatch(ctx context.Context, us []replication.Update) error {
	c := p.current()
	if c == nil {
		return p.http.ReplicateBatch(ctx, us)
	}
	err := p.sendUpdates(ctx, c, frameBatch, us)
	if errors.Is(err, errNotSent) {
		return p.http.ReplicateBatch(ctx, us)
	}
	return err
}

func (p *StreamPeer) sendUpdates(ctx context.Context, c *streamConn, typ byte, us []replication.Update) error {
	sent := time.Now()
	f := AppendUpdates(newFrame(typ, EncodedLen(us)), us)
	typ, body, err := p.call(ctx, c, f)
	if err != nil {
		return err
	}
	if typ != frameOK {
		return c.protocolError(fmt.Errorf("%w: answer type %#x to an update", ErrFrame, typ))
	}
	ns, err := parseOK(body)
	if err != nil {
		return c.protocolError(err)
	}
	p.recordHop(hops.Write, hops.Ack, sent, ns)
	return nil
}

// Read asks the peer for its copy of key.
func (p *StreamPeer) Read(ctx context.Context, key string) (store.Entry, bool, error) {
	c := p.current()
	if c == nil {
		return p.http.Read(ctx, key)
	}
	sent := time.Now()
	f := append(newFrame(frameRead, len(key)), key...)
	typ, body, err := p.call(ctx, c, f)
	if errors.Is(err, errNotSent) {
		return p.http.Read(ctx, key)
	}
	if err != nil {
		return store.Entry{}, false, err
	}
	if typ != frameEntry {
		return store.Entry{}, false, c.protocolError(fmt.Errorf("%w: answer type %#x to a read", ErrFrame, typ))
	}
	ns, e, found, err := parseEntry(body, p.http.limits)
	if err != nil {
		return store.Entry{}, false, c.protocolError(err)
	}
	p.recordHop(hops.Read, hops.Response, sent, ns)
	return e, found, nil
}

// SetQuorum changes the peer's W and R.
func (p *StreamPeer) SetQuorum(ctx context.Context, w, r int) error {
	c := p.current()
	if c == nil || w < 0 || r < 0 {
		return p.http.SetQuorum(ctx, w, r)
	}
	err := p.simple(ctx, c, appendQuorum(newFrame(frameQuorum, 2*binary.MaxVarintLen16), w, r))
	if errors.Is(err, errNotSent) {
		return p.http.SetQuorum(ctx, w, r)
	}
	return err
}

// Probe asks the peer whether it serves (an error matching
// replication.ErrNotReady while it catches up).
func (p *StreamPeer) Probe(ctx context.Context) error {
	c := p.current()
	if c == nil {
		return p.http.Probe(ctx)
	}
	err := p.simple(ctx, c, newFrame(frameProbe, 0))
	if errors.Is(err, errNotSent) {
		return p.http.Probe(ctx)
	}
	return err
}

func (p *StreamPeer) simple(ctx context.Context, c *streamConn, f []byte) error {
	typ, _, err := p.call(ctx, c, f)
	if err != nil {
		return err
	}
	if typ != frameOK {
		return c.protocolError(fmt.Errorf("%w: answer type %#x", ErrFrame, typ))
	}
	return nil
}

// Snapshot streams the peer's entries over HTTP (see the file comment).
func (p *StreamPeer) Snapshot(ctx context.Context, term uint64, fn func(replication.Update) error) error {
	return p.http.Snapshot(ctx, term, fn)
}

// recordHop splits a call's round trip at the replica's stamp.
func (p *StreamPeer) recordHop(out, back hops.Kind, sent time.Time, ns int64) {
	if p.http.hops == nil || ns == 0 {
		return
	}
	p.http.hops.Split(out, back, sent, time.Unix(0, ns), time.Now())
}

// call sends frame f (built on newFrame) on c and waits for its answer:
// the answer's type and body (an error answer becomes a *StatusError, as
// over HTTP). With Wrap set, the call runs inside a round trip through the
// wrapped RoundTripper, so its faults apply.
func (p *StreamPeer) call(ctx context.Context, c *streamConn, f []byte) (byte, []byte, error) {
	if p.rt == nil {
		return c.call(ctx, f)
	}
	sc := &wrappedCall{c: c, f: f}
	// The template's URL and (empty) header are shared: the wrappers read
	// requests, they do not change them.
	req := p.req.WithContext(context.WithValue(ctx, wrappedCallKey{}, sc))
	resp, err := p.rt.RoundTrip(req)
	if err != nil {
		return 0, nil, err
	}
	resp.Body.Close()
	return sc.typ, sc.body, sc.err
}

// wrappedCall is a stream call travelling through Wrap's RoundTripper.
type wrappedCall struct {
	c    *streamConn
	f    []byte
	typ  byte
	body []byte
	err  error
}

type wrappedCallKey struct{}

// streamRT is the innermost RoundTripper under Wrap: it makes the stream
// call its request carries. The call's own error (a peer's error answer
// included) is the round trip's, so wrappers see failures as they would
// over HTTP.
type streamRT struct {
	header http.Header // of every answer: empty, shared, never written
}

func (rt streamRT) RoundTrip(req *http.Request) (*http.Response, error) {
	sc, ok := req.Context().Value(wrappedCallKey{}).(*wrappedCall)
	if !ok {
		return nil, errors.New("transport: stream round trip without a call")
	}
	sc.typ, sc.body, sc.err = sc.c.call(req.Context(), sc.f)
	if sc.err != nil {
		return nil, sc.err
	}
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rt.header, Body: http.NoBody, Request: req}, nil
}

// streamConn is one connection: a writer goroutine sends queued frames,
// batching whatever is queued into one write, and a reader goroutine
// hands each answer to its waiting call.
type streamConn struct {
	p     *StreamPeer
	nc    net.Conn
	br    *bufio.Reader
	sendq chan []byte
	slots chan struct{} // in-flight bound

	mu      sync.Mutex
	pending map[uint32]*streamCall
	nextID  uint32
	err     error         // why it broke; set once
	done    chan struct{} // closed when it broke

	lastRead atomic.Int64 // Unix nanoseconds of the last answer read
}

// stallAfter is how long a call must have waited, with nothing at all
// read from its connection since it was sent, before the connection counts
// as dead (a peer that vanished without closing it: a black-holed network,
// a frozen host) and is closed, so calls go over HTTP until a redial
// succeeds. Below it a short deadline says nothing about the connection.
const stallAfter = time.Second

// streamCall is a call waiting for its answer.
type streamCall struct {
	ch chan streamAnswer // buffered: the reader never blocks on it
}

type streamAnswer struct {
	typ  byte
	body []byte
}

var callPool = sync.Pool{New: func() any { return &streamCall{ch: make(chan streamAnswer, 1)} }}

// call sends f and waits for its answer (see StreamPeer.call).
func (c *streamConn) call(ctx context.Context, f []byte) (byte, []byte, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, nil, c.ctxErr(ctx)
	case <-c.done:
		return 0, nil, errNotSent
	}
	defer func() { <-c.slots }()
	cl := callPool.Get().(*streamCall)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		callPool.Put(cl)
		return 0, nil, errNotSent
	}
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	id := c.nextID
	c.pending[id] = cl
	c.mu.Unlock()
	finishFrame(f, id)
	sent := time.Now()
	select {
	case c.sendq <- f:
	case <-ctx.Done():
		c.abandon(id, cl, false)
		return 0, nil, c.ctxErr(ctx)
	case <-c.done:
		return 0, nil, errNotSent
	}
	select {
	case a := <-cl.ch:
		callPool.Put(cl)
		if a.typ == frameError {
			se, err := parseError(a.body)
			if err != nil {
				return 0, nil, c.protocolError(err)
			}
			return 0, nil, se
		}
		return a.typ, a.body, nil
	case <-ctx.Done():
		c.abandon(id, cl, true)
		if now := time.Now(); now.Sub(sent) >= stallAfter && c.lastRead.Load() < sent.UnixNano() {
			c.fail(fmt.Errorf("no answer to anything for %v", now.Sub(sent).Round(time.Millisecond)))
		}
		return 0, nil, c.ctxErr(ctx)
	case <-c.done:
		return 0, nil, c.brokenErr()
	}
}

// abandon forgets a call whose caller gave up, telling the peer (if the
// request went out) so it can stop working on it.
func (c *streamConn) abandon(id uint32, cl *streamCall, sent bool) {
	c.mu.Lock()
	_, waiting := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if !waiting {
		// The answer arrived meanwhile: it sits in cl.ch, so cl cannot be
		// reused.
		return
	}
	callPool.Put(cl)
	if sent {
		select {
		case c.sendq <- finishFrame(newFrame(frameCancel, 0), id):
		default: // the queue is full: the answer will be dropped instead
		}
	}
}

func (c *streamConn) ctxErr(ctx context.Context) error {
	return fmt.Errorf("stream to %s: %w", c.p.ID(), ctx.Err())
}

func (c *streamConn) brokenErr() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	return fmt.Errorf("stream to %s: %w (%w): %w", c.p.ID(), ErrStreamBroken, io.ErrUnexpectedEOF, err)
}

// protocolError breaks the connection over an answer it cannot read and
// returns the call's error.
func (c *streamConn) protocolError(err error) error {
	c.fail(err)
	return fmt.Errorf("stream to %s: %w", c.p.ID(), err)
}

// fail breaks the connection: the calls in flight fail, the peer redials.
// The first cause is kept.
func (c *streamConn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	clear(c.pending)
	c.mu.Unlock()
	// Out of service before the calls in flight learn of it, so none of
	// their callers' next calls picks it again.
	c.p.broken(c)
	close(c.done)
	c.nc.Close()
}

// writeLoop sends queued frames until the connection breaks.
func (c *streamConn) writeLoop() {
	defer c.p.wg.Done()
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	for {
		var f []byte
		select {
		case f = <-c.sendq:
		case <-c.done:
			return
		}
		for {
			if _, err := bw.Write(f); err != nil {
				c.fail(fmt.Errorf("writing: %w", err))
				return
			}
			select {
			case f = <-c.sendq:
				continue
			default:
			}
			// Nothing queued: give the callers running now one chance to
			// queue theirs, so one write carries them all.
			runtime.Gosched()
			select {
			case f = <-c.sendq:
				continue
			default:
			}
			break
		}
		if err := bw.Flush(); err != nil {
			c.fail(fmt.Errorf("writing: %w", err))
			return
		}
	}
}

// readLoop hands answers to their calls until the connection breaks.
func (c *streamConn) readLoop() {
	defer c.p.wg.Done()
	for {
		fh, body, err := readFrame(c.br, nil, c.p.max)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.fail(fmt.Errorf("reading: %w", err))
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		if fh.typ&0x80 == 0 {
			c.fail(fmt.Errorf("%w: request type %d from the serving side", ErrFrame, fh.typ))
			return
		}
		c.mu.Lock()
		cl := c.pending[fh.id]
		delete(c.pending, fh.id)
		c.mu.Unlock()
		if cl != nil {
			cl.ch <- streamAnswer{typ: fh.typ, body: body}
		}
	}
}
