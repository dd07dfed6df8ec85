package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/store"
)

// fakeRep is an in-memory Backend: one node's map, versions
// counted 1, 2, 3, ..., quorum checks as the real one does them, and
// injectable errors.
type fakeRep struct {
	mu       sync.Mutex
	data     map[string]store.Entry
	version  uint64
	info     replication.Info
	writeErr error             // returned by Write when set
	readErr  error             // returned by Read when set
	failed   map[string]string // peers SetClusterQuorum reports failed
	unknown  map[string]string // and unknown
	// applyHook, if set, runs before ApplyReplica(s) applies and before
	// ReadReplica reads (outside the lock); its error is returned.
	applyHook func(ctx context.Context) error
	lastOpt   replication.Options
	lastCtx   context.Context
	// lastCtxErr is lastCtx.Err() when Write or Read was called.
	lastCtxErr error
	applied    []replication.Update
	// catchingUp makes Ready false, as a node that just started.
	catchingUp bool
}

func newFakeRep(mode replication.Mode) *fakeRep {
	inf := replication.Info{Node: "n1", Mode: mode, W: 5, R: 1, N: 5, Delays: replication.PaperDelays()}
	if mode == replication.Leaderless {
		inf.Role = "peer"
	} else {
		inf.Role, inf.Leader = "leader", "n1"
	}
	return &fakeRep{data: map[string]store.Entry{}, info: inf}
}

func (f *fakeRep) check(w, r int) error {
	if w < 1 || w > f.info.N || r < 1 || r > f.info.N {
		return fmt.Errorf("%w: w=%d r=%d outside 1..%d", replication.ErrInvalid, w, r, f.info.N)
	}
	return nil
}

func (f *fakeRep) effective(o replication.Options) (int, int, error) {
	w, r := f.info.W, f.info.R
	if o.W != 0 {
		w = o.W
	}
	if o.R != 0 {
		r = o.R
	}
	return w, r, f.check(w, r)
}

func (f *fakeRep) Write(ctx context.Context, key, value string, o replication.Options) (replication.WriteResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastOpt, f.lastCtx, f.lastCtxErr = o, ctx, ctx.Err()
	if f.writeErr != nil {
		return replication.WriteResult{}, f.writeErr
	}
	w, _, err := f.effective(o)
	if err != nil {
		return replication.WriteResult{}, err
	}
	f.version++
	f.data[key] = store.Entry{Value: value, Version: f.version}
	return replication.WriteResult{Key: key, Version: f.version, Coordinator: f.info.Node, Acks: w, W: w}, nil
}

func (f *fakeRep) Delete(ctx context.Context, key string, o replication.Options) (replication.WriteResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastOpt, f.lastCtx, f.lastCtxErr = o, ctx, ctx.Err()
	if f.writeErr != nil {
		return replication.WriteResult{}, f.writeErr
	}
	w, _, err := f.effective(o)
	if err != nil {
		return replication.WriteResult{}, err
	}
	f.version++
	f.data[key] = store.Entry{Version: f.version, Deleted: true}
	return replication.WriteResult{Key: key, Version: f.version, Coordinator: f.info.Node, Acks: w, W: w}, nil
}

func (f *fakeRep) Read(ctx context.Context, key string, o replication.Options) (replication.ReadResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastOpt, f.lastCtx, f.lastCtxErr = o, ctx, ctx.Err()
	if f.readErr != nil {
		return replication.ReadResult{}, f.readErr
	}
	_, r, err := f.effective(o)
	if err != nil {
		return replication.ReadResult{}, err
	}
	e, ok := f.data[key]
	if !ok || e.Deleted {
		return replication.ReadResult{}, fmt.Errorf("%q: %w", key, replication.ErrNotFound)
	}
	return replication.ReadResult{Key: key, Value: e.Value, Version: e.Version, Node: f.info.Node, Copies: r}, nil
}

func (f *fakeRep) LocalRead(key string) (store.Entry, bool) {
	e, ok := f.copyOf(key)
	if e.Deleted {
		return store.Entry{}, false
	}
	return e, ok
}

// copyOf returns the entry held for key, tombstones included.
func (f *fakeRep) copyOf(key string) (store.Entry, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.data[key]
	return e, ok
}

func (f *fakeRep) ApplyReplica(ctx context.Context, u replication.Update) error {
	if f.applyHook != nil {
		if err := f.applyHook(ctx); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, u)
	if cur, ok := f.data[u.Key]; !ok || cur.Version < u.Version {
		f.data[u.Key] = store.Entry{Value: u.Value, Version: u.Version, Deleted: u.Deleted}
	}
	return nil
}

