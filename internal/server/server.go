// Package server is kvdb's HTTP layer: the client API (set, get,
// local_read, health, config, metrics) and the node-to-node /internal/
// endpoints, over the small interfaces it declares (Coordinator, Replica,
// Stats; see backend.go). Errors from below are mapped to
// HTTP status codes and machine codes (package errcode) in one place, classify.
package server

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kvdb/kvdb/internal/errcode"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

// Config configures the HTTP layer.
type Config struct {
	// MaxKeyBytes bounds a key (default 1 KiB).
	MaxKeyBytes int
	// MaxValueBytes bounds a value (default 1 MiB).
	MaxValueBytes int
	// MaxBodyBytes bounds a request body (default MaxValueBytes+MaxKeyBytes+64 KiB).
	MaxBodyBytes int64
	// RequestTimeout bounds a client set or get, coordination included
	// (default 5s). A request that runs out gets 503.
	RequestTimeout time.Duration
	// BodyReadTimeout bounds reading a request body, from the moment the
	// handler starts reading it (default 10s). A body that does not arrive
	// in time gets 408 and the connection is closed.
	BodyReadTimeout time.Duration
	// ClusterToken, if set, is required as "Authorization: Bearer <token>" on
	// /internal/ endpoints and PUT /config. Without one the node is in
	// protected mode: those endpoints answer only loopback callers
	// (127.0.0.0/8, ::1) and refuse others with 403.
	ClusterToken string
	// Raft, if set, serves GET /internal/raft: the election's connections
	// (an HTTP upgrade to raft's stream, transport.RaftStreams), behind
	// the same token check as every /internal/ endpoint, so the election
	// needs no port of its own.
	Raft http.Handler
	// Stream, if set, serves GET /internal/stream: the replication stream
	// peers send their messages on (an HTTP upgrade,
	// transport.StreamServer), behind the same token check.
	Stream http.Handler
	// Registry receives the metrics served at /metrics (default: a new one).
	Registry *prometheus.Registry
	// Logger receives request errors (default: discard).
	Logger *slog.Logger
}

// DefaultConfig returns the defaults: keys up to 1 KiB, values up to 1 MiB,
// 5s per client request, 10s to receive a body, no cluster token
// (protected mode). MaxBodyBytes stays zero: SetDefaults derives it from
// the key and value limits.
func DefaultConfig() Config {
	return Config{
		MaxKeyBytes:     1 << 10,
		MaxValueBytes:   1 << 20,
		RequestTimeout:  5 * time.Second,
		BodyReadTimeout: DefaultBodyReadTimeout,
	}
}

