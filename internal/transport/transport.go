// Package transport carries node-to-node messages over HTTP: the wire types
// of the /internal/ endpoints, a Peer client with timeouts and connection
// reuse, and a fault-injecting RoundTripper for tests (drop, delay,
// partition).
package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/errcode"
	"github.com/kvdb/kvdb/internal/hops"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/store"
)

// Internal endpoint paths.
const (
	PathReplicate = "/internal/replicate"
	PathBatch     = "/internal/replicate-batch"
	PathRead      = "/internal/read"
	PathConfig    = "/internal/config"
	PathSnapshot  = "/internal/snapshot"
	PathHealth    = "/health"
)

// ReadResponse is the body of a successful internal read.
type ReadResponse struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
	// Deleted: the copy held is a tombstone (a delete at Version).
	Deleted bool `json:"deleted,omitempty"`
	Found   bool `json:"found"`
}

// QuorumRequest is the body of PUT /config and PUT /internal/config.
type QuorumRequest struct {
	W int `json:"w"`
	R int `json:"r"`
}

// NewHTTPClient returns the client a node uses for its peers: keep-alive
// connections (many idle per host, so parallel fan-out reuses them), dial
// and response-header timeouts, and no redirect following. rt, if not nil,
// wraps the underlying transport (fault injection in tests).
func NewHTTPClient(timeout time.Duration, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	var rt http.RoundTripper = &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	if wrap != nil {
		rt = wrap(rt)
	}
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// HTTPPeer implements replication.Peer over HTTP. Updates travel in the
// binary framing of codec.go; the other calls in JSON.
type HTTPPeer struct {
	id     string
	base   string
	token  string
	client *http.Client
	limits Limits
	hops   *hops.Recorder // nil: not recorded
}

// HeaderStamp is the header of a replica's answer to a replication message
// or a read: when it applied the update or read its copy, in Unix
// nanoseconds. The coordinator splits the round trip there (package hops).
const HeaderStamp = "X-Kvdb-Stamp"

// RecordHops makes the peer record the one-way times of its replication
// messages and reads in rec (see package hops).
func (p *HTTPPeer) RecordHops(rec *hops.Recorder) { p.hops = rec }

// recordHop splits a call's round trip at the replica's stamp, if it gave
// one.
func (p *HTTPPeer) recordHop(out, back hops.Kind, sent time.Time, resp *http.Response) {
	if p.hops == nil {
		return
	}
	done := time.Now()
	ns, err := strconv.ParseInt(resp.Header.Get(HeaderStamp), 10, 64)
	if err != nil {
		return
	}
	p.hops.Split(out, back, sent, time.Unix(0, ns), done)
}

// NewHTTPPeer returns a peer at baseURL. token, if not empty, is sent as a
// bearer token on every call. limits bound what the peer's snapshot may
// carry: this node's own key and value limits (every node of a cluster
// should have the same).
func NewHTTPPeer(id, baseURL, token string, client *http.Client, limits Limits) *HTTPPeer {
	return &HTTPPeer{id: id, base: strings.TrimRight(baseURL, "/"), token: token, client: client, limits: limits}
}

// ID returns the peer's member ID.
func (p *HTTPPeer) ID() string { return p.id }

// Replicate posts u to the peer.
func (p *HTTPPeer) Replicate(ctx context.Context, u replication.Update) error {
	return p.postUpdates(ctx, PathReplicate, []replication.Update{u})
}

// ReplicateBatch posts several updates in one request.
func (p *HTTPPeer) ReplicateBatch(ctx context.Context, us []replication.Update) error {
	return p.postUpdates(ctx, PathBatch, us)
}

func (p *HTTPPeer) postUpdates(ctx context.Context, path string, us []replication.Update) error {
	sent := time.Now()
	resp, err := p.request(ctx, http.MethodPost, path, ContentTypeUpdates, EncodeUpdates(us))
	if err != nil {
		return err
	}
	p.recordHop(hops.Write, hops.Ack, sent, resp)
	drain(resp)
	return nil
}

// Read asks the peer for its copy of key.
func (p *HTTPPeer) Read(ctx context.Context, key string) (store.Entry, bool, error) {
	var rr ReadResponse
	sent := time.Now()
	resp, err := p.request(ctx, http.MethodGet, PathRead+"?key="+url.QueryEscape(key), "", nil)
	if err != nil {
		return store.Entry{}, false, err
	}
	p.recordHop(hops.Read, hops.Response, sent, resp)
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
		return store.Entry{}, false, fmt.Errorf("decode %s answer: %w", PathRead, err)
	}
	return store.Entry{Value: rr.Value, Version: rr.Version, Deleted: rr.Deleted}, rr.Found, nil
}

// SetQuorum changes the peer's W and R.
func (p *HTTPPeer) SetQuorum(ctx context.Context, w, r int) error {
	return p.do(ctx, http.MethodPut, PathConfig, QuorumRequest{W: w, R: r}, nil)
}

