package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Protected mode: without a cluster token, /internal/ and PUT /config
// answer loopback callers only. (The old code accepted any caller.)
func TestProtectedMode(t *testing.T) {
	guarded := []request{
		{method: "POST", target: transport.PathReplicate, body: `{"key":"k","value":"v","version":7}`},
		{method: "POST", target: transport.PathBatch, body: `[{"key":"k","value":"v","version":8}]`},
		{method: "GET", target: transport.PathRead + "?key=k"},
		{method: "PUT", target: transport.PathConfig, body: `{"w":3,"r":3}`},
		{method: "GET", target: transport.PathSnapshot},
		{method: "PUT", target: "/config", body: `{"w":3,"r":3}`},
	}
	open := []request{
		{method: "GET", target: "/get/k"},
		{method: "GET", target: "/local_read/k"},
		{method: "POST", target: "/set", body: `{"key":"k","value":"v"}`},
		{method: "GET", target: "/config"},
		{method: "GET", target: "/health"},
	}
	loopback := []string{"127.0.0.1:5000", "127.8.9.10:1", "[::1]:5000", "[::ffff:127.0.0.1]:5000"}
	remote := []string{"192.0.2.1:5000", "10.0.0.7:8080", "172.18.0.3:40000", "[2001:db8::1]:5000", "[::ffff:10.0.0.1]:1", "localhost:80", "garbage"}
	for _, r := range guarded {
		for _, addr := range remote {
			rep := newFakeRep(replication.LeaderFollower)
			s := newTestServer(t, rep, nil)
			r := r
			r.remote = addr
			rec := do(s, r)
			m := wantError(t, rec, http.StatusForbidden)
			if m["code"] != "protected_mode" || !strings.Contains(m["error"].(string), "--cluster-token") {
				t.Errorf("%s %s from %q: body %v, want a protected-mode explanation", r.method, r.target, addr, m)
			}
			if len(rep.applied) != 0 || rep.info.W != 5 {
				t.Fatalf("%s %s from %q: refused but acted on", r.method, r.target, addr)
			}
		}
		for _, addr := range loopback {
			s := newTestServer(t, newFakeRep(replication.LeaderFollower), nil)
			r := r
			r.remote = addr
			if rec := do(s, r); rec.Code == http.StatusForbidden || rec.Code == http.StatusUnauthorized {
				t.Errorf("%s %s from loopback %q: status %d %s", r.method, r.target, addr, rec.Code, rec.Body)
			}
		}
		// With a token the caller's address does not matter.
		s := newTestServer(t, newFakeRep(replication.LeaderFollower), func(c *Config) { c.ClusterToken = "tok" })
		r := r
		r.remote, r.header = remote[0], map[string]string{"Authorization": "Bearer tok"}
		if rec := do(s, r); rec.Code == http.StatusForbidden || rec.Code == http.StatusUnauthorized {
			t.Errorf("%s %s remote with the token: status %d %s", r.method, r.target, rec.Code, rec.Body)
		}
	}
	for _, r := range open {
		rep := newFakeRep(replication.LeaderFollower)
		rep.Write(context.Background(), "k", "v", replication.Options{})
		s := newTestServer(t, rep, nil)
		r.remote = remote[0]
		if rec := do(s, r); rec.Code/100 != 2 {
			t.Errorf("client endpoint %s %s from a remote caller: status %d", r.method, r.target, rec.Code)
		}
	}
}

