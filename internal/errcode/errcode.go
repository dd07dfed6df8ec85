// Package errcode holds the stable machine codes of kvdb's error bodies,
// {"error": "...", "code": "..."}: the one list both sides of the wire use.
// The HTTP layer (package server, classify) decides which code an error
// gets; node-to-node callers (package transport) and clients decide by the
// code, never by the English text beside it.
package errcode

import (
	"context"
	"errors"
	"net/http"

	"github.com/kvdb/kvdb/internal/replication"
)

// The codes. They are part of the API: never change one, only add.
const (
	// Client errors.
	BadRequest       = "bad_request"        // 400: malformed request
	InvalidUTF8      = "invalid_utf8"       // 400: key or value not valid UTF-8
	InvalidArgument  = "invalid_argument"   // 400: replication.ErrInvalid (W or R out of range, bad version)
	TooLarge         = "too_large"          // 413
	BodyTimeout      = "body_timeout"       // 408
	Unauthorized     = "unauthorized"       // 401: missing or wrong cluster token
	ProtectedMode    = "protected_mode"     // 403: no cluster token, caller not on loopback
	MethodNotAllowed = "method_not_allowed" // 405
	NoSuchEndpoint   = "no_such_endpoint"   // 404: unknown path
	NotFound         = "not_found"          // 404: replication.ErrNotFound
	NotLeader        = "not_leader"         // 307: replication.ErrNotLeader
	StaleTerm        = "stale_term"         // 409: replication.ErrStaleTerm (an update from a deposed leader)

	// Unavailability (503).
	QuorumNotReached  = "quorum_not_reached" // replication.ErrQuorum
	ConfigIncomplete  = "config_incomplete"  // a W/R change not every node confirmed
	ShuttingDown      = "shutting_down"      // replication.ErrClosed
	CatchingUp        = "catching_up"        // replication.ErrNotReady (also on /health)
	StorageFailure    = "storage_failure"    // replication.ErrStorage
	LeaderUnavailable = "leader_unavailable" // replication.ErrLeaderUnavailable
	LeaderCatchingUp  = "leader_catching_up" // replication.ErrLeaderCatchingUp (just elected; nothing applied)
	Timeout           = "timeout"            // the request's deadline passed

	// ClientClosedRequest is logged for a caller that went away (499).
	ClientClosedRequest = "client_closed_request"
	// Internal is a bug (500).
	Internal = "internal"
)

// sentinels are the replication sentinels a code stands for.
var sentinels = map[string]error{
	InvalidArgument:   replication.ErrInvalid,
	NotFound:          replication.ErrNotFound,
	NotLeader:         replication.ErrNotLeader,
	QuorumNotReached:  replication.ErrQuorum,
	ShuttingDown:      replication.ErrClosed,
	CatchingUp:        replication.ErrNotReady,
	StorageFailure:    replication.ErrStorage,
	LeaderUnavailable: replication.ErrLeaderUnavailable,
	LeaderCatchingUp:  replication.ErrLeaderCatchingUp,
	StaleTerm:         replication.ErrStaleTerm,
}

// Sentinel returns the replication sentinel error that code stands for
// (nil for codes that stand for none): a remote answer with that code
// matches it.
func Sentinel(code string) error { return sentinels[code] }

// Codes lists the codes that stand for a replication sentinel, for tests
// that check both directions agree.
func Codes() []string {
	cs := make([]string, 0, len(sentinels))
	for c := range sentinels {
		cs = append(cs, c)
	}
	return cs
}

// Replication maps the replication engine's errors, and a request context
// that ended, to their HTTP status and code; ok is false for any other
// error. It is the part of the mapping the node-to-node stream shares with
// the HTTP layer (package server's classify, which handles its own errors
// first), so a peer's answer means the same over either. Order matters: a
// quorum error that wraps a cancellation is still a quorum error.
func Replication(err error) (status int, code string, ok bool) {
	switch {
	case errors.Is(err, replication.ErrInvalid):
		return http.StatusBadRequest, InvalidArgument, true
	case errors.Is(err, replication.ErrNotFound):
		return http.StatusNotFound, NotFound, true
	case errors.Is(err, replication.ErrNotLeader):
		return http.StatusTemporaryRedirect, NotLeader, true
	case errors.Is(err, replication.ErrQuorum):
		return http.StatusServiceUnavailable, QuorumNotReached, true
	case errors.Is(err, replication.ErrStaleTerm):
		// After ErrQuorum: a write that missed its quorum because peers
		// know a newer term is a 503 to its client (it was applied on the
		// coordinator, so its outcome is unknown), not the peers' 409.
		return http.StatusConflict, StaleTerm, true
	case errors.Is(err, replication.ErrClosed):
		return http.StatusServiceUnavailable, ShuttingDown, true
	case errors.Is(err, replication.ErrNotReady):
		return http.StatusServiceUnavailable, CatchingUp, true
	case errors.Is(err, replication.ErrStorage):
		return http.StatusServiceUnavailable, StorageFailure, true
	case errors.Is(err, replication.ErrLeaderUnavailable):
		return http.StatusServiceUnavailable, LeaderUnavailable, true
	case errors.Is(err, replication.ErrLeaderCatchingUp):
		return http.StatusServiceUnavailable, LeaderCatchingUp, true
	case errors.Is(err, context.Canceled):
		return StatusClientClosedRequest, ClientClosedRequest, true
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, Timeout, true
	}
	return 0, "", false
}

// StatusClientClosedRequest is the status logged for a request whose
// caller went away before it was answered (nginx's 499); nobody reads it.
const StatusClientClosedRequest = 499
