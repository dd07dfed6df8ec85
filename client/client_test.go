package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvdb/kvdb/client"
)

// newClient returns a client for endpoints with fast retries.
func newClient(t *testing.T, cfg client.Config, endpoints ...string) *client.Client {
	t.Helper()
	cfg.Endpoints = endpoints
	if cfg.Retry.InitialBackoff == 0 {
		cfg.Retry.InitialBackoff = time.Millisecond
	}
	if cfg.Retry.MaxBackoff == 0 {
		cfg.Retry.MaxBackoff = 4 * time.Millisecond
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// answer is a handler that always writes status and body, counting hits.
func answer(hits *atomic.Int64, status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// closedURL is the base URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

func TestSetAndGet(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		var req map[string]string
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Header.Get("Content-Type") != "application/json" {
			writeJSON(w, 400, map[string]string{"error": "bad body", "code": "bad_request"})
			return
		}
		if r.URL.RawQuery != "w=3" || req["key"] != "k\"\n\x01é" || req["value"] != "" {
			writeJSON(w, 400, map[string]string{"error": "got " + r.URL.RawQuery + " " + req["key"], "code": "bad_request"})
			return
		}
		writeJSON(w, 201, map[string]any{"key": req["key"], "version": 1 << 60, "node": "node1", "coordinator": "node1", "acks": 3, "w": 3})
	})
	mux.HandleFunc("GET /get/{key...}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.EscapedPath() != "/get/a%20b%2Fc%3Fd%25" || r.URL.RawQuery != "r=2" {
			writeJSON(w, 400, map[string]string{"error": "path " + r.URL.EscapedPath() + "?" + r.URL.RawQuery, "code": "bad_request"})
			return
		}
		writeJSON(w, 200, map[string]any{"key": "a b/c?d%", "value": "v", "version": 7, "node": "node2"})
	})
	mux.HandleFunc("GET /local_read/{key...}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"key": r.PathValue("key"), "value": "", "version": 3, "node": "node4"})
	})
	s := server(t, mux.ServeHTTP)
	c := newClient(t, client.Config{}, s.URL+"/")
	ctx := context.Background()

	set, err := c.Set(ctx, "k\"\n\x01é", "", client.WithW(3))
	if err != nil {
		t.Fatal(err)
	}
	want := client.SetResult{Key: "k\"\n\x01é", Version: 1 << 60, Node: "node1", Coordinator: "node1", Acks: 3, W: 3, Endpoint: s.URL}
	if set != want {
		t.Errorf("set = %+v, want %+v", set, want)
	}
	got, err := c.Get(ctx, "a b/c?d%", client.WithR(2))
	if err != nil {
		t.Fatal(err)
	}
	if (got != client.GetResult{Key: "a b/c?d%", Value: "v", Version: 7, Node: "node2", Endpoint: s.URL}) {
		t.Errorf("get = %+v", got)
	}
	lr, err := c.LocalRead(ctx, "x")
	if err != nil || lr.Node != "node4" || lr.Version != 3 || lr.Value != "" {
		t.Errorf("local_read = %+v, %v", lr, err)
	}
}

// Invalid UTF-8 is sent as it is, for the server to refuse, not replaced.
func TestSetSendsBytesAsTheyAre(t *testing.T) {
	var body atomic.Value
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body.Store(string(b))
		writeJSON(w, 400, map[string]string{"error": "not UTF-8", "code": "invalid_utf8"})
	})
	c := newClient(t, client.Config{}, s.URL)
	_, err := c.Set(context.Background(), "k\xff", "v\u2028")
	if !errors.Is(err, client.ErrInvalidUTF8) || !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("err %v, want invalid_utf8", err)
	}
	if got := body.Load(); got != "{\"key\":\"k\xff\",\"value\":\"v\\u2028\"}" { // U+2028 escaped, as encoding/json does
		t.Fatalf("body %q", got)
	}
}

