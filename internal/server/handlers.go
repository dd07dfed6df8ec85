package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kvdb/kvdb/internal/errcode"
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

// DeleteResponse is the body of a 200 from DELETE /delete: the shape of
// SetResponse (the tombstone's version, the coordinator, the acks).
type DeleteResponse = SetResponse

// GetResponse is the body of a 200 from /get and /local_read.
type GetResponse struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
	Node    string `json:"node"`
}

// ConfigResponse is the body of GET and PUT /config. A PUT that every
// node confirmed answers 200 with Updated listing them; one that did not
// answers 503 with an error body whose "nodes" gives each node's outcome.
type ConfigResponse struct {
	W       int      `json:"w"`
	R       int      `json:"r"`
	N       int      `json:"n"`
	Mode    string   `json:"mode"`
	Updated []string `json:"updated,omitempty"`
	// LogIndex is the election log index that carries a change
	// (leader-follower): committed, it reaches every node and survives
	// failover.
	LogIndex uint64 `json:"log_index,omitempty"`
}

// HealthResponse is the body of GET /health.
type HealthResponse struct {
	Status string `json:"status"`
	// Code is errcode.CatchingUp while the node catches up (503), so
	// peers and clients decide by it rather than by Status's text.
	Code   string `json:"code,omitempty"`
	Node   string `json:"node"`
	Mode   string `json:"mode"`
	Role   string `json:"role"`
	Leader string `json:"leader,omitempty"`
	// Term is the election term (leader-follower).
	Term uint64 `json:"term,omitempty"`
	// LeaderCatchingUp: this node was just elected and copies state
	// before it accepts writes.
	LeaderCatchingUp bool `json:"leader_catching_up,omitempty"`
	// PossibleLoss, if set, says this node's last catch-up as a new leader
	// could not reach enough nodes: writes acknowledged before that
	// election may have been lost.
	PossibleLoss string             `json:"possible_loss,omitempty"`
	W            int                `json:"w"`
	R            int                `json:"r"`
	N            int                `json:"n"`
	Delays       string             `json:"delays"`
	DelayProfile replication.Delays `json:"delay_profile"`
	Keys         int                `json:"keys"`
	Tombstones   int                `json:"tombstones"`
	Pending      int                `json:"pending_replication"`
	Hints        int                `json:"hints"`
}

// decodeJSON reads exactly one JSON value from the body, within the body
// limit.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return s.decodeLimited(w, r, v, s.cfg.MaxBodyBytes)
}

func (s *Server) decodeLimited(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	body, err := s.readBody(w, r, limit)
	if err != nil {
		return err
	}
	return DecodeBody(body, v)
}

// readBody reads the whole body within limit. The body read timeout is
// set for every request by wrap (bodyDeadline); a body that stalls gets
// errBodyTimeout (408).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, fmt.Errorf("%w: request body over %d bytes", errTooLarge, limit)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("%w: %d of %d bytes arrived within %v", errBodyTimeout, len(body), r.ContentLength, s.cfg.BodyReadTimeout)
		}
		return nil, fmt.Errorf("%w: reading body: %v", errBadRequest, err)
	}
	return body, nil
}

// DecodeBody decodes one JSON value; trailing data is refused
// (json.Unmarshal checks the whole input). Invalid UTF-8 is refused too,
// raw or escaped (a lone UTF-16 surrogate): json.Unmarshal would silently
// turn it into U+FFFD, so distinct keys would overwrite each other.
func DecodeBody(body []byte, v any) error {
	if !utf8.Valid(body) {
		return fmt.Errorf("%w: request body holds bytes that are not UTF-8 (keys and values must be valid UTF-8)", errInvalidUTF8)
	}
	if i := loneSurrogate(body); i >= 0 {
		return fmt.Errorf("%w: request body has an unpaired UTF-16 surrogate escape %q at byte %d (keys and values must be valid UTF-8)",
			errInvalidUTF8, body[i:min(i+6, len(body))], i)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: invalid JSON body: %v", errBadRequest, err)
	}
	return nil
}

