package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var leaderHits atomic.Int64
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { leaderHits.Add(1) }))
	defer leader.Close()
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, leader.URL+"/set", http.StatusTemporaryRedirect)
	}))
	defer follower.Close()
	c := NewClient(NewHTTPClient(1))
	defer c.CloseIdle()
	r := c.Set(context.Background(), follower.URL, "k", "v")
	if r.Status != 307 || !strings.Contains(r.Err, leader.URL) || leaderHits.Load() != 0 {
		t.Fatalf("reply %+v, leader hits %d; want the 307 recorded, not followed", r, leaderHits.Load())
	}
}

func TestClientReplies(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /get/{key}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("key") {
		case "a b/c?d%":
			writeJSON(w, 200, map[string]any{"key": "a b/c?d%", "value": "", "version": uint64(1) << 60, "node": "node2"})
		case "absent":
			writeJSON(w, 404, map[string]string{"error": "key not found", "code": "not_found"})
		case "endpoint":
			writeJSON(w, 404, map[string]string{"error": "no such endpoint", "code": "no_such_endpoint"})
		case "quorum":
			writeJSON(w, 503, map[string]string{"error": "read quorum not reached: 1 of 3", "code": "quorum_not_reached"})
		case "garbled":
			w.WriteHeader(200)
			w.Write([]byte("{"))
		case "slow":
			<-r.Context().Done()
		default:
			http.Error(w, "unexpected key "+r.PathValue("key"), 500)
		}
	})
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, map[string]any{"key": "k", "version": 7, "node": "node1", "coordinator": "node1"})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := NewClient(NewHTTPClient(4))
	defer c.CloseIdle()
	ctx := context.Background()

	tests := []struct {
		key  string
		want Reply
	}{
		{"a b/c?d%", Reply{Status: 200, Value: "", Version: 1 << 60, Node: "node2"}},
		{"absent", Reply{Status: 404}},
		// Only the not_found code means an absent key.
		{"endpoint", Reply{Status: 404, Err: "no such endpoint"}},
		{"quorum", Reply{Status: 503, Err: "read quorum not reached: 1 of 3"}},
	}
	for _, tt := range tests {
		if got := c.Get(ctx, srv.URL, tt.key); got != tt.want {
			t.Errorf("get %q = %+v, want %+v", tt.key, got, tt.want)
		}
	}
	if got := c.Get(ctx, srv.URL, "garbled"); got.Status != 200 || !strings.HasPrefix(got.Err, "bad response") {
		t.Errorf("garbled body: %+v", got)
	}
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if got := c.Get(tctx, srv.URL, "slow"); got.Status != 0 || !strings.HasPrefix(got.Err, "timeout: ") {
		t.Errorf("slow: %+v, want a timeout", got)
	}
	if got := c.Set(ctx, srv.URL, "k", "v"); got != (Reply{Status: 201, Version: 7, Node: "node1"}) {
		t.Errorf("set: %+v", got)
	}
	srv.Close()
	if got := c.Get(ctx, srv.URL, "absent"); got.Status != 0 || !strings.HasPrefix(got.Err, "network: ") {
		t.Errorf("closed server: %+v, want a network error", got)
	}
}
