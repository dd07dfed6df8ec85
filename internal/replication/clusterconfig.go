package replication

import (
	"context"
	"errors"
	"io"
	"net"
	"sort"
	"sync"
	"syscall"
)

// Outcomes of a cluster-wide quorum change on one node.
const (
	// OutcomeUpdated: the node confirmed it took the new W and R.
	OutcomeUpdated = "updated"
	// OutcomeFailed: the node certainly did not take it (it could not be
	// reached, or it answered with an error).
	OutcomeFailed = "failed"
	// OutcomeUnknown: the call was sent but no answer came in time; the
	// node may or may not have taken it.
	OutcomeUnknown = "unknown"
)

// setClusterQuorum changes W and R here and then on every peer, in
// parallel, each call bounded by the peer timeout. The values are checked
// before anything changes. The result reports every node's outcome
// truthfully; Complete says whether every node confirmed. ctx bounds the
// whole change; callers that must not be cut short by a client going away
// pass a context detached from the client's.
func (c *core) setClusterQuorum(ctx context.Context, w, r int) (ClusterQuorum, error) {
	if err := checkQuorum(w, r, c.cfg.N()); err != nil {
		return ClusterQuorum{}, err
	}
	if err := c.SetQuorum(w, r); err != nil {
		return ClusterQuorum{}, err
	}
	res := ClusterQuorum{W: w, R: r, N: c.cfg.N(), Updated: []string{c.cfg.Self}, Failed: map[string]string{}, Unknown: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range c.links {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, c.cfg.PeerTimeout)
			defer cancel()
			err := p.SetQuorum(pctx, w, r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				res.Updated = append(res.Updated, p.ID())
			case outcomeUnknown(err):
				res.Unknown[p.ID()] = err.Error()
			default:
				res.Failed[p.ID()] = err.Error()
			}
		})
	}
	wg.Wait()
	sort.Strings(res.Updated[1:])
	return res, nil
}

// outcomeUnknown reports whether a failed call may nevertheless have been
// delivered and applied: it timed out, was cancelled, or lost its
// connection after the request could have been sent. A call that never
// connected (dial errors, refused connections) or that the peer answered
// with an error certainly did not apply.
func outcomeUnknown(err error) bool {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return true
	}
	return false
}