func TestErrorCodes(t *testing.T) {
	tests := []struct {
		status int
		body   string
		match  []error
		check  func(*client.Error) bool
	}{
		{404, `{"error":"\"k\": key not found","code":"not_found"}`, []error{client.ErrNotFound}, nil},
		{503, `{"error":"read quorum not reached: 1 of 3","code":"quorum_not_reached","acks":1,"required":3}`, []error{client.ErrQuorum},
			func(e *client.Error) bool { return e.Acks == 1 && e.Required == 3 }},
		{503, `{"error":"node is catching up","code":"catching_up"}`, []error{client.ErrNotReady}, nil},
		{503, `{"error":"leader unavailable","code":"leader_unavailable"}`, []error{client.ErrLeaderUnavailable}, nil},
		{503, `{"error":"bye","code":"shutting_down"}`, []error{client.ErrShuttingDown}, nil},
		{503, `{"error":"fsync","code":"storage_failure"}`, []error{client.ErrStorage}, nil},
		{503, `{"error":"deadline","code":"timeout"}`, []error{client.ErrTimeout}, nil},
		{408, `{"error":"slow body","code":"body_timeout"}`, []error{client.ErrTimeout}, nil},
		{400, `{"error":"key must not be empty","code":"bad_request"}`, []error{client.ErrBadRequest}, nil},
		{400, `{"error":"w=9","code":"invalid_argument"}`, []error{client.ErrBadRequest}, nil},
		{400, `{"error":"x","code":"invalid_utf8"}`, []error{client.ErrBadRequest, client.ErrInvalidUTF8}, nil},
		{413, `{"error":"value is 2000000 bytes","code":"too_large"}`, []error{client.ErrTooLarge}, nil},
		{401, `{"error":"missing or wrong cluster token","code":"unauthorized"}`, []error{client.ErrUnauthorized}, nil},
		{403, `{"error":"protected mode","code":"protected_mode"}`, []error{client.ErrUnauthorized, client.ErrProtectedMode}, nil},
		{500, `{"error":"bug","code":"internal"}`, []error{client.ErrInternal}, nil},
		{503, `{"error":"w=3 r=3 confirmed by node1","code":"config_incomplete","w":3,"r":3,"nodes":{"node1":"updated","node2":"failed: down"}}`,
			[]error{client.ErrConfigIncomplete}, func(e *client.Error) bool { return e.W == 3 && e.R == 3 && e.Nodes["node2"] == "failed: down" }},
		// A proxy's page: status only, no code, no sentinel.
		{502, `<html>bad gateway</html>`, nil, func(e *client.Error) bool { return e.Code == "" && e.Message == "" }},
		// A success with a body that is not the answer.
		{200, `{`, []error{client.ErrBadResponse}, func(e *client.Error) bool { return e.Err != nil }},
	}
	all := []error{client.ErrNotFound, client.ErrQuorum, client.ErrNotLeader, client.ErrLeaderUnavailable, client.ErrNotReady,
		client.ErrShuttingDown, client.ErrStorage, client.ErrTimeout, client.ErrConfigIncomplete, client.ErrBadRequest,
		client.ErrInvalidUTF8, client.ErrTooLarge, client.ErrUnauthorized, client.ErrProtectedMode, client.ErrInternal, client.ErrBadResponse}
	for _, tt := range tests {
		var hits atomic.Int64
		s := server(t, answer(&hits, tt.status, tt.body))
		c := newClient(t, client.Config{Retry: client.NoRetry()}, s.URL)
		_, err := c.Get(context.Background(), "k")
		e, ok := errors.AsType[*client.Error](err)
		if !ok {
			t.Errorf("%d %s: err %v is not an *Error", tt.status, tt.body, err)
			continue
		}
		if e.Status != tt.status || e.Endpoint != s.URL || client.StatusOf(err) != tt.status || hits.Load() != 1 {
			t.Errorf("%d %s: %+v after %d requests", tt.status, tt.body, e, hits.Load())
		}
		for _, s := range all {
			want := false
			for _, m := range tt.match {
				want = want || m == s
			}
			if errors.Is(err, s) != want {
				t.Errorf("%d %s: errors.Is(err, %v) = %v", tt.status, tt.body, s, !want)
			}
		}
		if tt.check != nil && !tt.check(e) {
			t.Errorf("%d %s: fields %+v", tt.status, tt.body, e)
		}
		if !strings.Contains(e.Error(), s.URL) || !strings.Contains(e.Error(), e.Code) {
			t.Errorf("error text %q lacks the endpoint or the code", e.Error())
		}
	}
}