func (f *fakeRep) ReadReplica(ctx context.Context, key string) (store.Entry, bool, error) {
	if f.applyHook != nil {
		if err := f.applyHook(ctx); err != nil {
			return store.Entry{}, false, err
		}
	}
	e, ok := f.copyOf(key)
	return e, ok, nil
}

func (f *fakeRep) SetQuorum(w, r int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(w, r); err != nil {
		return err
	}
	f.info.W, f.info.R = w, r
	return nil
}

func (f *fakeRep) SetClusterQuorum(ctx context.Context, w, r int) (replication.ClusterQuorum, error) {
	if err := f.SetQuorum(w, r); err != nil {
		return replication.ClusterQuorum{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return replication.ClusterQuorum{W: w, R: r, N: f.info.N, Updated: []string{"n1", "n2"}, Failed: f.failed, Unknown: f.unknown}, nil
}

func (f *fakeRep) Info() replication.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.info
}

func (f *fakeRep) Quorums() (w, r int) {
	inf := f.Info()
	return inf.W, inf.R
}

func (f *fakeRep) Pending() int { return 0 }

func (f *fakeRep) Keys() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.data {
		if !e.Deleted {
			n++
		}
	}
	return n
}

func (f *fakeRep) Tombstones() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.data {
		if e.Deleted {
			n++
		}
	}
	return n
}

func (f *fakeRep) Close(context.Context) error { return nil }

func (f *fakeRep) Hints() int { return 0 }

func (f *fakeRep) ApplyReplicas(ctx context.Context, us []replication.Update) error {
	for _, u := range us {
		if err := f.ApplyReplica(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeRep) Ready() bool { return !f.catchingUp }

func (f *fakeRep) CatchUp(context.Context) error { f.catchingUp = false; return nil }

func (f *fakeRep) Snapshot(_ uint64, fn func(replication.Update) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, e := range f.data {
		if err := fn(replication.Update{Key: k, Value: e.Value, Version: e.Version, Deleted: e.Deleted}); err != nil {
			return err
		}
	}
	return nil
}

var _ Backend = (*fakeRep)(nil)

// Small limits so that the size checks are cheap to reach.
const (
	testMaxKey   = 16
	testMaxValue = 64
	testMaxBody  = 128
)

func newTestServer(t testing.TB, rep *fakeRep, mut func(*Config)) *Server {
	t.Helper()
	cfg := Config{MaxKeyBytes: testMaxKey, MaxValueBytes: testMaxValue, MaxBodyBytes: testMaxBody, RequestTimeout: time.Second}
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg, rep)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	return s
}

type request struct {
	method, target, body string
	header               map[string]string
	// remote is the caller's address (default a loopback one, as a peer
	// on the same machine).
	remote string
}

func do(s *Server, r request) *httptest.ResponseRecorder {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req := httptest.NewRequest(r.method, r.target, body)
	req.RemoteAddr = "127.0.0.1:40000"
	if r.remote != "" {
		req.RemoteAddr = r.remote
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// decode unmarshals a JSON response body into a generic map.
func decode(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json (body %q)", ct, rec.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", rec.Body.String(), err)
	}
	return m
}

// wantError checks a JSON error response.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, code int) map[string]any {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status %d, want %d (body %q)", rec.Code, code, rec.Body.String())
	}
	m := decode(t, rec)
	if msg, _ := m["error"].(string); msg == "" {
		t.Fatalf("error body %q has no \"error\" message", rec.Body.String())
	}
	return m
}

func setBody(key, value string) string {
	b, _ := json.Marshal(map[string]string{"key": key, "value": value})
	return string(b)
}

