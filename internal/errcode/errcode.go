// Package errcode holds the stable machine codes of kvdb's error bodies,
// {"error": "...", "code": "..."}: the one list both sides of the wire use.
// The HTTP layer (package server, classify) decides which code an error
// gets; node-to-node callers (package transport) and clients decide by the
// code, never by the English text beside it.
package errcode

import "github.com/kvdb/kvdb/internal/replication"

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