func TestSetFollowsRedirectToLeader(t *testing.T) {
	var leaderHits, followerHits atomic.Int64
	leader := server(t, func(w http.ResponseWriter, r *http.Request) {
		leaderHits.Add(1)
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/set" || r.URL.RawQuery != "w=5" || string(b) != `{"key":"k","value":"v"}` {
			writeJSON(w, 400, map[string]string{"error": r.Method + " " + r.URL.String() + " " + string(b), "code": "bad_request"})
			return
		}
		writeJSON(w, 201, map[string]any{"key": "k", "version": 9, "node": "node1", "acks": 5, "w": 5})
	})
	follower := server(t, func(w http.ResponseWriter, r *http.Request) {
		followerHits.Add(1)
		w.Header().Set("Location", leader.URL+r.URL.RequestURI())
		writeJSON(w, 307, map[string]string{"error": "not the leader", "code": "not_leader", "leader": leader.URL})
	})
	c := newClient(t, client.Config{}, follower.URL)
	ctx := context.Background()
	res, err := c.Set(ctx, "k", "v", client.WithW(5))
	if err != nil || res.Version != 9 || res.Endpoint != leader.URL || leaderHits.Load() != 1 || followerHits.Load() != 1 {
		t.Fatalf("set = %+v, %v; hits leader %d follower %d", res, err, leaderHits.Load(), followerHits.Load())
	}

	// NoRedirect: the 307 comes back with where to go.
	_, err = c.Set(ctx, "k", "v", client.WithW(5), client.NoRedirect())
	e, ok := errors.AsType[*client.Error](err)
	if !ok || !errors.Is(err, client.ErrNotLeader) || e.Status != 307 || e.Location != leader.URL+"/set?w=5" || e.Leader != leader.URL {
		t.Fatalf("NoRedirect: %v (%+v)", err, e)
	}
	if leaderHits.Load() != 1 {
		t.Fatalf("NoRedirect reached the leader")
	}

	// Reads never follow a redirect.
	_, err = c.Get(ctx, "k")
	if e, ok := errors.AsType[*client.Error](err); !ok || e.Status != 307 || e.Location == "" || leaderHits.Load() != 1 {
		t.Fatalf("get through a redirect: %v", err)
	}
}

func TestRedirectLoopIsBounded(t *testing.T) {
	var hits atomic.Int64
	var self string
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Location", self+"/set")
		writeJSON(w, 307, map[string]string{"error": "not the leader", "code": "not_leader"})
	})
	self = s.URL
	c := newClient(t, client.Config{MaxRedirects: 2}, s.URL)
	_, err := c.Set(context.Background(), "k", "v")
	if !errors.Is(err, client.ErrNotLeader) || hits.Load() != 3 {
		t.Fatalf("err %v after %d requests, want not_leader after 3", err, hits.Load())
	}
}

func TestRetryMovesPastUnreachableEndpoint(t *testing.T) {
	var hits atomic.Int64
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, 201, map[string]any{"key": "k", "version": 1, "node": "node2", "acks": 1, "w": 1})
	})
	c := newClient(t, client.Config{}, closedURL(t), s.URL)
	ctx := context.Background()
	// A write is retried when it never left: the connection was refused.
	for i := range 2 {
		res, err := c.Set(ctx, "k", "v")
		if err != nil || res.Endpoint != s.URL {
			t.Fatalf("set %d: %+v, %v", i, res, err)
		}
	}
	if hits.Load() != 2 {
		t.Fatalf("%d hits", hits.Load())
	}
	// At pins the node: no moving elsewhere.
	dead := closedURL(t)
	_, err := c.Get(ctx, "k", client.At(dead))
	if err == nil || client.StatusOf(err) != 0 {
		t.Fatalf("get at a dead node: %v", err)
	}
}

