// Package client is the Go client of kvdb's HTTP API (POST /set, GET /get,
// GET /local_read, GET /health, GET and PUT /config), as etcd's clientv3 and
// rqlite's gorqlite are for theirs.
//
//	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:8001"}})
//	res, err := c.Set(ctx, "k", "v", client.WithW(3))
//	got, err := c.Get(ctx, "k", client.At("http://127.0.0.1:8003"))
//	if errors.Is(err, client.ErrNotFound) { ... }
//
// A call goes to the node named with At, else to the endpoint in use (see
// Config.Endpoints). A follower answers a write with 307 to the leader; Set
// and SetConfig send it there (Config.MaxRedirects). No other call follows
// a redirect. Failed attempts are retried as RetryPolicy documents.
//
// Every answer other than the call's success is an *Error carrying the
// HTTP status, the server's stable machine code and, where the server sends
// them, the quorum counts; errors.Is matches it against the sentinel errors
// (ErrNotFound, ErrQuorum, ...) by code, never by text. A failure with no
// answer (refused, timeout, reset) is returned as net/http reports it.
//
// A Client is safe for concurrent use; make one and share it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvdb/kvdb/internal/jsonstr"

	"github.com/kvdb/kvdb/internal/ctxtime"
)

// maxResponse caps how much of an answer is read (a 1 MiB value can take
// up to 6 MiB as a JSON string).
const maxResponse = 16 << 20

// Client talks to a kvdb cluster.
type Client struct {
	cfg Config
	hc  *http.Client
	cur atomic.Uint32 // index into cfg.Endpoints of the endpoint in use
}

// New returns a client for cfg after filling its defaults and validating
// it. It does not contact any node.
func New(cfg Config) (*Client, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kvdb client config: %w", err)
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 0 // no overall cap; per host below
		tr.MaxIdleConnsPerHost = cfg.MaxIdleConnsPerHost
		hc.Transport = tr
		hc.Timeout = max(cfg.Timeout, 0)
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{cfg: cfg, hc: &hc}, nil
}

// Close closes the client's idle connections. The client stays usable.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Endpoints returns the configured endpoints.
func (c *Client) Endpoints() []string { return append([]string(nil), c.cfg.Endpoints...) }

// Option adjusts one call.
type Option func(*callOpts)

type callOpts struct {
	endpoint  string
	w, r      int
	redirects int
	attempts  int
}

// At sends the call to the node at this base URL (e.g.
// "http://127.0.0.1:8003"), which need not be one of Config.Endpoints;
// retries stay on it. A load generator names each request's node so.
func At(endpoint string) Option {
	endpoint = strings.TrimRight(endpoint, "/")
	return func(o *callOpts) { o.endpoint = endpoint }
}

// WithW overrides W for one Set (?w=).
func WithW(w int) Option { return func(o *callOpts) { o.w = w } }

// WithR overrides R for one Get (?r=).
func WithR(r int) Option { return func(o *callOpts) { o.r = r } }

// NoRedirect makes a Set return a follower's 307 as an *Error (Code
// CodeNotLeader, Location) instead of following it.
func NoRedirect() Option { return func(o *callOpts) { o.redirects = -1 } }

// Attempts overrides RetryPolicy.MaxAttempts for one call (1: no retry).
func Attempts(n int) Option { return func(o *callOpts) { o.attempts = max(n, 1) } }

func (c *Client) opts(opts []Option) callOpts {
	o := callOpts{redirects: c.cfg.MaxRedirects, attempts: c.cfg.Retry.MaxAttempts}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// SetResult is the answer to a Set (201).
type SetResult struct {
	Key     string `json:"key"`
	Version uint64 `json:"version"`
	// Node is the id of the node that coordinated the write (the leader in
	// leader-follower mode).
	Node string `json:"node"`
	// Coordinator repeats Node in leaderless mode; "" otherwise.
	Coordinator string `json:"coordinator,omitempty"`
	// Acks is how many copies acknowledged, W how many were required.
	Acks int `json:"acks"`
	W    int `json:"w"`
	// Endpoint is the base URL that answered (the leader's after a
	// redirect).
	Endpoint string `json:"-"`
}

// GetResult is the answer to a Get or LocalRead (200).
type GetResult struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
	// Node is the id of the node that served the read.
	Node string `json:"node"`
	// Endpoint is the base URL that answered.
	Endpoint string `json:"-"`
}