func TestSet(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		target string
		body   string
		code   int
		errHas string // for errors: a word the message must contain
	}{
		{"ok", "/set", `{"key":"k","value":"v"}`, 201, ""},
		{"empty string value", "/set", `{"key":"k","value":""}`, 201, ""},
		{"unknown fields ignored", "/set", `{"key":"k","value":"v","ttl":3}`, 201, ""},
		{"trailing whitespace", "/set", "{\"key\":\"k\",\"value\":\"v\"}\n\t ", 201, ""},
		{"key at limit", "/set", setBody(long(testMaxKey), "v"), 201, ""},
		{"value at limit", "/set", setBody("k", long(testMaxValue)), 201, ""},
		{"w override", "/set?w=2", `{"key":"k","value":"v"}`, 201, ""},
		{"empty key", "/set", `{"key":"","value":"v"}`, 400, "key"},
		{"missing key", "/set", `{"value":"v"}`, 400, "key"},
		{"missing value", "/set", `{"key":"k"}`, 400, "value"},
		{"null value", "/set", `{"key":"k","value":null}`, 400, "value"},
		{"number value", "/set", `{"key":"k","value":5}`, 400, "JSON"},
		{"broken JSON", "/set", `{"key":"k","value":`, 400, "JSON"},
		{"not an object", "/set", `["k","v"]`, 400, "JSON"},
		{"empty body", "/set", ``, 400, "JSON"},
		{"null body", "/set", `null`, 400, "key"},
		{"trailing garbage", "/set", `{"key":"k","value":"v"} x`, 400, "after"},
		{"two objects", "/set", `{"key":"k","value":"v"}{"key":"k2","value":"v"}`, 400, "after"},
		{"trailing brace", "/set", `{"key":"k","value":"v"}}`, 400, ""},
		{"trailing bracket", "/set", `{"key":"k","value":"v"}]`, 400, ""},
		{"oversized body", "/set", setBody("k", long(testMaxBody)), 413, "bytes"},
		{"oversized body of padding", "/set", `{"key":"k",` + strings.Repeat(" ", testMaxBody) + `"value":"v"}`, 413, "bytes"},
		{"key too long", "/set", setBody(long(testMaxKey+1), "v"), 413, "key"},
		{"value too long", "/set", setBody("k", long(testMaxValue+1)), 413, "value"},
		{"w not a number", "/set?w=abc", `{"key":"k","value":"v"}`, 400, "w="},
		{"w zero", "/set?w=0", `{"key":"k","value":"v"}`, 400, "w="},
		{"w negative", "/set?w=-1", `{"key":"k","value":"v"}`, 400, "w="},
		{"w above n", "/set?w=6", `{"key":"k","value":"v"}`, 400, "w=6"},
		{"r not a number", "/set?r=x", `{"key":"k","value":"v"}`, 400, "r="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := newFakeRep(replication.LeaderFollower)
			s := newTestServer(t, rep, nil)
			rec := do(s, request{method: "POST", target: tt.target, body: tt.body, header: map[string]string{"Content-Type": "application/json"}})
			if tt.code != 201 {
				m := wantError(t, rec, tt.code)
				if msg := m["error"].(string); !strings.Contains(msg, tt.errHas) {
					t.Errorf("error %q does not mention %q", msg, tt.errHas)
				}
				if rep.Keys() != 0 {
					t.Error("a refused set was written")
				}
				return
			}
			if rec.Code != 201 {
				t.Fatalf("status %d, want 201 (body %q)", rec.Code, rec.Body.String())
			}
			var req SetRequest
			if err := json.Unmarshal([]byte(tt.body), &req); err != nil {
				t.Fatal(err)
			}
			m := decode(t, rec)
			if m["key"] != req.Key || m["version"] != 1.0 || m["node"] != "n1" {
				t.Fatalf("body %v, want key %q, version 1, node n1", m, req.Key)
			}
			if _, ok := m["coordinator"]; ok {
				t.Errorf("leader-follower response names a coordinator: %v", m)
			}
			if e, ok := rep.LocalRead(req.Key); !ok || e.Value != *req.Value {
				t.Fatalf("stored %+v, %v; want value %q", e, ok, *req.Value)
			}
			if strings.Contains(tt.target, "w=2") {
				if rep.lastOpt.W != 2 || m["w"] != 2.0 {
					t.Errorf("w override: options %+v, body %v", rep.lastOpt, m)
				}
			}
		})
	}
}

func TestSetLeaderlessNamesCoordinator(t *testing.T) {
	s := newTestServer(t, newFakeRep(replication.Leaderless), nil)
	rec := do(s, request{method: "POST", target: "/set", body: `{"key":"k","value":"v"}`})
	if rec.Code != 201 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	m := decode(t, rec)
	if m["node"] != "n1" || m["coordinator"] != "n1" || m["version"] != 1.0 || m["acks"] != 5.0 || m["w"] != 5.0 {
		t.Fatalf("body %v", m)
	}
}

func TestSetPassesRequestDeadline(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	s := newTestServer(t, rep, func(c *Config) { c.RequestTimeout = 3 * time.Second })
	start := time.Now()
	do(s, request{method: "POST", target: "/set", body: `{"key":"k","value":"v"}`})
	dl, ok := rep.lastCtx.Deadline()
	if !ok || dl.Before(start.Add(2*time.Second)) || dl.After(time.Now().Add(3*time.Second)) {
		t.Fatalf("Write context deadline %v (set %v), want about now+3s", dl, ok)
	}
}