// SetDefaults fills zero fields (see DefaultConfig).
func (c *Config) SetDefaults() {
	d := DefaultConfig()
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = d.MaxKeyBytes
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = d.MaxValueBytes
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = int64(c.MaxValueBytes+c.MaxKeyBytes) + 64<<10
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.BodyReadTimeout == 0 {
		c.BodyReadTimeout = d.BodyReadTimeout
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports invalid settings.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxKeyBytes < 1 {
		errs = append(errs, fmt.Errorf("max key bytes %d must be at least 1", c.MaxKeyBytes))
	}
	if c.MaxValueBytes < 0 {
		errs = append(errs, fmt.Errorf("max value bytes %d must not be negative", c.MaxValueBytes))
	}
	if c.MaxBodyBytes < int64(c.MaxKeyBytes+c.MaxValueBytes) {
		errs = append(errs, fmt.Errorf("max body bytes %d is smaller than max key + max value", c.MaxBodyBytes))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, errors.New("request timeout must not be negative"))
	}
	if c.BodyReadTimeout < 0 {
		errs = append(errs, errors.New("body read timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// DefaultBodyReadTimeout is Config.BodyReadTimeout's default.
const DefaultBodyReadTimeout = 10 * time.Second

// Server serves one node's HTTP API.
type Server struct {
	cfg Config
	// coord serves the client API, replica the /internal/ peer API, stats
	// /health: three views of one Backend.
	coord   Coordinator
	replica Replica
	stats   Stats
	log     *slog.Logger
	mux     *http.ServeMux
	met     *httpMetrics
	// node and leaderless are fixed for the node's life: read once, so the
	// hot paths need not ask the engine (whose Info also reads the
	// election's state).
	node       string
	leaderless bool
	// get, localRead and del serve /get/, /local_read/ and /delete/ by the
	// raw path, outside the mux (which cleans paths and would redirect keys
	// such as "a//b").
	get, localRead, del http.HandlerFunc
	// configMu serializes the cluster-wide W/R changes this node
	// coordinates.
	configMu sync.Mutex
}

// New builds the HTTP layer over b.
func New(cfg Config, b Backend) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	inf := b.Info()
	s := &Server{cfg: cfg, coord: b, replica: b, stats: b, log: cfg.Logger, mux: http.NewServeMux(),
		node: inf.Node, leaderless: inf.Mode == replication.Leaderless}
	s.met = newHTTPMetrics(cfg.Registry)
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	allowed := map[string][]string{} // path -> methods, for 405 answers
	handle := func(method, path, route string, h handler) {
		s.handle(method+" "+path, route, h)
		allowed[path] = append(allowed[path], method)
	}
	handle("POST", "/set", "set", s.handleSet)
	// /get/{key...} and /local_read/{key...} are routed by ServeHTTP on
	// the raw path; the mux only sees the query forms.
	s.get = s.wrap("get", methods(s.handleGet, "GET"))
	s.localRead = s.wrap("local_read", methods(s.handleLocalRead, "GET"))
	handle("GET", "/get", "get", s.handleGet)
	handle("GET", "/local_read", "local_read", s.handleLocalRead)
	// DELETE /delete/{key...} likewise; the mux sees DELETE /delete?key=.
	s.del = s.wrap("delete", methods(s.handleDelete, "DELETE"))
	handle("DELETE", "/delete", "delete", s.handleDelete)
	handle("GET", "/health", "health", s.handleHealth)
	handle("GET", "/config", "config", s.handleGetConfig)
	handle("PUT", "/config", "config", s.authorized(s.handlePutConfig))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	allowed["/metrics"] = []string{"GET"}
	handle("POST", transport.PathReplicate, "internal_replicate", s.authorized(s.handleReplicate))
	handle("POST", transport.PathBatch, "internal_replicate_batch", s.authorized(s.handleReplicateBatch))
	handle("GET", transport.PathRead, "internal_read", s.authorized(s.handleInternalRead))
	handle("PUT", transport.PathConfig, "internal_config", s.authorized(s.handleInternalConfig))
	handle("GET", transport.PathSnapshot, "internal_snapshot", s.authorized(s.handleSnapshot))
	if s.cfg.Raft != nil {
		handle("GET", transport.PathRaft, "internal_raft", s.authorized(func(w http.ResponseWriter, r *http.Request) error {
			s.cfg.Raft.ServeHTTP(w, r)
			return nil
		}))
	}
	if s.cfg.Stream != nil {
		handle("GET", transport.PathStream, "internal_stream", s.authorized(func(w http.ResponseWriter, r *http.Request) error {
			s.cfg.Stream.ServeHTTP(w, r)
			return nil
		}))
	}
	// Known paths with another method get a JSON 405 with Allow; anything
	// else a JSON 404. Method-specific patterns take precedence over these,
	// so a request is routed once.
	for path, methods := range allowed {
		if slices.Contains(methods, "GET") {
			methods = append(methods, "HEAD")
		}
		slices.Sort(methods)
		allow := strings.Join(methods, ", ")
		s.handle(path, "unknown", func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Allow", allow)
			return fmt.Errorf("%w: method %s not allowed on %s (allowed: %s)", errMethod, r.Method, r.URL.Path, allow)
		})
	}
	s.handle("/", "unknown", func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("%w: %s %s", errNoEndpoint, r.Method, r.URL.Path)
	})
}

// handler is an endpoint that returns an error instead of writing one.
type handler func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(pattern, route string, h handler) {
	s.mux.HandleFunc(pattern, s.wrap(route, h))
}

// wrap turns an endpoint into an http.HandlerFunc that writes its error
// and records its metrics under route. A request with a body must deliver
// it within the body read timeout, whichever endpoint reads it.
func (s *Server) wrap(route string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		body := s.bodyDeadline(w, r)
		err := h(rec, r)
		if err != nil && body != nil && body.timedOut {
			err = fmt.Errorf("%w: the request body did not arrive within %v (%v)", errBodyTimeout, s.cfg.BodyReadTimeout, err)
		}
		if err != nil {
			s.writeError(rec, r, err)
		}
		s.met.observe(route, rec.status(), time.Since(start))
	}
}