// loneSurrogate returns the offset of the first \uXXXX escape in a JSON
// text that is a UTF-16 surrogate without its pair, or -1. Backslashes
// occur only inside strings in valid JSON, so the scan needs no parser.
func loneSurrogate(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\\')
		if j < 0 {
			return -1
		}
		i += j
		if i+1 >= len(b) {
			return -1
		}
		if b[i+1] != 'u' {
			i += 2 // any other escape: skip the escaped byte
			continue
		}
		u, ok := hex4(b, i+2)
		switch {
		case !ok:
			return -1 // malformed: json.Unmarshal reports it
		case u >= 0xDC00 && u <= 0xDFFF:
			return i // a low surrogate with no high one before it
		case u >= 0xD800 && u <= 0xDBFF:
			if i+12 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
				return i
			}
			if lo, ok := hex4(b, i+8); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return i
			}
			i += 12
		default:
			i += 6
		}
	}
}

// hex4 parses the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
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

// requestContext bounds a coordinated request by the request timeout. It
// is detached from the client's connection: a write (or a quorum read and
// its read repair) that has started finishes its coordination even if the
// client goes away, so replicas are not left half-updated by a hang-up.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.RequestTimeout)
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
	res, err := s.coord.Write(ctx, req.Key, *req.Value, o)
	if err != nil {
		return err
	}
	return writeFast(w, http.StatusCreated, s.writeResponse(res))
}

// writeResponse is the answer to an acknowledged set or delete.
func (s *Server) writeResponse(res replication.WriteResult) *SetResponse {
	out := SetResponse{Key: res.Key, Version: res.Version, Node: res.Coordinator, Acks: res.Acks, W: res.W}
	if s.leaderless {
		out.Coordinator = res.Coordinator
	}
	return &out
}

// handleDelete serves DELETE /delete/{key} and /delete?key=: a tombstone
// replicated like a write. Deleting a key that does not exist succeeds (it
// writes a tombstone); the errors are those of a set.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) error {
	key, err := s.keyParam(r)
	if err != nil {
		return err
	}
	o, err := options(r)
	if err != nil {
		return err
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	res, err := s.coord.Delete(ctx, key, o)
	if err != nil {
		return err
	}
	return writeFast(w, http.StatusOK, s.writeResponse(res))
}

// keyParam reads the key from the path (/get/{key}, /local_read/{key},
// /delete/{key}:
// everything after the prefix, percent-decoded but otherwise exactly as
// sent, slashes and dot segments included) or from ?key=.
func (s *Server) keyParam(r *http.Request) (string, error) {
	var key string
	for _, p := range []string{prefixGet, prefixLocalRead, prefixDelete} {
		if k, ok := strings.CutPrefix(r.URL.Path, p); ok {
			key = k
			break
		}
	}
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	if key == "" {
		return "", fmt.Errorf("%w: key must not be empty (use %s{key} or ?key=)", errBadRequest, pathPrefix(r.URL.Path))
	}
	if !utf8.ValidString(key) {
		return "", fmt.Errorf("%w: key %q (keys must be valid UTF-8)", errInvalidUTF8, key)
	}
	if len(key) > s.cfg.MaxKeyBytes {
		return "", fmt.Errorf("%w: key is %d bytes, limit %d", errTooLarge, len(key), s.cfg.MaxKeyBytes)
	}
	return key, nil
}

// pathPrefix is the /name/ of path's endpoint, for error messages.
func pathPrefix(path string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return "/" + name + "/"
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
	if _, nodeR := s.coord.Quorums(); o.R > 1 || (o.R == 0 && nodeR > 1) {
		// Only a read that waits for peers needs the request timeout; an
		// R=1 read is served from the local copy and never blocks. A
		// quorum read may repair replicas, so it runs to its end even if
		// the client leaves.
		var cancel context.CancelFunc
		ctx, cancel = s.requestContext(r)
		defer cancel()
	}
	res, err := s.coord.Read(ctx, key, o)
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
	if !s.coord.Ready() {
		return replication.ErrNotReady
	}
	e, ok := s.coord.LocalRead(key)
	if !ok {
		return fmt.Errorf("%q: %w", key, replication.ErrNotFound)
	}
	return writeFast(w, http.StatusOK, &GetResponse{Key: key, Value: e.Value, Version: e.Version, Node: s.node})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	inf := s.coord.Info()
	status, code, mcode := "ok", http.StatusOK, ""
	if !s.coord.Ready() {
		status, code, mcode = transport.StatusCatchingUp, http.StatusServiceUnavailable, errcode.CatchingUp
	}
	return writeJSON(w, code, HealthResponse{
		Status: status, Code: mcode, Node: inf.Node, Mode: string(inf.Mode), Role: inf.Role, Leader: inf.Leader,
		Term: inf.Term, LeaderCatchingUp: inf.CatchingUp, PossibleLoss: inf.PossibleLoss,
		W: inf.W, R: inf.R, N: inf.N, Delays: inf.Delays.String(), DelayProfile: inf.Delays,
		Keys: s.stats.Keys(), Tombstones: s.stats.Tombstones(), Pending: s.stats.Pending(), Hints: s.stats.Hints(),
	})
}

