// Package server is kvdb's HTTP layer: the client API (set, get,
// local_read, health, config, metrics) and the node-to-node /internal/
// endpoints, over one replication.Replicator. Errors from below are mapped to
// HTTP status codes in one place, statusFor.
package server

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	// ClusterToken, if set, is required as "Authorization: Bearer <token>" on
	// /internal/ endpoints and PUT /config.
	ClusterToken string
	// Registry receives the metrics served at /metrics (default: a new one).
	Registry *prometheus.Registry
	// Logger receives request errors (default: discard).
	Logger *slog.Logger
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = 1 << 10
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = 1 << 20
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = int64(c.MaxValueBytes+c.MaxKeyBytes) + 64<<10
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
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
	return errors.Join(errs...)
}

// Server serves one node's HTTP API.
type Server struct {
	cfg Config
	rep replication.Replicator
	log *slog.Logger
	mux *http.ServeMux
	met *httpMetrics
}

// New builds the HTTP layer over rep.
func New(cfg Config, rep replication.Replicator) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	s := &Server{cfg: cfg, rep: rep, log: cfg.Logger, mux: http.NewServeMux()}
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
	handle("GET", "/get/{key...}", "get", s.handleGet)
	handle("GET", "/get", "get", s.handleGet)
	handle("GET", "/local_read/{key...}", "local_read", s.handleLocalRead)
	handle("GET", "/local_read", "local_read", s.handleLocalRead)
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
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		if err := h(rec, r); err != nil {
			s.writeError(rec, r, err)
		}
		s.met.observe(route, rec.status(), time.Since(start))
	})
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// authorized requires the cluster token when one is configured.
func (s *Server) authorized(h handler) handler {
	if s.cfg.ClusterToken == "" {
		return h
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

type errorBody struct {
	Error    string `json:"error"`
	Acks     *int   `json:"acks,omitempty"`
	Required *int   `json:"required,omitempty"`
	Leader   string `json:"leader,omitempty"`
}

// Errors of the HTTP layer itself.
var (
	errBadRequest   = errors.New("bad request")
	errTooLarge     = errors.New("too large")
	errUnauthorized = errors.New("missing or wrong cluster token")
	errMethod       = errors.New("method not allowed")
	errNoEndpoint   = errors.New("no such endpoint")
)

// statusFor maps an error to its HTTP status: the one place that does.
func statusFor(err error) int {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, replication.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errNoEndpoint):
		return http.StatusNotFound
	case errors.Is(err, replication.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, replication.ErrNotLeader):
		return http.StatusTemporaryRedirect
	case errors.Is(err, replication.ErrQuorum), errors.Is(err, replication.ErrClosed), errors.Is(err, replication.ErrNotReady),
		errors.Is(err, replication.ErrStorage), errors.Is(err, replication.ErrLeaderUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusFor(err)
	body := errorBody{Error: err.Error()}
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
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(code)
	b = append(b, '\n')
	_, err = w.Write(b)
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

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}
