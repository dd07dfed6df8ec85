package resp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kvdb/kvdb/internal/replication"
)

// Error is an error reply: Prefix is its first word (ERR, NOREPLICAS,
// READONLY, ...), what clients branch on; Msg the rest.
type Error struct {
	Prefix string
	Msg    string
}

func (e *Error) Error() string { return e.Prefix + " " + e.Msg }

func errorf(prefix, format string, args ...any) *Error {
	return &Error{Prefix: prefix, Msg: fmt.Sprintf(format, args...)}
}

// errSyntax is Redis's answer to options it does not understand.
var errSyntax = &Error{Prefix: "ERR", Msg: "syntax error"}

// mapError turns a backend error into the reply a Redis client expects,
// in one place (as classify does for HTTP):
//
//	quorum not reached          NOREPLICAS Not enough good replicas to write. (how many acknowledged)
//	follower asked to write     READONLY You can't write against a read only replica. (leader: id addr)
//	no leader reachable         CLUSTERDOWN ...
//	new leader catching up      TRYAGAIN ...
//	node catching up at start   LOADING ...
//	write-ahead log failed      MISCONF ...
//	anything else               ERR ...
//
// go-redis retries NOREPLICAS, READONLY, CLUSTERDOWN, TRYAGAIN and LOADING
// by default (MaxRetries); redis-cli prints them.
func (s *Server) mapError(err error, op string) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	switch {
	case errors.Is(err, replication.ErrQuorum):
		if qe, ok := errors.AsType[*replication.QuorumError](err); ok {
			what := "write"
			if qe.Op == "read" {
				what = "read"
			}
			detail := fmt.Sprintf("%d of %d required copies acknowledged (n=%d)", qe.Acks, qe.Required, qe.N)
			if qe.Phase != "" {
				detail = fmt.Sprintf("%d of %d required copies answered in its %s (n=%d)", qe.Acks, qe.Required, qe.Phase, qe.N)
			}
			if what == "write" {
				detail += "; the write may still be applied on the copies that took it"
			}
			return errorf("NOREPLICAS", "Not enough good replicas to %s: %s", what, detail)
		}
		return errorf("NOREPLICAS", "Not enough good replicas to %s: %v", op, err)
	case errors.Is(err, replication.ErrNotLeader):
		leader, addr := "", ""
		if nl, ok := errors.AsType[*replication.NotLeaderError](err); ok {
			leader, addr = nl.LeaderID, nl.LeaderURL
			if a := s.cfg.Addrs[nl.LeaderID]; a != "" {
				addr = a
			}
		}
		if leader == "" {
			return errorf("CLUSTERDOWN", "no leader accepts writes now; retry shortly (%v)", err)
		}
		return errorf("READONLY", "You can't write against a read only replica. (leader: %s %s)", leader, addr)
	case errors.Is(err, replication.ErrLeaderUnavailable):
		return errorf("CLUSTERDOWN", "%v", err)
	case errors.Is(err, replication.ErrLeaderCatchingUp):
		return errorf("TRYAGAIN", "the new leader is catching up before it accepts writes; retry shortly")
	case errors.Is(err, replication.ErrNotReady):
		return errorf("LOADING", "kvdb is catching up from its peers before it serves clients")
	case errors.Is(err, replication.ErrStaleTerm):
		return errorf("TRYAGAIN", "this node was deposed as leader: %v", err)
	case errors.Is(err, replication.ErrStorage):
		return errorf("MISCONF", "kvdb cannot persist updates to its write-ahead log; it acknowledges nothing until restarted: %v", err)
	case errors.Is(err, replication.ErrClosed):
		return errorf("ERR", "kvdb is shutting down")
	case errors.Is(err, replication.ErrInvalid):
		return errorf("ERR", "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return errorf("ERR", "%s timed out after %v (a write may or may not have been applied)", op, s.cfg.RequestTimeout)
	case errors.Is(err, context.Canceled):
		return errorf("ERR", "kvdb is shutting down")
	}
	s.cfg.Logger.Error("RESP command failed", "op", op, "err", err)
	return errorf("ERR", "internal error: %v", err)
}

// reply text cannot hold line breaks.
var lineBreaks = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ")

func (e *Error) wire() string { return lineBreaks.Replace(e.Prefix + " " + e.Msg) }
