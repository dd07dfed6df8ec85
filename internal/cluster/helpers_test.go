package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	kvclient "github.com/kvdb/kvdb/client"
	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/replication"
)

// client is one test client: requests go through the public client
// (kvclient), one attempt each, and never follow redirects; do sends raw
// requests.
type client struct {
	t  testing.TB
	hc *http.Client
	kv *kvclient.Client
}

func newClient(t testing.TB) *client {
	hc := cluster.Client()
	t.Cleanup(hc.CloseIdleConnections)
	return &client{t: t, hc: hc, kv: publicClient(t, hc)}
}

// publicClient is the public client over hc for tests: one attempt per
// call, a 307 returned rather than followed.
func publicClient(t testing.TB, hc *http.Client) *kvclient.Client {
	kv, err := kvclient.New(kvclient.Config{HTTPClient: hc, MaxRedirects: -1, Retry: kvclient.NoRetry()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return kv
}

// reply is a decoded answer from a node.
type reply struct {
	Status  int    `json:"-"`
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
	Node    string `json:"node"`
	Acks    int    `json:"acks"`
	Error   string `json:"error"`
	Header  http.Header
	Elapsed time.Duration
}

func (c *client) do(method, u string, body []byte) reply {
	c.t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		c.t.Fatalf("request: %v", err)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Elapsed: time.Since(start)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r); err != nil {
			c.t.Fatalf("%s %s: status %d, body not JSON: %q", method, u, resp.StatusCode, raw)
		}
	}
	return r
}

// answer completes ok, the reply to a call that started at start, from
// the call's error: an answer's status, text, acks and Location; a
// transport failure fails the test.
func (c *client) answer(what string, start time.Time, ok reply, err error) reply {
	c.t.Helper()
	elapsed := time.Since(start)
	if err == nil {
		ok.Elapsed = elapsed
		return ok
	}
	e, isAnswer := errors.AsType[*kvclient.Error](err)
	if !isAnswer {
		c.t.Fatalf("%s: %v", what, err)
	}
	r := reply{Status: e.Status, Error: e.Message, Acks: e.Acks, Header: http.Header{}, Elapsed: elapsed}
	if e.Location != "" {
		r.Header.Set("Location", e.Location)
	}
	return r
}

func (c *client) set(base, key, value string) reply {
	c.t.Helper()
	return c.setQ(base, key, value, "")
}

// setQ sets with a query of overrides, e.g. "w=3".
func (c *client) setQ(base, key, value, query string) reply {
	c.t.Helper()
	opts := c.overrides(base, query)
	start := time.Now()
	res, err := c.kv.Set(context.Background(), key, value, opts...)
	return c.answer("set "+base, start, reply{Status: http.StatusCreated, Key: res.Key, Version: res.Version, Node: res.Node, Acks: res.Acks}, err)
}

// overrides turns a query such as "w=3" or "r=5" into call options for
// the node at base.
func (c *client) overrides(base, query string) []kvclient.Option {
	c.t.Helper()
	opts := []kvclient.Option{kvclient.At(base)}
	q, err := url.ParseQuery(query)
	if err != nil {
		c.t.Fatalf("query %q: %v", query, err)
	}
	for name := range q {
		n, err := strconv.Atoi(q.Get(name))
		switch {
		case err != nil:
			c.t.Fatalf("query %q: %v", query, err)
		case name == "w":
			opts = append(opts, kvclient.WithW(n))
		case name == "r":
			opts = append(opts, kvclient.WithR(n))
		default:
			c.t.Fatalf("query %q: unknown override %q", query, name)
		}
	}
	return opts
}

func (c *client) get(base, key string) reply {
	c.t.Helper()
	return c.getQ(base, key, "")
}

// getQ reads with a query of overrides, e.g. "r=5".
func (c *client) getQ(base, key, query string) reply {
	c.t.Helper()
	opts := c.overrides(base, query)
	start := time.Now()
	res, err := c.kv.Get(context.Background(), key, opts...)
	return c.answer("get "+base, start, reply{Status: http.StatusOK, Key: res.Key, Value: res.Value, Version: res.Version, Node: res.Node}, err)
}

func (c *client) localRead(base, key string) reply {
	c.t.Helper()
	start := time.Now()
	res, err := c.kv.LocalRead(context.Background(), key, kvclient.At(base))
	return c.answer("local_read "+base, start, reply{Status: http.StatusOK, Key: res.Key, Value: res.Value, Version: res.Version, Node: res.Node}, err)
}

func mustStatus(t testing.TB, what string, r reply, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d (%s), want %d", what, r.Status, r.Error, want)
	}
}

// start runs a cluster for the test and closes it at cleanup.
func start(t testing.TB, cfg cluster.Config) *cluster.Cluster {
	t.Helper()
	if cfg.Node.Replication.PeerTimeout == 0 {
		cfg.Node.Replication.PeerTimeout = time.Second
	}
	c, err := cluster.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	return c
}

// scaled is the paper profile scaled down for fast tests.
func scaled(f float64) replication.Delays { return replication.PaperDelays().Scale(f) }

// waitFor polls cond every few milliseconds until it holds or timeout
// passes; it fails the test with what on timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// converged reports whether every node's local copy of key has version v.
func converged(c *client, urls []string, key string, v uint64) bool {
	for _, u := range urls {
		r := c.localRead(u, key)
		if r.Status != http.StatusOK || r.Version != v {
			return false
		}
	}
	return true
}

func value(i int) string { return fmt.Sprintf("v%d", i) }
