package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kvdb/kvdb/internal/errcode"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

// classify gives every replication sentinel the code that errcode says
// stands for it, so a peer decoding the code gets the same sentinel back.
func TestClassifyAgreesWithErrcode(t *testing.T) {
	for _, c := range errcode.Codes() {
		s := errcode.Sentinel(c)
		if _, got := classify(fmt.Errorf("wrapped: %w", s)); got != c {
			t.Errorf("classify(%v) = %q, errcode says %q", s, got, c)
		}
	}
}

// A node that is catching up answers its peers with the catching_up code,
// on /health and on /internal/snapshot, and the HTTP peer turns both into
// replication.ErrNotReady: by the code, not the message.
func TestCatchingUpCodeReachesPeer(t *testing.T) {
	rep := newFakeRep(replication.Leaderless)
	rep.catchingUp = true
	ts := httptest.NewServer(newTestServer(t, rep, nil))
	defer ts.Close()
	p := transport.NewHTTPPeer("n1", ts.URL, "", ts.Client(), transport.Limits{MaxKeyBytes: testMaxKey, MaxValueBytes: testMaxValue})
	ctx := context.Background()
	snapErr := p.Snapshot(ctx, 0, func(replication.Update) error { return nil })
	for op, err := range map[string]error{"probe": p.Probe(ctx), "snapshot": snapErr} {
		var se *transport.StatusError
		if !errors.As(err, &se) || se.ErrCode != errcode.CatchingUp || !errors.Is(err, replication.ErrNotReady) {
			t.Errorf("%s: %v, want a 503 with code %q matching ErrNotReady", op, err, errcode.CatchingUp)
		}
	}
	rep.catchingUp = false
	if err := p.Probe(ctx); err != nil {
		t.Fatalf("probe after catch-up: %v", err)
	}
}

// A write that missed its quorum because peers know a newer term is a 503
// quorum error to its client (its outcome is unknown: the deposed leader
// applied it), not the peers' node-to-node 409.
func TestQuorumErrorCausedByStaleTerm(t *testing.T) {
	err := &replication.QuorumError{Op: "write", Acks: 1, Required: 3, N: 5,
		Cause: &replication.StaleTermError{Term: 2, Current: 3}}
	if status, code := classify(err); status != http.StatusServiceUnavailable || code != errcode.QuorumNotReached {
		t.Fatalf("classify = %d %s, want 503 %s", status, code, errcode.QuorumNotReached)
	}
	if status, code := classify(&replication.StaleTermError{Term: 2, Current: 3}); status != http.StatusConflict || code != errcode.StaleTerm {
		t.Fatalf("a replica's refusal: %d %s, want 409 %s", status, code, errcode.StaleTerm)
	}
}
