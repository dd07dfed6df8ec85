package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/replication"
)

// client is one test client; it never follows redirects.
type client struct {
	t  testing.TB
	hc *http.Client
}

func newClient(t testing.TB) *client {
	hc := cluster.Client()
	t.Cleanup(hc.CloseIdleConnections)
	return &client{t: t, hc: hc}
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

func (c *client) set(base, key, value string) reply {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"key": key, "value": value})
	return c.do(http.MethodPost, base+"/set", b)
}

func (c *client) setQ(base, key, value, query string) reply {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"key": key, "value": value})
	return c.do(http.MethodPost, base+"/set?"+query, b)
}

func (c *client) get(base, key string) reply {
	c.t.Helper()
	return c.do(http.MethodGet, base+"/get/"+url.PathEscape(key), nil)
}

func (c *client) localRead(base, key string) reply {
	c.t.Helper()
	return c.do(http.MethodGet, base+"/local_read/"+url.PathEscape(key), nil)
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

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
