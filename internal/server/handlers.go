package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

// SetRequest is the body of POST /set. Value is a pointer so that a missing
// value is told apart from the empty string, which is a valid value.
type SetRequest struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

// SetResponse is the body of a 201 from POST /set.
type SetResponse struct {
	Key         string `json:"key"`
	Version     uint64 `json:"version"`
	Node        string `json:"node"`
	Coordinator string `json:"coordinator,omitempty"`
	Acks        int    `json:"acks"`
	W           int    `json:"w"`
}

// GetResponse is the body of a 200 from /get and /local_read.
type GetResponse struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
	Node    string `json:"node"`
}

// ConfigResponse is the body of GET and PUT /config.
type ConfigResponse struct {
	W       int               `json:"w"`
	R       int               `json:"r"`
	N       int               `json:"n"`
	Mode    string            `json:"mode"`
	Updated []string          `json:"updated,omitempty"`
	Failed  map[string]string `json:"failed,omitempty"`
}

// HealthResponse is the body of GET /health.
type HealthResponse struct {
	Status       string             `json:"status"`
	Node         string             `json:"node"`
	Mode         string             `json:"mode"`
	Role         string             `json:"role"`
	Leader       string             `json:"leader,omitempty"`
	W            int                `json:"w"`
	R            int                `json:"r"`
	N            int                `json:"n"`
	Delays       string             `json:"delays"`
	DelayProfile replication.Delays `json:"delay_profile"`
	Keys         int                `json:"keys"`
	Pending      int                `json:"pending_replication"`
	Hints        int                `json:"hints"`
}

// decodeJSON reads exactly one JSON value from the body, within the body
// limit.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return s.decodeLimited(w, r, v, s.cfg.MaxBodyBytes)
}

func (s *Server) decodeLimited(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return fmt.Errorf("%w: request body over %d bytes", errTooLarge, limit)
		}
		return fmt.Errorf("%w: reading body: %v", errBadRequest, err)
	}
	return DecodeBody(body, v)
}

// DecodeBody decodes one JSON value; trailing data is refused
// (json.Unmarshal checks the whole input).
func DecodeBody(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: invalid JSON body: %v", errBadRequest, err)
	}
	return nil
}

// ValidateSet checks a decoded set request against the limits.
func (s *Server) validateSet(req SetRequest) error {
	switch {
	case req.Key == "":
		return fmt.Errorf("%w: key must not be empty", errBadRequest)
	case req.Value == nil:
		return fmt.Errorf("%w: value is required (the empty string is allowed)", errBadRequest)
	case len(req.Key) > s.cfg.MaxKeyBytes:
		return fmt.Errorf("%w: key is %d bytes, limit %d", errTooLarge, len(req.Key), s.cfg.MaxKeyBytes)
	case len(*req.Value) > s.cfg.MaxValueBytes:
		return fmt.Errorf("%w: value is %d bytes, limit %d", errTooLarge, len(*req.Value), s.cfg.MaxValueBytes)
	}
	return nil
}

// options reads the optional ?w= and ?r= overrides.
func options(r *http.Request) (replication.Options, error) {
	var o replication.Options
	if r.URL.RawQuery == "" {
		return o, nil
	}
	q := r.URL.Query()
	for _, p := range []struct {
		name string
		dst  *int
	}{{"w", &o.W}, {"r", &o.R}} {
		name, dst := p.name, p.dst
		v := q.Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return o, fmt.Errorf("%w: %s=%q must be a positive integer", errBadRequest, name, v)
		}
		*dst = n
	}
	return o, nil
}

func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
}

