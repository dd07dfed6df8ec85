package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeNodes serves /set and /get like kvdb: node 0 is the leader; a write
// to a follower is redirected.
func fakeNodes(t *testing.T, n int) (urls []string, hits func() map[string]int) {
	var mu sync.Mutex
	counts := map[string]int{}
	for i := range n {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			counts[r.Method+" "+strings.SplitN(r.URL.Path, "/", 3)[1]+" "+string(rune('0'+i))]++
			mu.Unlock()
			switch {
			case r.URL.Path == "/health":
				w.Write([]byte(`{"status":"ok","node":"n","mode":"leader-follower","role":"leader","w":5,"r":1,"n":5}`))
			case r.Method == http.MethodPost && r.URL.Path == "/set":
				if i != 0 {
					http.Redirect(w, r, "http://leader/set", http.StatusTemporaryRedirect)
					return
				}
				var req struct{ Key, Value string }
				body, _ := io.ReadAll(r.Body)
				if err := json.Unmarshal(body, &req); err != nil || req.Key == "" {
					http.Error(w, "bad", http.StatusBadRequest)
					return
				}
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte(`{"key":"k","version":1,"node":"n","acks":5,"w":5}`))
			case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/get/"):
				w.Write([]byte(`{"key":"k","value":"v","version":1,"node":"n"}`))
			default:
				http.NotFound(w, r)
			}
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	return urls, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range counts {
			out[k] = v
		}
		return out
	}
}

func TestKVDBTargetRoutesWritesToLeaderAndReadsRoundRobin(t *testing.T) {
	urls, hits := fakeNodes(t, 3)
	tg := NewKVDBTarget(urls, false, 4)
	defer tg.Close()
	ctx := context.Background()
	if err := tg.WaitReady(ctx, 5e9); err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if err := tg.Op(ctx, true, "k", []byte("v")); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := tg.Op(ctx, false, "k", nil); err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	h := hits()
	if h["POST set 0"] != 6 || h["POST set 1"]+h["POST set 2"] != 0 {
		t.Errorf("writes: %v; want all 6 on the leader", h)
	}
	for i := range 3 {
		if h["GET get "+string(rune('0'+i))] == 0 {
			t.Errorf("node %d got no read: %v", i, h)
		}
	}
}

func TestKVDBTargetCountsRedirectAsError(t *testing.T) {
	urls, _ := fakeNodes(t, 2)
	// Leaderless routing sends writes to every node; the fake follower
	// answers 307, which must fail, not be followed.
	tg := NewKVDBTarget(urls, true, 2)
	defer tg.Close()
	var failed int
	for range 4 {
		if err := tg.Op(context.Background(), true, "k", []byte("v")); err != nil {
			if !strings.Contains(err.Error(), "307") {
				t.Errorf("error %v, want status 307", err)
			}
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("%d of 4 round-robin writes failed, want the 2 sent to the follower", failed)
	}
}

// BenchmarkKVDBTargetOp is the client-side cost of one operation through
// the public client against a node that answers at once (a canned 201 or
// 200): what the benchmark's load generator spends per request.
func BenchmarkKVDBTargetOp(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"key":"key00000001","version":12345,"node":"node1","acks":5,"w":5}`+"\n")
			return
		}
		_, _ = io.WriteString(w, `{"key":"key00000001","value":"`+strings.Repeat("abcdefghij", 10)+`","version":12345,"node":"node1"}`+"\n")
	}))
	defer srv.Close()
	for _, write := range []bool{false, true} {
		b.Run(map[bool]string{false: "get", true: "set"}[write], func(b *testing.B) {
			tg := NewKVDBTarget([]string{srv.URL}, false, 8)
			defer tg.Close()
			value := []byte(strings.Repeat("abcdefghij", 10))
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := tg.Op(context.Background(), write, "key00000001", value); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
