package replication

import (
	"errors"
	"fmt"
)

// Sentinel errors. The HTTP layer maps them to status codes in one place.
var (
	// ErrNotFound: no replica read has the key.
	ErrNotFound = errors.New("key not found")
	// ErrNotLeader: a follower was asked to coordinate a write.
	ErrNotLeader = errors.New("not the leader")
	// ErrQuorum: too few replicas acknowledged in time.
	ErrQuorum = errors.New("quorum not reached")
	// ErrInvalid: a request or setting is out of range.
	ErrInvalid = errors.New("invalid argument")
	// ErrLeaderUnavailable: a follower cannot reach the leader, so it
	// cannot redirect a write anywhere useful.
	ErrLeaderUnavailable = errors.New("leader unavailable")
	// ErrNotReady: the node is still catching up after a start.
	ErrNotReady = errors.New("node is catching up")
	// ErrLeaderCatchingUp: this node was just elected leader and copies the
	// state it needs before it accepts writes (nothing was applied; retry).
	ErrLeaderCatchingUp = errors.New("leader catching up")
	// ErrStaleTerm: a fresh write from a leader of an older term, refused
	// (the leader was deposed). It is permanent: it matches ErrRefused.
	ErrStaleTerm = errors.New("update from a stale term")
	// ErrStorage: the write-ahead log could not persist an update.
	ErrStorage = errors.New("storage failure")
	// ErrClosed: the node is shutting down.
	ErrClosed = errors.New("node is shutting down")
	// ErrRefused: a peer refused an update permanently (an answer that
	// sending it again cannot change, e.g. over the peer's limits). A
	// Peer's errors match it (errors.Is) for such answers; the coordinator
	// then drops the update instead of retrying it.
	ErrRefused = errors.New("peer refused the update permanently")
)

// QuorumError says how many copies answered against how many were needed.
type QuorumError struct {
	Op       string // "write" or "read"
	Phase    string // where it failed, if not the main phase: "version query", "write-back"
	Acks     int    // copies acknowledged, the coordinator's own included
	Required int    // W or R
	N        int
	Cause    error // last peer error seen, if any
}

func (e *QuorumError) Error() string {
	s := fmt.Sprintf("%s quorum not reached: %d of %d required copies acknowledged (n=%d)", e.Op, e.Acks, e.Required, e.N)
	if e.Phase != "" {
		s = fmt.Sprintf("%s quorum not reached in its %s: %d of %d required copies answered (n=%d)", e.Op, e.Phase, e.Acks, e.Required, e.N)
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrQuorum) true.
func (e *QuorumError) Is(target error) bool { return target == ErrQuorum }

// Unwrap returns the last peer error.
func (e *QuorumError) Unwrap() error { return e.Cause }

// NotLeaderError names the leader a follower redirects writes to.
type NotLeaderError struct {
	LeaderID  string
	LeaderURL string
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("not the leader: writes go to %s (%s)", e.LeaderID, e.LeaderURL)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// StaleTermError is a fresh write refused because its leader's term is
// older than the replica's: the sender has been deposed.
type StaleTermError struct {
	Term    uint64 // the update's term
	Current uint64 // the highest term the replica knows
}

func (e *StaleTermError) Error() string {
	return fmt.Sprintf("update from term %d refused: term %d has begun (the sender is no longer the leader)", e.Term, e.Current)
}

// Is makes errors.Is(err, ErrStaleTerm) and errors.Is(err, ErrRefused)
// true: sending it again cannot help.
func (e *StaleTermError) Is(target error) bool { return target == ErrStaleTerm || target == ErrRefused }