// bodyDeadline sets the connection's read deadline to the body read
// timeout for a request that has a body, and replaces r.Body with a reader
// that lifts the deadline once the body is read (so it never cuts the
// connection under a slow handler) and notes whether it fired. It returns
// nil if there is no body or the connection has no deadlines (httptest's
// recorder).
//
// A per-request deadline rather than http.Server.ReadTimeout: ReadTimeout
// also bounds reading the headers and, unless IdleTimeout is set, how long
// a kept-alive connection may sit idle; and it starts when the request
// starts, so it would need to cover the largest body a peer may send.
func (s *Server) bodyDeadline(w http.ResponseWriter, r *http.Request) *deadlineBody {
	if s.cfg.BodyReadTimeout <= 0 || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout)) != nil {
		return nil
	}
	b := &deadlineBody{ReadCloser: r.Body, rc: rc, armed: true}
	r.Body = b
	return b
}

// deadlineBody is a request body read under a connection read deadline.
type deadlineBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	armed    bool // the deadline is set
	timedOut bool // a read hit the deadline
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.armed {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Leave the deadline in place: the server closes the
			// connection rather than wait for the rest of the body.
			b.timedOut = true
		} else {
			b.armed = false
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

// methods answers 405 (with Allow) to a method outside allowed; GET
// implies HEAD.
func methods(h handler, allowed ...string) handler {
	if slices.Contains(allowed, "GET") {
		allowed = append(allowed, "HEAD")
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ", ")
	return func(w http.ResponseWriter, r *http.Request) error {
		if !slices.Contains(allowed, r.Method) {
			w.Header().Set("Allow", allow)
			return fmt.Errorf("%w: method %s not allowed on %s (allowed: %s)", errMethod, r.Method, r.URL.Path, allow)
		}
		return h(w, r)
	}
}

// Path prefixes of the reads that take the key from the rest of the path.
const (
	prefixGet       = "/get/"
	prefixLocalRead = "/local_read/"
	prefixDelete    = "/delete/"
)

// ServeHTTP routes a request. /get/{key}, /local_read/{key} and
// /delete/{key} are routed
// here, on the path as the client sent it: http.ServeMux cleans paths
// ("a//b", "x/../b", "./c") and redirects to the cleaned one, which names
// another key.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Opaque == "" {
		p := r.URL.EscapedPath()
		switch {
		case strings.HasPrefix(p, prefixGet):
			s.get(w, r)
			return
		case strings.HasPrefix(p, prefixLocalRead):
			s.localRead(w, r)
			return
		case strings.HasPrefix(p, prefixDelete):
			s.del(w, r)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// authorized guards node-to-node endpoints and PUT /config: with a cluster
// token it requires the token; without one (protected mode) it admits
// loopback callers only.
func (s *Server) authorized(h handler) handler {
	if s.cfg.ClusterToken == "" {
		return func(w http.ResponseWriter, r *http.Request) error {
			if !isLoopback(r.RemoteAddr) {
				return fmt.Errorf("%w: %s %s from %s", errProtected, r.Method, r.URL.Path, r.RemoteAddr)
			}
			return h(w, r)
		}
	}
	want := []byte("Bearer " + s.cfg.ClusterToken)
	return func(w http.ResponseWriter, r *http.Request) error {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return errUnauthorized
		}
		return h(w, r)
	}
}

// isLoopback reports whether a RemoteAddr ("host:port") is a loopback
// address: 127.0.0.0/8 or ::1 (also as an IPv4-mapped IPv6 address).
func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return a.Unmap().IsLoopback()
}