func (s *Server) handleSet(w http.ResponseWriter, r *http.Request) error {
	var req SetRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := s.validateSet(req); err != nil {
		return err
	}
	o, err := options(r)
	if err != nil {
		return err
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	res, err := s.rep.Write(ctx, req.Key, *req.Value, o)
	if err != nil {
		return err
	}
	out := SetResponse{Key: res.Key, Version: res.Version, Node: res.Coordinator, Acks: res.Acks, W: res.W}
	if s.rep.Info().Mode == replication.Leaderless {
		out.Coordinator = res.Coordinator
	}
	return writeFast(w, http.StatusCreated, &out)
}

// keyParam reads the key from the path ({key}) or from ?key=.
func (s *Server) keyParam(r *http.Request) (string, error) {
	key := r.PathValue("key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	if key == "" {
		return "", fmt.Errorf("%w: key must not be empty (use /get/{key} or ?key=)", errBadRequest)
	}
	if len(key) > s.cfg.MaxKeyBytes {
		return "", fmt.Errorf("%w: key is %d bytes, limit %d", errTooLarge, len(key), s.cfg.MaxKeyBytes)
	}
	return key, nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) error {
	key, err := s.keyParam(r)
	if err != nil {
		return err
	}
	o, err := options(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if o.R > 1 || (o.R == 0 && s.rep.Info().R > 1) {
		// Only a read that waits for peers needs the request timeout; an
		// R=1 read is served from the local copy and never blocks.
		var cancel context.CancelFunc
		ctx, cancel = s.requestContext(r)
		defer cancel()
	}
	res, err := s.rep.Read(ctx, key, o)
	if err != nil {
		return err
	}
	return writeFast(w, http.StatusOK, &GetResponse{Key: key, Value: res.Value, Version: res.Version, Node: res.Node})
}

func (s *Server) handleLocalRead(w http.ResponseWriter, r *http.Request) error {
	key, err := s.keyParam(r)
	if err != nil {
		return err
	}
	if !s.rep.Ready() {
		return replication.ErrNotReady
	}
	e, ok := s.rep.LocalRead(key)
	if !ok {
		return fmt.Errorf("%q: %w", key, replication.ErrNotFound)
	}
	return writeFast(w, http.StatusOK, &GetResponse{Key: key, Value: e.Value, Version: e.Version, Node: s.rep.Info().Node})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	inf := s.rep.Info()
	status, code := "ok", http.StatusOK
	if !s.rep.Ready() {
		status, code = transport.StatusCatchingUp, http.StatusServiceUnavailable
	}
	return writeJSON(w, code, HealthResponse{
		Status: status, Node: inf.Node, Mode: string(inf.Mode), Role: inf.Role, Leader: inf.Leader,
		W: inf.W, R: inf.R, N: inf.N, Delays: inf.Delays.String(), DelayProfile: inf.Delays,
		Keys: s.rep.Keys(), Pending: s.rep.Pending(), Hints: s.rep.Hints(),
	})
}

func (s *Server) handleGetConfig(w http.ResponseWriter, r *http.Request) error {
	inf := s.rep.Info()
	return writeJSON(w, http.StatusOK, ConfigResponse{W: inf.W, R: inf.R, N: inf.N, Mode: string(inf.Mode)})
}

func (s *Server) decodeQuorum(w http.ResponseWriter, r *http.Request) (transport.QuorumRequest, error) {
	var q transport.QuorumRequest
	if err := s.decodeJSON(w, r, &q); err != nil {
		return q, err
	}
	if q.W == 0 && q.R == 0 {
		return q, fmt.Errorf("%w: give w and/or r, e.g. {\"w\":3,\"r\":3}", errBadRequest)
	}
	inf := s.rep.Info()
	if q.W == 0 {
		q.W = inf.W
	}
	if q.R == 0 {
		q.R = inf.R
	}
	return q, nil
}

func (s *Server) handlePutConfig(w http.ResponseWriter, r *http.Request) error {
	q, err := s.decodeQuorum(w, r)
	if err != nil {
		return err
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	res, err := s.rep.SetClusterQuorum(ctx, q.W, q.R)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ConfigResponse{W: res.W, R: res.R, N: res.N, Mode: string(s.rep.Info().Mode), Updated: res.Updated, Failed: res.Failed})
}

func (s *Server) handleInternalConfig(w http.ResponseWriter, r *http.Request) error {
	q, err := s.decodeQuorum(w, r)
	if err != nil {
		return err
	}
	if err := s.rep.SetQuorum(q.W, q.R); err != nil {
		return err
	}
	inf := s.rep.Info()
	return writeJSON(w, http.StatusOK, ConfigResponse{W: inf.W, R: inf.R, N: inf.N, Mode: string(inf.Mode)})
}

func (s *Server) handleInternalRead(w http.ResponseWriter, r *http.Request) error {
	key, err := s.keyParam(r)
	if err != nil {
		return err
	}
	e, ok, err := s.rep.ReadReplica(r.Context(), key)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, transport.ReadResponse{Key: key, Value: e.Value, Version: e.Version, Found: ok})
}