func (s *Server) handleGetConfig(w http.ResponseWriter, r *http.Request) error {
	inf := s.coord.Info()
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
	inf := s.coord.Info()
	if q.W == 0 {
		q.W = inf.W
	}
	if q.R == 0 {
		q.R = inf.R
	}
	return q, nil
}

// handlePutConfig changes W and R on every node. In leader-follower mode
// the change is an entry of the election's log: the leader commits it
// (a follower redirects the PUT there with 307), and once committed it
// reaches every node and survives failover — atomic, never half-applied;
// the answer carries its log_index. In leaderless mode this node sets it
// on each node: changes it coordinates run one at a time, and each runs to
// its end under its own timeout whatever the client does; the answer is
// 200 only if every node confirmed, otherwise 503 with each node's outcome
// (updated, failed: reason, or unknown: reason when a call was sent but
// not answered).
func (s *Server) handlePutConfig(w http.ResponseWriter, r *http.Request) error {
	q, err := s.decodeQuorum(w, r)
	if err != nil {
		return err
	}
	s.configMu.Lock()
	defer s.configMu.Unlock()
	ctx, cancel := s.requestContext(r)
	defer cancel()
	res, err := s.coord.SetClusterQuorum(ctx, q.W, q.R)
	if err != nil {
		return err
	}
	if !res.Complete() {
		return &configError{res: res}
	}
	return writeJSON(w, http.StatusOK, ConfigResponse{W: res.W, R: res.R, N: res.N, Mode: string(s.coord.Info().Mode), Updated: res.Updated, LogIndex: res.Index})
}

// configError is a W/R change that not every node confirmed.
type configError struct{ res replication.ClusterQuorum }

func (e *configError) Error() string {
	var parts []string
	for _, id := range sortedKeys(e.res.Failed) {
		parts = append(parts, id+" failed: "+e.res.Failed[id])
	}
	for _, id := range sortedKeys(e.res.Unknown) {
		parts = append(parts, id+" unknown (sent, no answer in time): "+e.res.Unknown[id])
	}
	return fmt.Sprintf("%v: w=%d r=%d confirmed by %s; %s; retry the PUT (it is idempotent)",
		errConfigIncomplete, e.res.W, e.res.R, strings.Join(e.res.Updated, ", "), strings.Join(parts, "; "))
}

func (e *configError) Unwrap() error { return errConfigIncomplete }

// nodes gives every node's outcome.
func (e *configError) nodes() map[string]string {
	m := make(map[string]string, e.res.N)
	for _, id := range e.res.Updated {
		m[id] = replication.OutcomeUpdated
	}
	for id, why := range e.res.Failed {
		m[id] = replication.OutcomeFailed + ": " + why
	}
	for id, why := range e.res.Unknown {
		m[id] = replication.OutcomeUnknown + ": " + why
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (s *Server) handleInternalConfig(w http.ResponseWriter, r *http.Request) error {
	q, err := s.decodeQuorum(w, r)
	if err != nil {
		return err
	}
	if err := s.replica.SetQuorum(q.W, q.R); err != nil {
		return err
	}
	inf := s.replica.Info()
	return writeJSON(w, http.StatusOK, ConfigResponse{W: inf.W, R: inf.R, N: inf.N, Mode: string(inf.Mode)})
}

func (s *Server) handleInternalRead(w http.ResponseWriter, r *http.Request) error {
	key, err := s.keyParam(r)
	if err != nil {
		return err
	}
	e, ok, err := s.replica.ReadReplica(r.Context(), key)
	if err != nil {
		return err
	}
	stamp(w)
	return writeJSON(w, http.StatusOK, transport.ReadResponse{Key: key, Value: e.Value, Version: e.Version, Deleted: e.Deleted, Found: ok})
}