// Health is a node's GET /health document.
type Health struct {
	Status string `json:"status"` // "ok", or "catching-up" with a 503
	Node   string `json:"node"`
	Mode   string `json:"mode"`
	Role   string `json:"role"`
	Leader string `json:"leader,omitempty"`
	// Term is the election term (leader-follower).
	Term uint64 `json:"term,omitempty"`
	// LeaderCatchingUp: this node was just elected and copies the state it
	// needs before it accepts writes.
	LeaderCatchingUp bool `json:"leader_catching_up,omitempty"`
	// PossibleLoss, if set, says this node's last catch-up as a new leader
	// could not reach enough nodes: writes acknowledged before that
	// election may have been lost.
	PossibleLoss string `json:"possible_loss,omitempty"`
	W            int    `json:"w"`
	R            int    `json:"r"`
	N            int    `json:"n"`
	Delays       string `json:"delays"`
	// DelayProfile is the node's delay profile as it sent it.
	DelayProfile json.RawMessage `json:"delay_profile,omitempty"`
	Keys         int             `json:"keys"`
	// Tombstones is the number of deleted keys not yet collected.
	Tombstones int `json:"tombstones"`
	Pending    int `json:"pending_replication"`
	Hints      int `json:"hints"`
	// Raw is the whole document; Endpoint the base URL that answered.
	Raw      json.RawMessage `json:"-"`
	Endpoint string          `json:"-"`
}

// ConfigResult is the answer to Config and SetConfig.
type ConfigResult struct {
	W    int    `json:"w"`
	R    int    `json:"r"`
	N    int    `json:"n"`
	Mode string `json:"mode"`
	// Updated lists the nodes that confirmed a SetConfig (leaderless).
	Updated []string `json:"updated,omitempty"`
	// LogIndex is the election log index that carries a SetConfig
	// (leader-follower): committed, so every node applies it (followers
	// within a heartbeat) and it survives failover.
	LogIndex uint64 `json:"log_index,omitempty"`
	// Endpoint is the base URL that answered.
	Endpoint string `json:"-"`
}

// request is one API call.
type request struct {
	method string
	path   string // escaped path and query, e.g. "/get/a%20b?r=3"
	body   []byte
	auth   bool // send the token
	safe   bool // repeating it changes nothing (retry policy)
	write  bool // a Set or Delete (retry policy: RetryUnknownWrites)
	follow bool // may follow a 307
}

// Set writes key=value. It returns after the node acknowledged W copies
// (201). Options: WithW, At, NoRedirect, Attempts.
func (c *Client) Set(ctx context.Context, key, value string, opts ...Option) (SetResult, error) {
	o := c.opts(opts)
	body := make([]byte, 0, len(key)+len(value)+24)
	body = append(body, `{"key":`...)
	body = appendJSONString(body, key)
	body = append(body, `,"value":`...)
	body = appendJSONString(body, value)
	body = append(body, '}')
	rq := request{method: http.MethodPost, path: withQuery("/set", o.w, 0), body: body, write: true, follow: true}
	var res SetResult
	ep, _, err := c.exec(ctx, &rq, &o, http.StatusCreated, 0, &res)
	res.Endpoint = ep
	return res, err
}

// DeleteResult is the answer to a Delete (200): the tombstone's version
// and who coordinated it, as for a Set.
type DeleteResult = SetResult