type errorBody struct {
	Error    string `json:"error"`
	Code     string `json:"code"`
	Acks     *int   `json:"acks,omitempty"`
	Required *int   `json:"required,omitempty"`
	Leader   string `json:"leader,omitempty"`
	// Config change outcome: W, R and every node's outcome
	// ("updated", "failed: ...", "unknown: ...").
	W     int               `json:"w,omitempty"`
	R     int               `json:"r,omitempty"`
	Nodes map[string]string `json:"nodes,omitempty"`
}

// Errors of the HTTP layer itself.
var (
	errBadRequest   = errors.New("bad request")
	errInvalidUTF8  = fmt.Errorf("%w: not valid UTF-8", errBadRequest)
	errTooLarge     = errors.New("too large")
	errBodyTimeout  = errors.New("request body not received in time")
	errUnauthorized = errors.New("missing or wrong cluster token")
	errProtected    = errors.New("protected mode: this node has no cluster token, so /internal/ endpoints and PUT /config answer loopback callers only; " +
		"start every node with the same --cluster-token (KVDB_CLUSTER_TOKEN) and send it as Authorization: Bearer <token>")
	errMethod           = errors.New("method not allowed")
	errNoEndpoint       = errors.New("no such endpoint")
	errConfigIncomplete = errors.New("the W/R change did not reach every node")
)

// StatusClientClosedRequest is the status logged for a request whose
// caller went away before it was answered (nginx's 499); nobody reads it.
const StatusClientClosedRequest = errcode.StatusClientClosedRequest

// classify maps an error to its HTTP status and stable machine code: the
// one place that does. Order matters: a quorum error that wraps a
// cancellation is still a quorum error.
func classify(err error) (int, string) {
	switch {
	case errors.Is(err, errInvalidUTF8):
		return http.StatusBadRequest, errcode.InvalidUTF8
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, errcode.BadRequest
	case errors.Is(err, replication.ErrInvalid):
		return http.StatusBadRequest, errcode.InvalidArgument
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, errcode.TooLarge
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout, errcode.BodyTimeout
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized, errcode.Unauthorized
	case errors.Is(err, errProtected):
		return http.StatusForbidden, errcode.ProtectedMode
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, errcode.MethodNotAllowed
	case errors.Is(err, errNoEndpoint):
		return http.StatusNotFound, errcode.NoSuchEndpoint
	case errors.Is(err, errConfigIncomplete):
		return http.StatusServiceUnavailable, errcode.ConfigIncomplete
	}
	if status, code, ok := errcode.Replication(err); ok {
		return status, code
	}
	return http.StatusInternalServerError, errcode.Internal
}

// statusFor maps an error to its HTTP status (see classify).
func statusFor(err error) int {
	code, _ := classify(err)
	return code
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, mcode := classify(err)
	body := errorBody{Error: err.Error(), Code: mcode}
	if code == http.StatusRequestTimeout {
		// The rest of the body may still be on its way: this connection
		// cannot carry another request.
		w.Header().Set("Connection", "close")
	}
	if ce, ok := errors.AsType[*configError](err); ok {
		body.W, body.R, body.Nodes = ce.res.W, ce.res.R, ce.nodes()
	}
	if qe, ok := errors.AsType[*replication.QuorumError](err); ok {
		body.Acks, body.Required = &qe.Acks, &qe.Required
	}
	if nl, ok := errors.AsType[*replication.NotLeaderError](err); ok {
		loc := strings.TrimRight(nl.LeaderURL, "/") + r.URL.Path
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		body.Leader = nl.LeaderURL
	}
	if code == http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	writeJSON(w, code, body)
}

var jsonContentType = []string{"application/json"}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // messages such as "Bearer <token>" stay readable
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(code)
	_, err := w.Write(buf.Bytes())
	return err
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}