// Snapshot streams the peer's entries (a snapshot stream in the binary
// framing, read and applied as it arrives) to fn. A non-zero term fences
// the peer at it first (?term=).
func (p *HTTPPeer) Snapshot(ctx context.Context, term uint64, fn func(replication.Update) error) error {
	path := PathSnapshot
	if term != 0 {
		path += "?term=" + strconv.FormatUint(term, 10)
	}
	resp, err := p.request(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var fnErr error
	err = ReadStream(resp.Body, p.limits, func(u replication.Update) error {
		fnErr = fn(u)
		return fnErr
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("snapshot from %s: %w", p.id, err)
	}
	return err
}

// Probe asks the peer's /health whether it serves.
func (p *HTTPPeer) Probe(ctx context.Context) error {
	return p.do(ctx, http.MethodGet, PathHealth, nil, nil)
}

// StatusError is a non-2xx answer from a peer. It matches the
// replication sentinel its machine code stands for (errcode.Sentinel: a
// "catching_up" answer matches replication.ErrNotReady), and a permanent
// refusal (Refused) matches replication.ErrRefused. Nothing is decided by
// the text of the message.
type StatusError struct {
	Code    int    // HTTP status
	ErrCode string // machine code of the error body ("catching_up", ...); empty if none
	Msg     string // the peer's message, for people
}

func (e *StatusError) Error() string { return fmt.Sprintf("peer answered %d: %s", e.Code, e.Msg) }

// StatusCode is the peer's HTTP status.
func (e *StatusError) StatusCode() int { return e.Code }

// Is matches the sentinel of the answer's machine code if it is one of
// PeerStates, and replication.ErrRefused for a permanent refusal.
func (e *StatusError) Is(target error) bool {
	if target == replication.ErrRefused {
		return Refused(e.Code)
	}
	s := errcode.Sentinel(e.ErrCode)
	return s != nil && s == target && slices.Contains(PeerStates, s)
}

// PeerStates are the sentinels a peer's error answer may match: states of
// the peer itself (catching up, shutting down, its log failed), which the
// coordinator may act on. Codes about a request (invalid_argument,
// not_found, ...) are not matched: a peer's answer carried as the cause of
// a quorum error must not turn the client's 503 into that request's 400.
// A stale_term answer (the peer knows a newer election term than the
// update's) is one too, and a permanent refusal as well (409).
var PeerStates = []error{replication.ErrNotReady, replication.ErrClosed, replication.ErrStorage, replication.ErrStaleTerm}

// Refused reports whether status is a permanent refusal of the message
// itself: a 4xx that sending the same message again cannot change (400 an
// invalid update, 413 one over the peer's limits, ...). Not refusals:
// 408 and 429 (try again later); 401 and 403 (this node's credentials are
// wrong, not the update: every message would fail alike, so dropping them
// would lose everything until the token is fixed); 404 and 405 (the peer
// does not serve this endpoint: a different kvdb version, likewise not
// about the update). Those stay ordinary failures, retried from hints.
func Refused(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusUnauthorized, http.StatusForbidden,
		http.StatusNotFound, http.StatusMethodNotAllowed:
		return false
	}
	return status >= 400 && status < 500
}

// StatusCatchingUp is the /health status of a node still catching up.
const StatusCatchingUp = "catching-up"

// do makes a call with a JSON body (in, if not nil) and answer (out, if
// not nil).
func (p *HTTPPeer) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	contentType := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
		body, contentType = b, "application/json"
	}
	resp, err := p.request(ctx, method, path, contentType, body)
	if err != nil {
		return err
	}
	if out == nil {
		drain(resp)
		return nil
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s answer: %w", path, err)
	}
	return nil
}

// drain reads what is left of a short answer and closes it, so the
// connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
}

// request sends one call (with body, of contentType, unless contentType
// is empty) and returns a 2xx response (whose body the caller closes), or
// the error: a transport failure or a *StatusError.
func (p *HTTPPeer) request(ctx context.Context, method, path, contentType string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if contentType != "" {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, statusError(resp.StatusCode, resp.Body)
	}
	return resp, nil
}

// statusError reads a non-2xx answer: the machine code and message of a
// JSON error body ({"error","code"}, or /health's {"status","code"}), or
// the start of any other body as the message.
func statusError(status int, body io.Reader) *StatusError {
	msg, _ := io.ReadAll(io.LimitReader(body, 512))
	var e struct {
		Error  string `json:"error"`
		Status string `json:"status"`
		Code   string `json:"code"`
	}
	se := &StatusError{Code: status, Msg: strings.TrimSpace(string(msg))}
	if json.Unmarshal(msg, &e) == nil {
		se.ErrCode = e.Code
		if e.Error != "" || e.Status != "" {
			se.Msg = strings.TrimSpace(e.Status + " " + e.Error)
		}
	}
	return se
}

// ErrDropped is returned by a Faults transport for a message it dropped.
var ErrDropped = errors.New("transport: message dropped by fault injection")