func TestGet(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	for _, k := range []string{"k", "a/b/c", "a/b", "hello world", "✓", "q?x=1", "empty", "%41"} {
		v := "value of " + k
		if k == "empty" {
			v = ""
		}
		if _, err := rep.Write(context.Background(), k, v, replication.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	s := newTestServer(t, rep, nil)
	tests := []struct {
		name, target string
		code         int
		key          string
	}{
		{"path", "/get/k", 200, "k"},
		{"query", "/get?key=k", 200, "k"},
		{"path with slashes", "/get/a/b/c", 200, "a/b/c"},
		{"query with escaped slashes", "/get?key=a%2Fb%2Fc", 200, "a/b/c"},
		{"escaped slash in path", "/get/a%2Fb", 200, "a/b"},
		{"escaped space", "/get/hello%20world", 200, "hello world"},
		{"plus in query is a space", "/get?key=hello+world", 200, "hello world"},
		{"utf-8", "/get/%E2%9C%93", 200, "✓"},
		{"escaped question mark", "/get/q%3Fx=1", 200, "q?x=1"},
		{"escaped percent", "/get/%2541", 200, "%41"},
		{"empty value", "/get/empty", 200, "empty"},
		{"path wins over query", "/get/k?key=missing", 200, "k"},
		{"r override", "/get/k?r=3", 200, "k"},
		{"local_read path", "/local_read/a/b", 200, "a/b"},
		{"local_read query", "/local_read?key=k", 200, "k"},
		{"missing", "/get/nope", 404, ""},
		{"missing by query", "/get?key=nope", 404, ""},
		{"local_read missing", "/local_read/nope", 404, ""},
		{"no key", "/get", 400, ""},
		{"empty path key", "/get/", 400, ""},
		{"empty query key", "/get?key=", 400, ""},
		{"r not a number", "/get/k?r=abc", 400, ""},
		{"r above n", "/get/k?r=6", 400, ""},
		{"key too long", "/get/" + strings.Repeat("k", testMaxKey+1), 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(s, request{method: "GET", target: tt.target})
			if tt.code != 200 {
				wantError(t, rec, tt.code)
				return
			}
			if rec.Code != 200 {
				t.Fatalf("status %d, want 200 (body %q)", rec.Code, rec.Body.String())
			}
			e, _ := rep.LocalRead(tt.key)
			var got GetResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			want := GetResponse{Key: tt.key, Value: e.Value, Version: e.Version, Node: "n1"}
			if got != want {
				t.Fatalf("body %+v, want %+v", got, want)
			}
			// Every field is present, the empty value included.
			m := decode(t, rec)
			for _, f := range []string{"key", "value", "version", "node"} {
				if _, ok := m[f]; !ok {
					t.Errorf("body %v lacks %q", m, f)
				}
			}
		})
	}
	if rec := do(s, request{method: "GET", target: "/get/k?r=3"}); rec.Code != 200 || rep.lastOpt.R != 3 {
		t.Errorf("r override: status %d, options %+v", rec.Code, rep.lastOpt)
	}
}

func TestRouting(t *testing.T) {
	s := newTestServer(t, newFakeRep(replication.LeaderFollower), nil)
	tests := []struct {
		method, target string
		code           int
		allow          []string
	}{
		{"GET", "/nope", 404, nil},
		{"GET", "/", 404, nil},
		{"POST", "/internal/nope", 404, nil},
		{"GET", "/set", 405, []string{"POST"}},
		{"PUT", "/set", 405, []string{"POST"}},
		{"DELETE", "/get/k", 405, []string{"GET"}},
		{"POST", "/get", 405, []string{"GET"}},
		{"POST", "/health", 405, []string{"GET"}},
		{"DELETE", "/config", 405, []string{"GET", "PUT"}},
		{"POST", "/metrics", 405, []string{"GET"}},
		{"GET", "/internal/replicate", 405, []string{"POST"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := do(s, request{method: tt.method, target: tt.target})
			m := wantError(t, rec, tt.code)
			msg := m["error"].(string)
			if !strings.Contains(msg, tt.target) {
				t.Errorf("error %q does not name the path", msg)
			}
			allow := rec.Header().Get("Allow")
			for _, a := range tt.allow {
				if !strings.Contains(allow, a) {
					t.Errorf("Allow %q lacks %s", allow, a)
				}
			}
			if tt.code == 404 && allow != "" {
				t.Errorf("404 with Allow %q", allow)
			}
		})
	}
}

func TestNotLeaderRedirect(t *testing.T) {
	tests := []struct {
		name, leaderURL, target, location string
	}{
		{"plain", "http://leader:8080", "/set", "http://leader:8080/set"},
		{"query kept", "http://leader:8080", "/set?w=2&r=1", "http://leader:8080/set?w=2&r=1"},
		{"published port", "http://203.0.113.5:18080", "/set", "http://203.0.113.5:18080/set"},
		// A member URL may be configured with a trailing slash; the
		// redirect must still land on the leader's /set, not //set.
		{"leader URL with trailing slash", "http://leader:8080/", "/set", "http://leader:8080/set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := newFakeRep(replication.LeaderFollower)
			rep.writeErr = &replication.NotLeaderError{LeaderID: "n1", LeaderURL: tt.leaderURL}
			s := newTestServer(t, rep, nil)
			rec := do(s, request{method: "POST", target: tt.target, body: `{"key":"k","value":"v"}`})
			m := wantError(t, rec, http.StatusTemporaryRedirect)
			if got := rec.Header().Get("Location"); got != tt.location {
				t.Fatalf("Location %q, want %q", got, tt.location)
			}
			if m["leader"] != tt.leaderURL {
				t.Errorf("body leader %v, want %q", m["leader"], tt.leaderURL)
			}
		})
	}
}