// rawExchange sends raw bytes on a fresh connection to addr and returns
// the response and whether the server closed the connection after it.
func rawExchange(t *testing.T, addr, raw string, wait time.Duration) (*http.Response, []byte, bool, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response within %v: %v", wait, err)
	}
	elapsed := time.Since(start)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The server must close: the next read sees EOF, not a timeout.
	_, err = br.ReadByte()
	closed := errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (err != nil && !isTimeout(err))
	return resp, body, closed, elapsed
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// A request whose body never (or only partly) arrives gets 408 within the
// body read timeout, and its connection is closed. The old code had no
// deadline: the connection stayed open for minutes.
func TestBodyReadTimeout(t *testing.T) {
	const limit = 300 * time.Millisecond
	s := newTestServer(t, newFakeRep(replication.LeaderFollower), func(c *Config) { c.BodyReadTimeout = limit })
	ts := httptest.NewServer(s)
	defer ts.Close()
	addr := ts.Listener.Addr().String()
	for _, tt := range []struct{ name, raw string }{
		{"set, no body", "POST /set HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"},
		{"set, part of the body", "POST /set HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"key\":\"k\","},
		{"chunked, no end", "POST /set HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"key\r\n"},
		{"put config", "PUT /config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"},
		{"internal replicate", "POST " + transport.PathReplicate + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, closed, elapsed := rawExchange(t, addr, tt.raw, 10*limit)
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("status %d (%s), want 408", resp.StatusCode, body)
			}
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil || e.Code != "body_timeout" || e.Error == "" {
				t.Errorf("body %q, want a JSON error with code body_timeout", body)
			}
			if elapsed < limit {
				t.Errorf("answered after %v, before the %v deadline", elapsed, limit)
			}
			if !closed {
				t.Errorf("connection left open after the 408")
			}
		})
	}
	// A body that arrives in time is served, and the connection stays
	// usable: the deadline is lifted after the body is read.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 2 {
		body := setBody(fmt.Sprint("k", i), "v")
		fmt.Fprintf(conn, "POST /set HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("request %d on a kept-alive connection: status %d", i, resp.StatusCode)
		}
	}
}

// segmentEscape escapes each path segment of key but keeps its slashes, as
// a client (or curl) that writes the key into the path does.
func segmentEscape(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// Every key set accepts reads back exactly by path. The old code sent
// /get/a//b (and x/../b, ./c, a/./b) through http.ServeMux, which answered
// 301/307 to the cleaned path — another key.
func TestKeysReadBackByPath(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	s := newTestServer(t, rep, func(c *Config) { c.MaxKeyBytes = 64 })
	ts := httptest.NewServer(s)
	defer ts.Close()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	keys := []string{"a//b", "x/../b", "./c", "a/./b", "trailing/", "sp ace", "%2F", "é", "?", "#",
		"b", "a/b", "c", "x", "..", ".", "/lead", "a%2Fb", "+plus", "semi;colon", "q?x=1#f"}
	for i, k := range keys {
		resp, err := hc.Post(ts.URL+"/set", "application/json", strings.NewReader(setBody(k, fmt.Sprint("value-", i))))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("set %q: status %d", k, resp.StatusCode)
		}
	}
	for i, k := range keys {
		want := fmt.Sprint("value-", i)
		for _, target := range []string{
			"/get/" + segmentEscape(k), "/get/" + url.PathEscape(k), "/get?key=" + url.QueryEscape(k),
			"/local_read/" + segmentEscape(k), "/local_read/" + url.PathEscape(k), "/local_read?key=" + url.QueryEscape(k),
		} {
			resp, err := hc.Get(ts.URL + target)
			if err != nil {
				t.Fatal(err)
			}
			var got GetResponse
			json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || got.Key != k || got.Value != want {
				t.Errorf("key %q via %s: status %d (Location %q) key %q value %q, want 200 %q", k, target,
					resp.StatusCode, resp.Header.Get("Location"), got.Key, got.Value, want)
			}
		}
	}
	// HEAD works; other methods on these paths are 405 with Allow.
	rec := do(s, request{method: "HEAD", target: "/get/a//b"})
	if rec.Code != 200 {
		t.Errorf("HEAD /get/a//b: %d", rec.Code)
	}
	rec = do(s, request{method: "DELETE", target: "/local_read/a//b"})
	wantError(t, rec, http.StatusMethodNotAllowed)
	if allow := rec.Header().Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("Allow %q", allow)
	}
	// /get/ with nothing after it falls back to ?key=, else 400.
	if rec := do(s, request{method: "GET", target: "/get/?key=b"}); rec.Code != 200 {
		t.Errorf("/get/?key=b: %d", rec.Code)
	}
	wantError(t, do(s, request{method: "GET", target: "/get/"}), http.StatusBadRequest)
}