// Delete deletes key: a versioned tombstone the node replicates like a
// write, returning once W copies acknowledged it (200). Deleting a key that
// does not exist succeeds (it writes a tombstone); later reads of key answer
// ErrNotFound until a later Set. A follower's 307 is followed to the leader,
// and the retries are Set's. Options: WithW, At, NoRedirect, Attempts.
func (c *Client) Delete(ctx context.Context, key string, opts ...Option) (DeleteResult, error) {
	o := c.opts(opts)
	rq := request{method: http.MethodDelete, path: withQuery("/delete/"+url.PathEscape(key), o.w, 0), write: true, follow: true}
	var res DeleteResult
	ep, _, err := c.exec(ctx, &rq, &o, http.StatusOK, 0, &res)
	res.Endpoint = ep
	return res, err
}

// Get reads key with the node's read quorum (or WithR's). A missing key is
// an *Error matching ErrNotFound. Options: WithR, At, Attempts.
func (c *Client) Get(ctx context.Context, key string, opts ...Option) (GetResult, error) {
	return c.read(ctx, "/get/", key, opts)
}

// LocalRead reads one node's own copy of key, without coordination. A
// missing key is an *Error matching ErrNotFound. Options: At, Attempts.
func (c *Client) LocalRead(ctx context.Context, key string, opts ...Option) (GetResult, error) {
	return c.read(ctx, "/local_read/", key, opts)
}

func (c *Client) read(ctx context.Context, prefix, key string, opts []Option) (GetResult, error) {
	o := c.opts(opts)
	rq := request{method: http.MethodGet, path: withQuery(prefix+url.PathEscape(key), 0, o.r), safe: true}
	var res GetResult
	ep, _, err := c.exec(ctx, &rq, &o, http.StatusOK, 0, &res)
	res.Endpoint = ep
	return res, err
}

// Health fetches a node's /health document. A node still starting or
// catching up answers 503 with the document: Health returns it together
// with an *Error matching ErrNotReady (not retried). Options: At, Attempts.
func (c *Client) Health(ctx context.Context, opts ...Option) (Health, error) {
	o := c.opts(opts)
	rq := request{method: http.MethodGet, path: "/health", safe: true}
	var h Health
	ep, status, err := c.exec(ctx, &rq, &o, http.StatusOK, http.StatusServiceUnavailable, &h)
	h.Endpoint = ep
	if err == nil && status != http.StatusOK {
		if h.Status == "" {
			return h, &Error{Status: status, Code: CodeBadResponse, Endpoint: ep, Message: "a 503 without a health document"}
		}
		return h, &Error{Status: status, Code: CodeNotReady, Endpoint: ep, Message: "node status " + strconv.Quote(h.Status)}
	}
	return h, err
}

// Config reads W, R and N (GET /config). Options: At, Attempts.
func (c *Client) Config(ctx context.Context, opts ...Option) (ConfigResult, error) {
	o := c.opts(opts)
	rq := request{method: http.MethodGet, path: "/config", safe: true}
	var res ConfigResult
	ep, _, err := c.exec(ctx, &rq, &o, http.StatusOK, 0, &res)
	res.Endpoint = ep
	return res, err
}

// SetConfig changes W and R on every node (PUT /config), sending the
// cluster token; 0 keeps the current value. If not every node confirmed,
// the *Error matches ErrConfigIncomplete and its Nodes gives each node's
// outcome; the change is idempotent, so it is retried. Options: At,
// Attempts.
func (c *Client) SetConfig(ctx context.Context, w, r int, opts ...Option) (ConfigResult, error) {
	o := c.opts(opts)
	body := make([]byte, 0, 24)
	body = append(body, `{"w":`...)
	body = strconv.AppendInt(body, int64(w), 10)
	body = append(body, `,"r":`...)
	body = strconv.AppendInt(body, int64(r), 10)
	body = append(body, '}')
	// A leader-follower follower redirects the change to the leader, which
	// commits it to the election's log.
	rq := request{method: http.MethodPut, path: "/config", body: body, auth: true, safe: true, follow: true}
	var res ConfigResult
	ep, _, err := c.exec(ctx, &rq, &o, http.StatusOK, 0, &res)
	res.Endpoint = ep
	return res, err
}