func TestRetryPolicy(t *testing.T) {
	ctx := context.Background()
	quorum := `{"error":"quorum not reached","code":"quorum_not_reached","acks":2,"required":5}`
	notReady := `{"error":"catching up","code":"catching_up"}`
	tests := []struct {
		name     string
		cfg      client.Config
		status   int
		body     string
		call     func(*client.Client) error
		wantHits int64
	}{
		{"set quorum: unknown outcome, not retried", client.Config{}, 503, quorum,
			func(c *client.Client) error { _, err := c.Set(ctx, "k", "v"); return err }, 1},
		{"set quorum, RetryUnknownWrites", client.Config{Retry: client.RetryPolicy{RetryUnknownWrites: true}}, 503, quorum,
			func(c *client.Client) error { _, err := c.Set(ctx, "k", "v"); return err }, 3},
		{"get quorum: safe, retried", client.Config{}, 503, quorum,
			func(c *client.Client) error { _, err := c.Get(ctx, "k"); return err }, 3},
		{"set not ready: nothing applied, retried", client.Config{Retry: client.RetryPolicy{MaxAttempts: 4}}, 503, notReady,
			func(c *client.Client) error { _, err := c.Set(ctx, "k", "v"); return err }, 4},
		{"per-call Attempts", client.Config{}, 503, notReady,
			func(c *client.Client) error { _, err := c.Set(ctx, "k", "v", client.Attempts(2)); return err }, 2},
		{"400 never retried", client.Config{}, 400, `{"error":"x","code":"bad_request"}`,
			func(c *client.Client) error { _, err := c.Get(ctx, "k"); return err }, 1},
		{"404 never retried", client.Config{}, 404, `{"error":"x","code":"not_found"}`,
			func(c *client.Client) error { _, err := c.Get(ctx, "k"); return err }, 1},
		{"500 never retried", client.Config{}, 500, `{"error":"x","code":"internal"}`,
			func(c *client.Client) error { _, err := c.Config(ctx); return err }, 1},
		{"storage failure never retried", client.Config{}, 503, `{"error":"x","code":"storage_failure"}`,
			func(c *client.Client) error { _, err := c.Set(ctx, "k", "v"); return err }, 1},
		{"config incomplete: idempotent, retried", client.Config{}, 503, `{"error":"x","code":"config_incomplete"}`,
			func(c *client.Client) error { _, err := c.SetConfig(ctx, 3, 3); return err }, 3},
		{"health 503 is an answer", client.Config{}, 503, `{"status":"catching-up","node":"node2"}`,
			func(c *client.Client) error { _, err := c.Health(ctx); return err }, 1},
		{"health 503 with an error body is an error", client.Config{}, 503, `{"error":"bye","code":"shutting_down"}`,
			func(c *client.Client) error {
				h, err := c.Health(ctx)
				if !errors.Is(err, client.ErrShuttingDown) || h.Raw != nil {
					return errors.New("wrong error")
				}
				return err
			}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int64
			s := server(t, answer(&hits, tt.status, tt.body))
			err := tt.call(newClient(t, tt.cfg, s.URL))
			if client.StatusOf(err) != tt.status || hits.Load() != tt.wantHits {
				t.Fatalf("err %v after %d requests, want status %d after %d", err, hits.Load(), tt.status, tt.wantHits)
			}
		})
	}
}

func TestRetryThenSuccess(t *testing.T) {
	var hits atomic.Int64
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) < 3 {
			writeJSON(w, 503, map[string]string{"error": "leader unavailable", "code": "leader_unavailable"})
			return
		}
		writeJSON(w, 201, map[string]any{"key": "k", "version": 4, "node": "node1", "acks": 5, "w": 5})
	})
	c := newClient(t, client.Config{}, s.URL)
	if res, err := c.Set(context.Background(), "k", "v"); err != nil || res.Version != 4 || hits.Load() != 3 {
		t.Fatalf("set = %+v, %v after %d requests", res, err, hits.Load())
	}
}

// A write whose request was sent and not answered in time has an unknown
// outcome: not retried unless asked; a read is.
func TestTimeoutAfterSending(t *testing.T) {
	var hits atomic.Int64
	release := make(chan struct{})
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	c := newClient(t, client.Config{Timeout: 30 * time.Millisecond}, s.URL)
	ctx := context.Background()
	_, err := c.Set(ctx, "k", "v")
	if err == nil || client.StatusOf(err) != 0 || hits.Load() != 1 {
		t.Fatalf("set: %v after %d requests, want a timeout after 1", err, hits.Load())
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("set: %v is not a timeout", err)
	}
	hits.Store(0)
	if _, err := c.Get(ctx, "k"); err == nil || hits.Load() != 3 {
		t.Fatalf("get: %v after %d requests, want 3 attempts", err, hits.Load())
	}
}

// The ctx bounds the retries: a long backoff ends with it.
func TestContextEndsRetries(t *testing.T) {
	var hits atomic.Int64
	s := server(t, answer(&hits, 503, `{"error":"catching up","code":"catching_up"}`))
	c := newClient(t, client.Config{Retry: client.RetryPolicy{MaxAttempts: 100, InitialBackoff: time.Hour, MaxBackoff: time.Hour}}, s.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Get(ctx, "k")
	if !errors.Is(err, client.ErrNotReady) || hits.Load() != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %d requests and %v", err, hits.Load(), time.Since(start))
	}
	// A ctx already done sends nothing that succeeds.
	_, err = c.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("done ctx: %v", err)
	}
}