func TestQuorumAndClosedErrors(t *testing.T) {
	qe := &replication.QuorumError{Op: "write", Acks: 2, Required: 5, N: 5, Cause: errors.New("peer n3 down")}
	rep := newFakeRep(replication.LeaderFollower)
	rep.writeErr = qe
	rep.readErr = &replication.QuorumError{Op: "read", Acks: 1, Required: 3, N: 5}
	s := newTestServer(t, rep, nil)

	rec := do(s, request{method: "POST", target: "/set", body: `{"key":"k","value":"v"}`})
	m := wantError(t, rec, http.StatusServiceUnavailable)
	if m["acks"] != 2.0 || m["required"] != 5.0 || !strings.Contains(m["error"].(string), "2 of 5") {
		t.Fatalf("write quorum body %v", m)
	}
	rec = do(s, request{method: "GET", target: "/get/k"})
	m = wantError(t, rec, http.StatusServiceUnavailable)
	if m["acks"] != 1.0 || m["required"] != 3.0 {
		t.Fatalf("read quorum body %v", m)
	}
	// A quorum error wrapped further up keeps its numbers.
	rep.writeErr = fmt.Errorf("coordinating: %w", qe)
	m = wantError(t, do(s, request{method: "POST", target: "/set", body: `{"key":"k","value":"v"}`}), 503)
	if m["acks"] != 2.0 {
		t.Fatalf("wrapped quorum body %v", m)
	}
	rep.writeErr = replication.ErrClosed
	wantError(t, do(s, request{method: "POST", target: "/set", body: `{"key":"k","value":"v"}`}), 503)
}

func TestStatusFor(t *testing.T) {
	tests := []struct {
		err  error
		code int
	}{
		{fmt.Errorf("%w: x", errBadRequest), 400},
		{fmt.Errorf("wrapped: %w", replication.ErrInvalid), 400},
		{fmt.Errorf("%w: x", errTooLarge), 413},
		{errUnauthorized, 401},
		{fmt.Errorf("%q: %w", "k", replication.ErrNotFound), 404},
		{&replication.NotLeaderError{LeaderURL: "http://l"}, 307},
		{&replication.QuorumError{Op: "read", Acks: 1, Required: 2, N: 3}, 503},
		{fmt.Errorf("x: %w", replication.ErrClosed), 503},
		// A caller's cancellation is not a server error; a timeout is
		// unavailability; a quorum error that wraps either stays one.
		{fmt.Errorf("apply: %w", context.Canceled), StatusClientClosedRequest},
		{context.DeadlineExceeded, 503},
		{&replication.QuorumError{Op: "write", Acks: 1, Required: 5, N: 5, Cause: context.Canceled}, 503},
		{fmt.Errorf("%w: slow", errBodyTimeout), 408},
		{fmt.Errorf("%w: x", errProtected), 403},
		{&configError{}, 503},
		{errors.New("surprise"), 500},
	}
	for _, tt := range tests {
		if got := statusFor(tt.err); got != tt.code {
			t.Errorf("statusFor(%v) = %d, want %d", tt.err, got, tt.code)
		}
	}
}