// withQuery appends ?w= and ?r= when set.
func withQuery(path string, w, r int) string {
	if w == 0 && r == 0 {
		return path
	}
	b := make([]byte, 0, len(path)+16)
	b = append(b, path...)
	sep := byte('?')
	if w != 0 {
		b = append(b, sep, 'w', '=')
		b = strconv.AppendInt(b, int64(w), 10)
		sep = '&'
	}
	if r != 0 {
		b = append(b, sep, 'r', '=')
		b = strconv.AppendInt(b, int64(r), 10)
	}
	return string(b)
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// exec runs a call: attempts, retries and decoding. A status of ok or
// alsoOK (0: none) decodes into out; any other is an *Error. It returns
// the endpoint and status of the last answer.
func (c *Client) exec(ctx context.Context, rq *request, o *callOpts, ok, alsoOK int, out any) (string, int, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 { // do not keep huge values' buffers
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	for attempt := 1; ; attempt++ {
		base, idx := o.endpoint, -1
		if base == "" {
			if len(c.cfg.Endpoints) == 0 {
				return "", 0, ErrNoEndpoint
			}
			idx = int(c.cur.Load() % uint32(len(c.cfg.Endpoints)))
			base = c.cfg.Endpoints[idx]
		}
		buf.Reset()
		a := c.attempt(ctx, base, rq, o, buf)
		err := a.err
		if err == nil {
			// alsoOK with an error body (a "code") is an error, not the document.
			if a.status == ok || (alsoOK != 0 && a.status == alsoOK && !hasCode(buf.Bytes())) {
				if jerr := json.Unmarshal(buf.Bytes(), out); jerr != nil {
					return a.endpoint, a.status, &Error{Status: a.status, Code: CodeBadResponse, Endpoint: a.endpoint,
						Message: "response body is not the expected JSON: " + jerr.Error(), Err: jerr}
				}
				if h, isHealth := out.(*Health); isHealth {
					h.Raw = bytes.Clone(buf.Bytes())
				}
				return a.endpoint, a.status, nil
			}
			err = parseError(a.status, a.endpoint, a.location, buf.Bytes())
		}
		if a.final || attempt >= o.attempts || ctx.Err() != nil {
			return a.endpoint, a.status, err
		}
		again, move := c.retryable(err, rq)
		if !again {
			return a.endpoint, a.status, err
		}
		if move && idx >= 0 {
			c.cur.CompareAndSwap(uint32(idx), uint32((idx+1)%len(c.cfg.Endpoints)))
		}
		if !ctxtime.Sleep(ctx, c.cfg.Retry.backoff(attempt)) {
			return a.endpoint, a.status, err
		}
	}
}

// attemptResult is one attempt's answer (status and location; the body is
// in the caller's buffer) or its failure.
type attemptResult struct {
	status             int
	endpoint, location string
	err                error
	final              bool // the request could not be built: never retry
}

// attempt sends the request to base, following a 307 for a write that may
// (rq.follow) at most o.redirects times, and reads the answer into buf.
func (c *Client) attempt(ctx context.Context, base string, rq *request, o *callOpts, buf *bytes.Buffer) attemptResult {
	u := base + rq.path
	res := attemptResult{endpoint: base}
	for hop := 0; ; hop++ {
		var body io.Reader
		if rq.body != nil {
			body = bytes.NewReader(rq.body)
		}
		req, err := http.NewRequestWithContext(ctx, rq.method, u, body)
		if err != nil {
			res.err, res.final = fmt.Errorf("kvdb: %s %s: %w", rq.method, u, err), true
			return res
		}
		if rq.body != nil {
			req.Header["Content-Type"] = jsonContentType
		}
		if rq.auth && c.cfg.Token != "" {
			req.Header["Authorization"] = []string{"Bearer " + c.cfg.Token}
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			res.err = err
			return res
		}
		res.status, res.location = resp.StatusCode, resp.Header.Get("Location")
		if resp.StatusCode == http.StatusTemporaryRedirect && rq.follow && hop < o.redirects && res.location != "" {
			if next, perr := req.URL.Parse(res.location); perr == nil && (next.Scheme == "http" || next.Scheme == "https") {
				drain(resp.Body)
				u, res.endpoint = next.String(), next.Scheme+"://"+next.Host
				continue
			}
		}
		_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxResponse+1))
		resp.Body.Close()
		switch {
		case err != nil:
			res.err = &Error{Status: resp.StatusCode, Code: CodeBadResponse, Endpoint: res.endpoint,
				Message: "reading response body: " + err.Error(), Err: err}
		case buf.Len() > maxResponse:
			res.err = &Error{Status: resp.StatusCode, Code: CodeBadResponse, Endpoint: res.endpoint,
				Message: fmt.Sprintf("response body over %d bytes", maxResponse)}
		}
		return res
	}
}