func TestHealth(t *testing.T) {
	var ready atomic.Bool
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if ready.Load() {
			writeJSON(w, 200, map[string]any{"status": "ok", "node": "node1", "mode": "leader-follower", "role": "leader", "w": 5, "r": 1, "n": 5,
				"delays": "none", "delay_profile": map[string]any{"name": "none"}, "keys": 2, "pending_replication": 1, "hints": 0})
			return
		}
		writeJSON(w, 503, map[string]any{"status": "catching-up", "node": "node1"})
	})
	c := newClient(t, client.Config{}, s.URL)
	ctx := context.Background()
	h, err := c.Health(ctx)
	if !errors.Is(err, client.ErrNotReady) || h.Status != "catching-up" || h.Node != "node1" || !json.Valid(h.Raw) || client.StatusOf(err) != 503 {
		t.Fatalf("not ready: %+v, %v", h, err)
	}
	ready.Store(true)
	h, err = c.Health(ctx)
	if err != nil || h.Role != "leader" || h.W != 5 || h.N != 5 || h.Keys != 2 || h.Pending != 1 || !strings.Contains(string(h.DelayProfile), "none") || h.Endpoint != s.URL {
		t.Fatalf("ready: %+v, %v", h, err)
	}
}

func TestConfigAndSetConfig(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			writeJSON(w, 400, map[string]string{"error": "token sent with a GET", "code": "bad_request"})
			return
		}
		writeJSON(w, 200, map[string]any{"w": 5, "r": 1, "n": 5, "mode": "leader-follower"})
	})
	mux.HandleFunc("PUT /config", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			writeJSON(w, 401, map[string]string{"error": "missing or wrong cluster token", "code": "unauthorized"})
			return
		}
		var q struct{ W, R int }
		json.NewDecoder(r.Body).Decode(&q)
		writeJSON(w, 200, map[string]any{"w": q.W, "r": 1, "n": 5, "mode": "leader-follower", "updated": []string{"node1", "node2"}})
	})
	s := server(t, mux.ServeHTTP)
	ctx := context.Background()
	c := newClient(t, client.Config{Token: "s3cret"}, s.URL)
	got, err := c.Config(ctx)
	if err != nil || got.W != 5 || got.R != 1 || got.N != 5 || got.Mode != "leader-follower" {
		t.Fatalf("config = %+v, %v", got, err)
	}
	got, err = c.SetConfig(ctx, 3, 0)
	if err != nil || got.W != 3 || len(got.Updated) != 2 {
		t.Fatalf("set config = %+v, %v", got, err)
	}
	noToken := newClient(t, client.Config{}, s.URL)
	if _, err := noToken.SetConfig(ctx, 3, 0); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("without the token: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []client.Config{
		{Endpoints: []string{"127.0.0.1:8001"}},
		{Endpoints: []string{"ftp://h"}},
		{Endpoints: []string{"http://"}},
		{Endpoints: []string{"http://h?x=1"}},
		{Retry: client.RetryPolicy{MaxAttempts: -1}},
		{Retry: client.RetryPolicy{InitialBackoff: -time.Second}},
		{MaxIdleConnsPerHost: -1},
		{Token: "a\nb"},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	eps := []string{"http://h:1/", "https://h:2"}
	cfg := client.Config{Endpoints: eps}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if eps[0] != "http://h:1/" || cfg.Endpoints[0] != "http://h:1" || cfg.Timeout != client.DefaultTimeout ||
		cfg.Retry.MaxAttempts != client.DefaultMaxAttempts || cfg.MaxRedirects != client.DefaultMaxRedirects {
		t.Fatalf("defaults: %+v (caller's slice %v)", cfg, eps)
	}
	c, err := client.New(client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), "k"); !errors.Is(err, client.ErrNoEndpoint) {
		t.Fatalf("no endpoint: %v", err)
	}
}

// A caller's HTTP client that follows redirects does not make the client
// follow them silently.
func TestCallersHTTPClientNeverFollows(t *testing.T) {
	var hits atomic.Int64
	target := server(t, answer(&hits, 200, `{"key":"k","value":"v","version":1,"node":"n"}`))
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	c := newClient(t, client.Config{HTTPClient: &http.Client{}}, s.URL)
	_, err := c.Get(context.Background(), "k")
	if client.StatusOf(err) != 307 || hits.Load() != 0 {
		t.Fatalf("err %v, target hits %d", err, hits.Load())
	}
}

// BenchmarkSetGet measures the client's own cost against a trivial
// server (allocations per call pair included).
func BenchmarkSetGet(b *testing.B) {
	getBody := []byte(`{"key":"k","value":"v","version":7,"node":"node1"}` + "\n")
	setBody := []byte(`{"key":"k","version":7,"node":"node1","acks":1,"w":1}` + "\n")
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(201)
			w.Write(setBody)
			return
		}
		w.Write(getBody)
	}))
	defer s.Close()
	c, err := client.New(client.Config{Endpoints: []string{s.URL}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Set(ctx, "k", "v"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Get(ctx, "k", client.At(s.URL)); err != nil {
			b.Fatal(err)
		}
	}
}
