package client

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Machine codes of the server's error bodies ({"error": "...", "code": "..."}).
// They are stable: decide on them, never on the English text.
const (
	CodeBadRequest        = "bad_request"        // 400: empty key, missing value, bad JSON, bad ?w=/?r=
	CodeInvalidUTF8       = "invalid_utf8"       // 400: a key or value that is not valid UTF-8
	CodeInvalidArgument   = "invalid_argument"   // 400: W or R outside 1..N
	CodeTooLarge          = "too_large"          // 413: key, value or body over the node's limits
	CodeBodyTimeout       = "body_timeout"       // 408: the request body did not arrive in time
	CodeUnauthorized      = "unauthorized"       // 401: missing or wrong cluster token
	CodeProtectedMode     = "protected_mode"     // 403: no cluster token on the node and the caller is not loopback
	CodeMethodNotAllowed  = "method_not_allowed" // 405
	CodeNoSuchEndpoint    = "no_such_endpoint"   // 404: unknown path (not a missing key)
	CodeNotFound          = "not_found"          // 404: the key is absent
	CodeNotLeader         = "not_leader"         // 307: a follower was sent a write; Location names the leader
	CodeQuorum            = "quorum_not_reached" // 503: fewer than W (or R) copies answered; Acks and Required say how many
	CodeConfigIncomplete  = "config_incomplete"  // 503: a PUT /config not every node confirmed; Nodes has each outcome
	CodeShuttingDown      = "shutting_down"      // 503
	CodeNotReady          = "catching_up"        // 503: the node is still catching up after a start
	CodeStorage           = "storage_failure"    // 503: the write-ahead log failed; the node acknowledges nothing more
	CodeLeaderUnavailable = "leader_unavailable" // 503: no leader is known (an election is under way) or it cannot be reached
	CodeLeaderCatchingUp  = "leader_catching_up" // 503: a newly elected leader copies state before it accepts writes (nothing applied)
	CodeStaleTerm         = "stale_term"         // 409: node-to-node only: an update from a deposed leader
	CodeTimeout           = "timeout"            // 503: coordination ran out of the node's request timeout
	CodeInternal          = "internal"           // 500: a bug

	// CodeBadResponse is produced by this client, never sent by a server:
	// a response it could not read (a success status with a body that is
	// not the expected JSON, or a body cut short).
	CodeBadResponse = "bad_response"
)

// Sentinel errors, matched with errors.Is against the errors this package
// returns. Each matches one or more codes (see Error.Is).
var (
	ErrNotFound          = errors.New("kvdb: key not found")                      // not_found
	ErrQuorum            = errors.New("kvdb: quorum not reached")                 // quorum_not_reached
	ErrNotLeader         = errors.New("kvdb: not the leader")                     // not_leader (a 307 not followed)
	ErrLeaderUnavailable = errors.New("kvdb: leader unavailable")                 // leader_unavailable
	ErrNotReady          = errors.New("kvdb: node not ready")                     // catching_up, leader_catching_up
	ErrShuttingDown      = errors.New("kvdb: node shutting down")                 // shutting_down
	ErrStorage           = errors.New("kvdb: storage failure")                    // storage_failure
	ErrTimeout           = errors.New("kvdb: server timeout")                     // timeout, body_timeout
	ErrConfigIncomplete  = errors.New("kvdb: config change not confirmed by all") // config_incomplete
	ErrBadRequest        = errors.New("kvdb: bad request")                        // bad_request, invalid_utf8, invalid_argument
	ErrInvalidUTF8       = errors.New("kvdb: not valid UTF-8")                    // invalid_utf8
	ErrTooLarge          = errors.New("kvdb: too large")                          // too_large
	ErrUnauthorized      = errors.New("kvdb: unauthorized")                       // unauthorized, protected_mode
	ErrProtectedMode     = errors.New("kvdb: protected mode")                     // protected_mode
	ErrInternal          = errors.New("kvdb: internal server error")              // internal
	ErrBadResponse       = errors.New("kvdb: unreadable response")                // bad_response (client side)

	// ErrNoEndpoint: a call named no node (At) and the Config has no
	// Endpoints.
	ErrNoEndpoint = errors.New("kvdb: no endpoint: give Config.Endpoints or client.At(url)")
)

// Error is an answer from a node that is not the call's success: any
// status other than the expected one (including a 404 for a missing key
// and a 307 that was not followed), or a success the client could not
// read (Code CodeBadResponse). Transport failures (no answer at all) are
// returned as they come from net/http, not as *Error.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the server's machine code ("" if the body carried none, e.g.
	// a proxy's page), or CodeBadResponse.
	Code string
	// Message is the server's "error" text, for people; "" if none.
	Message string
	// Endpoint is the base URL of the node that answered.
	Endpoint string
	// Acks and Required are set for CodeQuorum: the copies that
	// acknowledged and the W or R that was needed.
	Acks, Required int
	// Location and Leader are set for a 307 that was not followed: where
	// to send the write, and the leader's base URL.
	Location, Leader string
	// W, R and Nodes are set for CodeConfigIncomplete: the requested
	// values and each node's outcome ("updated", "failed: ...",
	// "unknown: ...").
	W, R  int
	Nodes map[string]string
	// Err is the underlying failure of a CodeBadResponse, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("kvdb: ")
	if e.Endpoint != "" {
		b.WriteString(e.Endpoint)
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteByte(' ')
		b.WriteString(e.Code)
	}
	switch {
	case e.Message != "":
		b.WriteString(": ")
		b.WriteString(e.Message)
	case e.Err != nil:
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(" ")
		b.WriteString(http.StatusText(e.Status))
	}
	if e.Location != "" {
		b.WriteString(" (Location: ")
		b.WriteString(e.Location)
		b.WriteByte(')')
	}
	return b.String()
}

// Unwrap returns the underlying failure of a bad response.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel errors by Code: each sentinel's comment lists
// the codes it matches.
func (e *Error) Is(target error) bool {
	c := e.Code
	switch target {
	case ErrNotFound:
		return c == CodeNotFound
	case ErrQuorum:
		return c == CodeQuorum
	case ErrNotLeader:
		return c == CodeNotLeader
	case ErrLeaderUnavailable:
		return c == CodeLeaderUnavailable
	case ErrNotReady:
		return c == CodeNotReady || c == CodeLeaderCatchingUp
	case ErrShuttingDown:
		return c == CodeShuttingDown
	case ErrStorage:
		return c == CodeStorage
	case ErrTimeout:
		return c == CodeTimeout || c == CodeBodyTimeout
	case ErrConfigIncomplete:
		return c == CodeConfigIncomplete
	case ErrBadRequest:
		return c == CodeBadRequest || c == CodeInvalidUTF8 || c == CodeInvalidArgument
	case ErrInvalidUTF8:
		return c == CodeInvalidUTF8
	case ErrTooLarge:
		return c == CodeTooLarge
	case ErrUnauthorized:
		return c == CodeUnauthorized || c == CodeProtectedMode
	case ErrProtectedMode:
		return c == CodeProtectedMode
	case ErrInternal:
		return c == CodeInternal
	case ErrBadResponse:
		return c == CodeBadResponse
	}
	return false
}

// StatusOf returns the HTTP status of err's answer (an *Error in its
// chain), or 0 when no answer arrived.
func StatusOf(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status
	}
	return 0
}