var jsonContentType = []string{"application/json"}

// drain reads a little of a body before closing it, so that its
// connection can be reused.
func drain(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 64<<10))
	b.Close()
}

// errorBody is the server's JSON error body.
type errorBody struct {
	Error    string            `json:"error"`
	Code     string            `json:"code"`
	Acks     int               `json:"acks"`
	Required int               `json:"required"`
	Leader   string            `json:"leader"`
	W        int               `json:"w"`
	R        int               `json:"r"`
	Nodes    map[string]string `json:"nodes"`
}

// parseError turns an unexpected answer into an *Error. A body that is not
// a JSON error leaves Code and Message empty.
func parseError(status int, endpoint, location string, body []byte) *Error {
	e := &Error{Status: status, Endpoint: endpoint}
	if status >= 300 && status < 400 {
		e.Location = location
	}
	var b errorBody
	if len(body) > 0 && json.Unmarshal(body, &b) == nil {
		e.Code, e.Message, e.Leader = b.Code, b.Error, b.Leader
		e.Acks, e.Required = b.Acks, b.Required
		e.W, e.R, e.Nodes = b.W, b.R, b.Nodes
	}
	return e
}

// hasCode reports whether body is a JSON error body (it has a "code").
func hasCode(body []byte) bool {
	var b struct {
		Code string `json:"code"`
	}
	return json.Unmarshal(body, &b) == nil && b.Code != ""
}

// retryable says whether a failed attempt may be made again, and whether
// a call without At should move to the next endpoint first.
func (c *Client) retryable(err error, rq *request) (again, move bool) {
	unknownOK := rq.safe || (rq.write && c.cfg.Retry.RetryUnknownWrites)
	if e, ok := errors.AsType[*Error](err); ok {
		switch e.Code {
		case CodeNotReady, CodeLeaderCatchingUp, CodeShuttingDown, CodeLeaderUnavailable:
			return true, true
		case CodeQuorum, CodeTimeout, CodeConfigIncomplete:
			return unknownOK, false
		}
		return false, false
	}
	if isDialError(err) {
		return true, true
	}
	return unknownOK, false
}

// isDialError reports a failure to connect: the request was never sent.
func isDialError(err error) bool {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return true
	}
	_, ok := errors.AsType[*net.DNSError](err)
	return ok
}

// backoff is the wait after the attempt-th failed attempt.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// appendJSONString appends s as a JSON string. Bytes that are not valid
// UTF-8 are sent as they are, so the server refuses them (invalid_utf8)
// rather than store U+FFFD in their place, as encoding/json would.
func appendJSONString(dst []byte, s string) []byte { return jsonstr.Append(dst, s, jsonstr.Keep) }
