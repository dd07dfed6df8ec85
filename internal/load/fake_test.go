package load

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeStore is a linearizable in-memory register per key, shared by the
// fake nodes that see it.
type fakeStore struct {
	mu      sync.Mutex
	data    map[string]fakeEntry
	version uint64
}

type fakeEntry struct {
	value   string
	version uint64
}

func newFakeStore() *fakeStore { return &fakeStore{data: map[string]fakeEntry{}} }

// fakeNode is an httptest server speaking the client API.
type fakeNode struct {
	*httptest.Server
	store *fakeStore // nil: a node that never receives data (always 404)
	// serve, if set, runs before each /set and /get (e.g. to sleep).
	serve func()
	// notReady makes /health answer 503 "catching-up".
	notReady     atomic.Bool
	healthChecks atomic.Int64
	inFlight     atomic.Int64
	peak         atomic.Int64
	requests     atomic.Int64
}

func newFakeNode(t *testing.T, store *fakeStore, role string, serve func()) *fakeNode {
	t.Helper()
	n := &fakeNode{store: store, serve: serve}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		n.healthChecks.Add(1)
		status, code := "ok", 200
		if n.notReady.Load() {
			status, code = "catching-up", 503
		}
		writeJSON(w, code, map[string]any{"status": status, "node": "fake", "mode": "leader-follower", "role": role, "w": 1, "r": 1, "n": 1})
	})
	mux.HandleFunc("POST /set", n.track(n.set))
	mux.HandleFunc("GET /get/{key}", n.track(n.get))
	mux.HandleFunc("DELETE /delete/{key}", n.track(n.del))
	n.Server = httptest.NewServer(mux)
	t.Cleanup(n.Close)
	return n
}

func (n *fakeNode) track(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.requests.Add(1)
		cur := n.inFlight.Add(1)
		defer n.inFlight.Add(-1)
		for {
			p := n.peak.Load()
			if cur <= p || n.peak.CompareAndSwap(p, cur) {
				break
			}
		}
		if n.serve != nil {
			n.serve()
		}
		h(w, r)
	}
}

func (n *fakeNode) set(w http.ResponseWriter, r *http.Request) {
	var body struct{ Key, Value string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Key == "" {
		writeJSON(w, 400, map[string]string{"error": "bad request", "code": "bad_request"})
		return
	}
	n.store.mu.Lock()
	n.store.version++
	v := n.store.version
	n.store.data[body.Key] = fakeEntry{body.Value, v}
	n.store.mu.Unlock()
	writeJSON(w, 201, map[string]any{"key": body.Key, "version": v, "node": "fake"})
}

// del deletes the key (a missing key is fine, as on a real node).
func (n *fakeNode) del(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	n.store.mu.Lock()
	n.store.version++
	v := n.store.version
	delete(n.store.data, key)
	n.store.mu.Unlock()
	writeJSON(w, 200, map[string]any{"key": key, "version": v, "node": "fake"})
}

func (n *fakeNode) get(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	var e fakeEntry
	ok := false
	if n.store != nil {
		n.store.mu.Lock()
		e, ok = n.store.data[key]
		n.store.mu.Unlock()
	}
	if !ok {
		writeJSON(w, 404, map[string]string{"error": "key not found", "code": "not_found"})
		return
	}
	writeJSON(w, 200, map[string]any{"key": key, "value": e.value, "version": e.version, "node": "fake"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// urls lists the nodes' URLs.
func urls(nodes ...*fakeNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.URL
	}
	return out
}

// testConfig is a short run against nodes, writing into a temp dir.
func testConfig(t *testing.T, nodes []string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Nodes = nodes
	cfg.Duration = time.Second
	cfg.QPS = 100
	cfg.Timeout = 5 * time.Second
	cfg.OutDir = t.TempDir()
	cfg.Check.Timeout = 10 * time.Second
	cfg.ReadyWait = 2 * time.Second
	return cfg
}