func TestClusterToken(t *testing.T) {
	const token = "s3cret"
	right := map[string]string{"Authorization": "Bearer " + token}
	wrong := map[string]string{"Authorization": "Bearer nope"}
	bare := map[string]string{"Authorization": token}
	tests := []struct {
		name   string
		req    request
		code   int
		guards bool // the endpoint needs the token
	}{
		{"replicate", request{method: "POST", target: "/internal/replicate", body: updatesBody(replication.Update{Key: "k", Value: "v", Version: 7})}, 204, true},
		{"internal read", request{method: "GET", target: "/internal/read?key=k"}, 200, true},
		{"internal config", request{method: "PUT", target: "/internal/config", body: `{"w":3,"r":3}`}, 200, true},
		{"put config", request{method: "PUT", target: "/config", body: `{"w":3,"r":3}`}, 200, true},
		{"get config", request{method: "GET", target: "/config"}, 200, false},
		{"get", request{method: "GET", target: "/get/k"}, 200, false},
		{"set", request{method: "POST", target: "/set", body: `{"key":"k2","value":"v"}`}, 201, false},
		{"health", request{method: "GET", target: "/health"}, 200, false},
		{"local_read", request{method: "GET", target: "/local_read/k"}, 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := newFakeRep(replication.LeaderFollower)
			rep.Write(context.Background(), "k", "v", replication.Options{})
			s := newTestServer(t, rep, func(c *Config) { c.ClusterToken = token })
			for _, h := range []map[string]string{nil, wrong, bare} {
				r := tt.req
				r.header = h
				rec := do(s, r)
				if tt.guards {
					wantError(t, rec, http.StatusUnauthorized)
				} else if rec.Code != tt.code {
					t.Errorf("header %v: status %d, want %d (no token needed)", h, rec.Code, tt.code)
				}
			}
			if tt.guards && len(rep.applied) != 0 {
				t.Fatal("an unauthorized replicate was applied")
			}
			r := tt.req
			r.header = right
			if rec := do(s, r); rec.Code != tt.code {
				t.Fatalf("with the token: status %d, want %d (body %q)", rec.Code, tt.code, rec.Body.String())
			}
		})
	}
	// Without a configured token the internal endpoints answer loopback
	// callers (protected mode; see TestProtectedMode).
	rep := newFakeRep(replication.LeaderFollower)
	s := newTestServer(t, rep, nil)
	if rec := do(s, request{method: "POST", target: "/internal/replicate", body: updatesBody(replication.Update{Key: "k", Value: "v", Version: 7})}); rec.Code != 204 {
		t.Fatalf("no token configured, loopback caller: status %d", rec.Code)
	}
}

func TestInternalEndpoints(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	s := newTestServer(t, rep, nil)
	for _, tt := range []struct {
		body string
		code int
	}{
		{updatesBody(replication.Update{Key: "k", Value: "v", Version: 3}), 204},
		{updatesBody(replication.Update{Key: "k", Value: "", Version: 4}), 204},
		{updatesBody(replication.Update{Key: "k", Value: "old", Version: 2}), 204},
		{updatesBody(replication.Update{Key: "k", Value: "v"}), 400},
		{updatesBody(replication.Update{Value: "v", Version: 5}), 400},
		{`{"key":"k","value":"v","version":3}`, 400}, // JSON is no longer spoken
		{`{`, 400},
	} {
		rec := do(s, request{method: "POST", target: "/internal/replicate", body: tt.body})
		if rec.Code != tt.code {
			t.Errorf("replicate %s: status %d, want %d", tt.body, rec.Code, tt.code)
		}
		if tt.code != 204 {
			wantError(t, rec, tt.code)
		}
	}
	if e, _ := rep.LocalRead("k"); e.Version != 4 || e.Value != "" {
		t.Fatalf("after replicates: %+v", e)
	}

	for _, tt := range []struct {
		target string
		want   map[string]any
	}{
		{"/internal/read?key=k", map[string]any{"key": "k", "value": "", "version": 4.0, "found": true}},
		{"/internal/read?key=nope", map[string]any{"key": "nope", "value": "", "version": 0.0, "found": false}},
	} {
		rec := do(s, request{method: "GET", target: tt.target})
		if rec.Code != 200 {
			t.Fatalf("%s: status %d", tt.target, rec.Code)
		}
		m := decode(t, rec)
		for k, v := range tt.want {
			if m[k] != v {
				t.Errorf("%s: %s = %v, want %v", tt.target, k, m[k], v)
			}
		}
	}
	wantError(t, do(s, request{method: "GET", target: "/internal/read"}), 400)

	rec := do(s, request{method: "PUT", target: "/internal/config", body: `{"w":2}`})
	if rec.Code != 200 {
		t.Fatalf("internal config: %d %s", rec.Code, rec.Body)
	}
	if inf := rep.Info(); inf.W != 2 || inf.R != 1 {
		t.Fatalf("after internal config: %+v", inf)
	}
	wantError(t, do(s, request{method: "PUT", target: "/internal/config", body: `{"w":9}`}), 400)
}

