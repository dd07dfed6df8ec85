package client_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/kvdb/kvdb/client"
)

// Delete sends DELETE /delete/{escaped key} with ?w=, follows a follower's
// 307 to the leader (method and path kept), retries the 503s a write
// retries, and returns the tombstone's version.
func TestDelete(t *testing.T) {
	var leaderHits, followerHits atomic.Int64
	leader := server(t, func(w http.ResponseWriter, r *http.Request) {
		n := leaderHits.Add(1)
		if r.Method != http.MethodDelete || r.URL.EscapedPath() != "/delete/a%20b%2Fc" || r.URL.RawQuery != "w=3" {
			writeJSON(w, 400, map[string]string{"error": r.Method + " " + r.URL.String(), "code": "bad_request"})
			return
		}
		if n == 1 {
			writeJSON(w, 503, map[string]string{"error": "leader catching up", "code": "leader_catching_up"})
			return
		}
		writeJSON(w, 200, map[string]any{"key": "a b/c", "version": 12, "node": "node1", "acks": 3, "w": 3})
	})
	follower := server(t, func(w http.ResponseWriter, r *http.Request) {
		followerHits.Add(1)
		w.Header().Set("Location", leader.URL+r.URL.RequestURI())
		writeJSON(w, 307, map[string]string{"error": "not the leader", "code": "not_leader", "leader": leader.URL})
	})
	c := newClient(t, client.Config{}, follower.URL)
	ctx := context.Background()
	res, err := c.Delete(ctx, "a b/c", client.WithW(3))
	want := client.DeleteResult{Key: "a b/c", Version: 12, Node: "node1", Acks: 3, W: 3, Endpoint: leader.URL}
	if err != nil || res != want || leaderHits.Load() != 2 {
		t.Fatalf("delete = %+v, %v after %d leader hits; want %+v", res, err, leaderHits.Load(), want)
	}
	_, err = c.Delete(ctx, "a b/c", client.WithW(3), client.NoRedirect())
	if e, ok := errors.AsType[*client.Error](err); !ok || !errors.Is(err, client.ErrNotLeader) || e.Location != leader.URL+"/delete/a%20b%2Fc?w=3" {
		t.Fatalf("NoRedirect: %v", err)
	}
}

// Delete's errors are a write's: a quorum failure is a 503 with its code,
// retried only as the policy says; a bad key is a 400, not retried.
func TestDeleteErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		wantHits int64
		wantErr  error
	}{
		{"quorum", 503, `{"error":"delete quorum not reached: 1 of 5","code":"quorum_not_reached","acks":1,"required":5}`, 1, client.ErrQuorum},
		{"bad key", 400, `{"error":"key must not be empty","code":"bad_request"}`, 1, client.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int64
			s := server(t, answer(&hits, tt.status, tt.body))
			_, err := newClient(t, client.Config{}, s.URL).Delete(context.Background(), "k")
			if !errors.Is(err, tt.wantErr) || client.StatusOf(err) != tt.status || hits.Load() != tt.wantHits {
				t.Fatalf("err %v after %d requests, want %v (%d) after %d", err, hits.Load(), tt.wantErr, tt.status, tt.wantHits)
			}
		})
	}
}