// Keys and values that are not valid UTF-8 are refused with 400; the old
// code let encoding/json turn the bytes into U+FFFD, so "col\xff" and
// "col\xfe" were stored as the same key and overwrote each other.
func TestInvalidUTF8(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	s := newTestServer(t, rep, nil)
	for _, body := range []string{
		"{\"key\":\"col\xff\",\"value\":\"a\"}",
		"{\"key\":\"col\xfe\",\"value\":\"b\"}",
		"{\"key\":\"k\",\"value\":\"v\xc3\"}",
		"{\"key\":\"k\",\"value\":\"\xed\xa0\x80\"}", // an encoded surrogate
		`{"key":"k\ud800","value":"v"}`,              // a lone high surrogate
		`{"key":"k","value":"\udc00"}`,               // a lone low surrogate
		`{"key":"k","value":"\ud800\u0041"}`,         // high surrogate, no low one
		`{"key":"k","value":"\\\ud800x"}`,            // an escaped backslash, then a lone surrogate
	} {
		rec := do(s, request{method: "POST", target: "/set", body: body})
		m := wantError(t, rec, http.StatusBadRequest)
		if m["code"] != "invalid_utf8" || !strings.Contains(m["error"].(string), "UTF-8") {
			t.Errorf("set %q: %v, want a clear invalid_utf8 error", body, m)
		}
	}
	if n := rep.Keys(); n != 0 {
		t.Fatalf("%d keys stored from invalid bodies", n)
	}
	// Valid escapes and characters are accepted.
	for _, body := range []string{
		`{"key":"emoji\ud83d\ude00","value":"\u00e9"}`,
		`{"key":"lit\\ud800","value":"escaped backslash, not an escape"}`,
		`{"key":"é😀","value":"\uFFFD is a real character"}`,
	} {
		if rec := do(s, request{method: "POST", target: "/set", body: body}); rec.Code != http.StatusCreated {
			t.Errorf("set %s: status %d %s", body, rec.Code, rec.Body)
		}
	}
	for _, target := range []string{"/get/col%FF", "/get?key=col%FE", "/local_read/col%FF", "/local_read?key=%ED%A0%80", transport.PathRead + "?key=%FF"} {
		m := wantError(t, do(s, request{method: "GET", target: target}), http.StatusBadRequest)
		if m["code"] != "invalid_utf8" {
			t.Errorf("%s: %v", target, m)
		}
	}
}