func TestHealth(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	rep.Write(context.Background(), "k", "v", replication.Options{})
	s := newTestServer(t, rep, nil)
	rec := do(s, request{method: "GET", target: "/health"})
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	m := decode(t, rec)
	want := map[string]any{
		"status": "ok", "node": "n1", "mode": "leader-follower", "role": "leader", "leader": "n1",
		"w": 5.0, "r": 1.0, "n": 5.0, "delays": "paper", "keys": 1.0, "pending_replication": 0.0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("health %s = %v, want %v", k, m[k], v)
		}
	}
	prof, _ := m["delay_profile"].(map[string]any)
	if prof["name"] != "paper" || prof["sequential"] != true {
		t.Errorf("delay_profile %v", m["delay_profile"])
	}

	ll := newTestServer(t, newFakeRep(replication.Leaderless), nil)
	m = decode(t, do(ll, request{method: "GET", target: "/health"}))
	if m["mode"] != "leaderless" || m["role"] != "peer" {
		t.Errorf("leaderless health %v", m)
	}
	if _, ok := m["leader"]; ok {
		t.Errorf("leaderless health names a leader: %v", m)
	}
}

func TestConfigEndpoint(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	s := newTestServer(t, rep, nil)
	m := decode(t, do(s, request{method: "GET", target: "/config"}))
	if m["w"] != 5.0 || m["r"] != 1.0 || m["n"] != 5.0 || m["mode"] != "leader-follower" {
		t.Fatalf("GET /config %v", m)
	}
	tests := []struct {
		body         string
		code         int
		wantW, wantR float64
	}{
		{`{"w":3,"r":3}`, 200, 3, 3},
		{`{"w":1}`, 200, 1, 3},
		{`{"r":5}`, 200, 1, 5},
		{`{"w":5,"r":1}`, 200, 5, 1},
		{`{"w":6}`, 400, 5, 1},
		{`{"w":0,"r":6}`, 400, 5, 1},
		{`{"w":-1}`, 400, 5, 1},
		{`{"w":0,"r":0}`, 400, 5, 1},
		{`{}`, 400, 5, 1},
		{`{"w":"3"}`, 400, 5, 1},
		{`{"w":3`, 400, 5, 1},
		{`{"w":3} {"w":4}`, 400, 5, 1},
	}
	for _, tt := range tests {
		rec := do(s, request{method: "PUT", target: "/config", body: tt.body})
		if tt.code != 200 {
			wantError(t, rec, tt.code)
		} else {
			if rec.Code != 200 {
				t.Fatalf("PUT %s: status %d %s", tt.body, rec.Code, rec.Body)
			}
			m := decode(t, rec)
			if m["w"] != tt.wantW || m["r"] != tt.wantR {
				t.Errorf("PUT %s answered %v", tt.body, m)
			}
			if u, _ := m["updated"].([]any); len(u) != 2 {
				t.Errorf("PUT %s: updated nodes not reported: %v", tt.body, m)
			}
		}
		if inf := rep.Info(); float64(inf.W) != tt.wantW || float64(inf.R) != tt.wantR {
			t.Fatalf("after PUT %s: w=%d r=%d, want %v %v", tt.body, inf.W, inf.R, tt.wantW, tt.wantR)
		}
	}
}

