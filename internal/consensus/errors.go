package consensus

import (
	"errors"
	"fmt"
)

// The errors of ProposeQuorum. Match them with errors.Is; a *NotLeaderError
// (errors.As) also names the leader.
var (
	// ErrNotLeader: this node is not the leader; the error is a
	// *NotLeaderError naming the leader this node knows. Nothing was
	// proposed.
	ErrNotLeader = errors.New("consensus: not the leader")
	// ErrNoLeader: this node is not the leader and knows of none (an
	// election is under way, or this node is cut off). It does not match
	// ErrNotLeader: there is nobody to send the caller to. Nothing was
	// proposed.
	ErrNoLeader = errors.New("consensus: no leader known")
	// ErrInvalid: W or R outside 1..N. Nothing was proposed.
	ErrInvalid = errors.New("consensus: invalid quorum")
	// ErrLeadershipLost: this node lost its leadership before the entry
	// committed. The outcome is unknown (the error also matches
	// ErrUnknownOutcome): the entry may still be committed by the next
	// leader.
	ErrLeadershipLost = errors.New("consensus: leadership lost while committing")
	// ErrUnknownOutcome: the entry was proposed but its outcome is not
	// known: the wait for its commit ended (the caller's context or
	// ApplyTimeout), or leadership was lost. It may yet be applied.
	ErrUnknownOutcome = errors.New("consensus: outcome unknown")
	// ErrClosed: the node is not running (not started, or closed).
	ErrClosed = errors.New("consensus: node not running")
)

// NotLeaderError is the error of an operation only the leader performs,
// asked of a follower that knows the leader. It matches ErrNotLeader.
type NotLeaderError struct {
	// LeaderID is the leader's member ID.
	LeaderID string
	// LeaderAddr is the leader's raft address (its base URL).
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("consensus: not the leader; the leader is %s (%s)", e.LeaderID, e.LeaderAddr)
}

// Is matches ErrNotLeader.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