func TestLoneSurrogate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{`"abc"`, -1},
		{`"\ud83d\ude00"`, -1},
		{`"\\ud800"`, -1},
		{`"\ud800"`, 1},
		{`"x\uDC00"`, 2},
		{`"\ud800\ud800"`, 1},
		{`"\u00e9\ud800`, 7},
		{`"\u12`, -1},
		{`\`, -1},
	} {
		if got := loneSurrogate([]byte(tt.in)); got != tt.want {
			t.Errorf("loneSurrogate(%s) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// PUT /config answers 200 only when every node confirmed, else 503 with
// each node's outcome. The old code answered 200 whatever failed.
func TestConfigPartialFailure(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	rep.failed = map[string]string{"n4": "connection refused"}
	rep.unknown = map[string]string{"n5": "context deadline exceeded"}
	s := newTestServer(t, rep, nil)
	rec := do(s, request{method: "PUT", target: "/config", body: `{"w":3,"r":3}`})
	m := wantError(t, rec, http.StatusServiceUnavailable)
	if m["code"] != "config_incomplete" || m["w"] != 3.0 || m["r"] != 3.0 {
		t.Fatalf("body %v", m)
	}
	nodes, _ := m["nodes"].(map[string]any)
	want := map[string]string{"n1": "updated", "n2": "updated", "n4": "failed: connection refused", "n5": "unknown: context deadline exceeded"}
	if len(nodes) != len(want) {
		t.Errorf("nodes %v, want %v", nodes, want)
	}
	for id, w := range want {
		if nodes[id] != w {
			t.Errorf("node %s: %v, want %q", id, nodes[id], w)
		}
	}
	msg := m["error"].(string)
	for _, part := range []string{"n4 failed", "n5 unknown", "n1, n2"} {
		if !strings.Contains(msg, part) {
			t.Errorf("error %q lacks %q", msg, part)
		}
	}
}

// blockingRep is a fakeRep whose SetClusterQuorum blocks until released,
// to observe how the server runs it.
type blockingRep struct {
	*fakeRep
	entered chan context.Context
	release chan struct{}
	mu      sync.Mutex
	active  int
	maxSeen int
}

func (b *blockingRep) SetClusterQuorum(ctx context.Context, w, r int) (replication.ClusterQuorum, error) {
	b.mu.Lock()
	b.active++
	b.maxSeen = max(b.maxSeen, b.active)
	b.mu.Unlock()
	defer func() { b.mu.Lock(); b.active--; b.mu.Unlock() }()
	b.entered <- ctx
	<-b.release
	return b.fakeRep.SetClusterQuorum(ctx, w, r)
}

// A W/R change runs detached from the client (a client that leaves does
// not cancel it) and under its own deadline, and changes coordinated by
// one node run one at a time. The old code passed the client's context,
// so a client hanging up cancelled the calls to the peers.
func TestConfigChangeDetachedAndSerialized(t *testing.T) {
	b := &blockingRep{fakeRep: newFakeRep(replication.LeaderFollower), entered: make(chan context.Context, 4), release: make(chan struct{})}
	s, err := New(Config{RequestTimeout: time.Minute}, b)
	if err != nil {
		t.Fatal(err)
	}
	var arrived atomic.Int32 // requests the server has begun to handle
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		s.ServeHTTP(w, r)
	}))
	defer ts.Close()
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 2)
	for _, body := range []string{`{"w":3,"r":3}`, `{"w":1,"r":5}`} {
		go func() {
			req, _ := http.NewRequestWithContext(cctx, "PUT", ts.URL+"/config", strings.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
	}
	ctx := <-b.entered
	// Both requests must have reached the server before the clients hang
	// up; a request cancelled before it was sent starts no change at all.
	waitUntil(t, 5*time.Second, "both requests to reach the server", func() bool { return arrived.Load() == 2 })
	cancel() // both clients hang up
	<-errc
	<-errc
	if _, ok := ctx.Deadline(); !ok {
		t.Error("the change runs without a deadline of its own")
	}
	if ctx.Err() != nil {
		t.Fatalf("the client hanging up cancelled the change: %v", ctx.Err())
	}
	close(b.release)
	select {
	case <-b.entered: // the second change runs after the first
	case <-time.After(10 * time.Second):
		t.Fatal("the second change never ran")
	}
	waitUntil(t, 5*time.Second, "both changes to finish", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.active == 0
	})
	if b.maxSeen != 1 {
		t.Errorf("%d changes ran at once, want 1", b.maxSeen)
	}
}

// Writes and quorum reads run detached from the client's connection, with
// the request timeout. The old code derived them from r.Context().
func TestCoordinationDetachedFromClient(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	rep.info.R = 3
	s := newTestServer(t, rep, nil)
	for _, r := range []request{
		{method: "POST", target: "/set", body: `{"key":"k","value":"v"}`},
		{method: "GET", target: "/get/k"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		req := httptest.NewRequestWithContext(ctx, r.method, r.target, strings.NewReader(r.body))
		cancel() // the client is already gone
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code/100 != 2 {
			t.Fatalf("%s %s: status %d %s", r.method, r.target, rec.Code, rec.Body)
		}
		if err := rep.lastCtxErr; err != nil {
			t.Errorf("%s %s: coordination context already done: %v", r.method, r.target, err)
		}
		if _, ok := rep.lastCtx.Deadline(); !ok {
			t.Errorf("%s %s: coordination has no deadline", r.method, r.target)
		}
	}
}

// levelRecorder is a slog handler that remembers the records' levels.
type levelRecorder struct {
	mu     sync.Mutex
	errors []string
}

func (h *levelRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *levelRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		h.errors = append(h.errors, r.Message)
		h.mu.Unlock()
	}
	return nil
}
func (h *levelRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *levelRecorder) WithGroup(string) slog.Handler      { return h }

// An internal call whose caller disconnects while it waits (the peer read
// delay) is recorded as 499, not 500, and logs no ERROR. The old code
// answered 500 and logged "request failed" at ERROR.
func TestCallerCancellationIsNotAServerError(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	entered := make(chan struct{}, 1)
	rep.applyHook = func(ctx context.Context) error {
		entered <- struct{}{}
		<-ctx.Done() // the read delay, cut short by the caller leaving
		return ctx.Err()
	}
	logs := &levelRecorder{}
	s := newTestServer(t, rep, func(c *Config) { c.Logger = slog.New(logs) })
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+transport.PathRead+"?key=k", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the internal read never reached the replicator")
	}
	cancel()
	<-done
	metric := fmt.Sprintf(`kvdb_http_requests_total{code="%d",route="internal_read"} 1`, StatusClientClosedRequest)
	waitUntil(t, 5*time.Second, "the cancelled call to be recorded as 499", func() bool {
		return bytes.Contains(do(s, request{method: "GET", target: "/metrics"}).Body.Bytes(), []byte(metric))
	})
	if body := do(s, request{method: "GET", target: "/metrics"}).Body.String(); strings.Contains(body, `code="500"`) {
		t.Errorf("a 500 was recorded:\n%s", body)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.errors) != 0 {
		t.Errorf("ERROR logged for a caller's cancellation: %q", logs.errors)
	}
}