func TestMetrics(t *testing.T) {
	s := newTestServer(t, newFakeRep(replication.LeaderFollower), nil)
	do(s, request{method: "POST", target: "/set", body: `{"key":"k","value":"v"}`})
	do(s, request{method: "GET", target: "/get/nope"})
	do(s, request{method: "GET", target: "/nope"})
	rec := do(s, request{method: "GET", target: "/metrics"})
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"# TYPE kvdb_http_requests_total counter",
		`kvdb_http_requests_total{code="201",route="set"} 1`,
		`kvdb_http_requests_total{code="404",route="get"} 1`,
		`kvdb_http_requests_total{code="404",route="unknown"} 1`,
		"kvdb_http_request_duration_seconds_bucket",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{MaxKeyBytes: -1},
		{MaxValueBytes: -1},
		{MaxKeyBytes: 10, MaxValueBytes: 10, MaxBodyBytes: 5},
		{RequestTimeout: -time.Second},
	} {
		if _, err := New(cfg, newFakeRep(replication.LeaderFollower)); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func BenchmarkSetHandler(b *testing.B) {
	s := newTestServer(b, newFakeRep(replication.LeaderFollower), func(c *Config) {
		c.MaxKeyBytes, c.MaxValueBytes, c.MaxBodyBytes = 0, 0, 0 // defaults
	})
	body := []byte(`{"key":"user:12345","value":"a value of a typical, moderate length"}`)
	rd := bytes.NewReader(body)
	req := httptest.NewRequest("POST", "/set", rd)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = io.NopCloser(rd)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 201 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkGetHandler(b *testing.B) {
	rep := newFakeRep(replication.LeaderFollower)
	rep.Write(context.Background(), "user:12345", "a value of a typical, moderate length", replication.Options{})
	s := newTestServer(b, rep, nil)
	req := httptest.NewRequest("GET", "/get/user:12345", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// FuzzDecodeSet: DecodeBody never panics, refuses with a bad-request error,
// and accepts only a body that is exactly one valid JSON value.
func FuzzDecodeSet(f *testing.F) {
	for _, seed := range []string{
		`{"key":"k","value":"v"}`,
		`{"key":"k","value":""}`,
		`{"key":"k"}`,
		`{"key":"k","value":null}`,
		` {"key":"k","value":"v"} `,
		`{"key":"k","value":"v"} x`,
		`{"key":"k","value":"v"}{}`,
		`{"key":"k","value":"v"}}`,
		`{"key":"\u00e9\ud83d\ude00","value":"\n"}`,
		`{"key":1}`,
		`[]`,
		`null`,
		``,
		`{`,
		"{\"key\":\"\xff\",\"value\":\"v\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req SetRequest
		err := DecodeBody(body, &req)
		if err != nil {
			if !errors.Is(err, errBadRequest) || statusFor(err) != 400 {
				t.Fatalf("DecodeBody(%q) = %v, want a 400 bad request", body, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("DecodeBody accepted %q, which is not one valid JSON value", body)
		}
		// What was decoded survives a round trip.
		again, _ := json.Marshal(req)
		var back SetRequest
		if err := DecodeBody(again, &back); err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
		if back.Key != req.Key || (back.Value == nil) != (req.Value == nil) || (back.Value != nil && *back.Value != *req.Value) {
			t.Fatalf("round trip %+v -> %s -> %+v", req, again, back)
		}
	})
}

// FuzzHandlers sends arbitrary requests: the server never panics, never
// answers 500, and every error answer is JSON with an "error" message.
func FuzzHandlers(f *testing.F) {
	for _, s := range []struct {
		method, path, body string
		token              bool
	}{
		{"POST", "/set", `{"key":"k","value":"v"}`, false},
		{"POST", "/set?w=2", `{"key":"k","value":""}`, false},
		{"POST", "/set?w=abc", `{"key":"k","value":"v"}`, false},
		{"POST", "/set", `{"key":"k","value":"v"}}`, false},
		{"GET", "/get/k", ``, false},
		{"GET", "/get?key=k&r=9", ``, false},
		{"GET", "/get/a%2Fb", ``, false},
		{"GET", "/local_read/k", ``, false},
		{"GET", "/health", ``, false},
		{"GET", "/config", ``, false},
		{"PUT", "/config", `{"w":3,"r":3}`, true},
		{"PUT", "/config", `{"w":9}`, true},
		{"GET", "/metrics", ``, false},
		{"POST", "/internal/replicate", updatesBody(replication.Update{Key: "k", Value: "v", Version: 9}), true},
		{"POST", "/internal/replicate", updatesBody(replication.Update{Key: "k", Value: "v", Version: 9}), false},
		{"POST", "/internal/replicate-batch", updatesBody(replication.Update{Key: "k", Value: "<&>", Version: 9}, replication.Update{Key: "j", Version: 3}), true},
		{"GET", "/internal/read?key=k", ``, true},
		{"PUT", "/internal/config", `{"r":2}`, true},
		{"DELETE", "/get/k", ``, false},
		{"GET", "/nope/../set", ``, false},
		{"HEAD", "/get/k", ``, false},
		{"OPTIONS", "/set", ``, false},
		{"CONNECT", "/set", ``, false},
		{"GET", "//get//k", ``, false},
	} {
		f.Add(s.method, s.path, []byte(s.body), s.token)
	}
	f.Fuzz(func(t *testing.T, method, path string, body []byte, token bool) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://kvdb.test"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		if token {
			req.Header.Set("Authorization", "Bearer tok")
		}
		rep := newFakeRep(replication.LeaderFollower)
		rep.Write(context.Background(), "k", "v", replication.Options{})
		s := newTestServer(t, rep, func(c *Config) { c.ClusterToken = "tok" })
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code == http.StatusInternalServerError || rec.Code < 100 || rec.Code > 599 {
			t.Fatalf("%s %q: status %d (body %q)", method, path, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 {
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s %q: status %d with body %q, want a JSON error", method, path, rec.Code, rec.Body.String())
			}
		}
	})
}
