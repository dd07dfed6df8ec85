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

func TestSetBodyIsValidJSON(t *testing.T) {
	for _, c := range []struct{ key, value string }{
		{"key00000001", "abcdefghij"},
		{"", ""},
		{`q"uo\te`, "line\nbreak\ttab\x01ctl"},
		{"ünïcödé ✓", "日本語"},
		{"bad\xffutf8", "x"},
	} {
		body := appendSetBody(nil, c.key, []byte(c.value))
		var got struct{ Key, Value string }
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		want := struct{ Key, Value string }{c.key, c.value}
		// encoding/json's own reading of the original strings (invalid
		// UTF-8 becomes U+FFFD on both sides).
		ref, _ := json.Marshal(want)
		_ = json.Unmarshal(ref, &want)
		if got != want {
			t.Errorf("body %s decodes to %+v, want %+v", body, got, want)
		}
	}
}

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
				w.WriteHeader(http.StatusOK)
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
			case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/get/"):
				w.Write([]byte(`{"value":"v"}`))
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
