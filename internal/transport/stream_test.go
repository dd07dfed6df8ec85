package transport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/hops"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

var streamLimits = transport.Limits{MaxKeyBytes: 1 << 10, MaxValueBytes: 1 << 20}

// streamNode is a peer under test: a fake replica behind a stream server
// on a real HTTP server, and a counter of the calls that reached its HTTP
// endpoints instead (the fallback).
type streamNode struct {
	ts      *httptest.Server
	rep     *fakeReplica
	srv     *transport.StreamServer
	httpHit atomic.Int64
}

// startStreamNode serves a fake replica; withStream false serves no stream
// endpoint (an older kvdb). limits bound what the server accepts.
func startStreamNode(t *testing.T, withStream bool, limits transport.Limits) *streamNode {
	t.Helper()
	return startStreamNodeConfig(t, withStream, transport.StreamServerConfig{Limits: limits})
}

// startStreamNodeConfig is startStreamNode with the whole server config.
func startStreamNodeConfig(t *testing.T, withStream bool, cfg transport.StreamServerConfig) *streamNode {
	t.Helper()
	limits := cfg.Limits
	n := &streamNode{rep: newFake()}
	srv, err := transport.NewStreamServer(cfg, n.rep)
	if err != nil {
		t.Fatal(err)
	}
	n.srv = srv
	mux := http.NewServeMux()
	if withStream {
		mux.Handle("GET "+transport.PathStream, srv.Handler())
	}
	fallback := func(w http.ResponseWriter, r *http.Request) {
		n.httpHit.Add(1)
		body, _ := io.ReadAll(r.Body)
		us, err := transport.DecodeUpdates(body, limits)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := n.rep.ApplyReplicas(r.Context(), us); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	mux.HandleFunc("POST "+transport.PathReplicate, fallback)
	mux.HandleFunc("POST "+transport.PathBatch, fallback)
	n.ts = httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Kill()
		n.ts.Close()
	})
	return n
}

// streamPeer returns a stream peer to n; it is closed at cleanup.
func streamPeer(t *testing.T, n *streamNode, cfg transport.StreamConfig) (*transport.StreamPeer, *hops.Recorder) {
	t.Helper()
	rec := hops.New(0, nil)
	hp := transport.NewHTTPPeer("b", n.ts.URL, "", transport.NewHTTPClient(5*time.Second, cfg.Wrap), streamLimits)
	hp.RecordHops(rec)
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 10*time.Millisecond
	}
	p, err := transport.NewStreamPeer(hp, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, rec
}

// connected makes calls until p's stream is up.
func connected(t *testing.T, p *transport.StreamPeer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !p.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not connect")
		}
		_ = p.Probe(context.Background())
		time.Sleep(time.Millisecond)
	}
}

// inlineModes runs fn with the server's requests in goroutines and
// inline (StreamServerConfig.Inline): the answers must not differ.
func inlineModes(t *testing.T, fn func(t *testing.T, inline bool)) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%t", inline), func(t *testing.T) { fn(t, inline) })
	}
}

func TestStreamCalls(t *testing.T) { inlineModes(t, testStreamCalls) }

func testStreamCalls(t *testing.T, inline bool) {
	noLeaks(t)
	n := startStreamNodeConfig(t, true, transport.StreamServerConfig{Limits: streamLimits, Inline: inline})
	p, rec := streamPeer(t, n, transport.StreamConfig{})
	ctx := context.Background()
	connected(t, p)
	before := n.httpHit.Load()

	if err := p.Replicate(ctx, replication.Update{Key: "a", Value: "1", Version: 1}); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("<&>\x00é", 1000)
	if err := p.ReplicateBatch(ctx, []replication.Update{{Key: "b", Value: big, Version: 2, Term: 3}, {Key: "c", Value: "", Version: 3}}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"a": "1", "b": big, "c": ""} {
		e, ok, err := p.Read(ctx, key)
		if err != nil || !ok || e.Value != want {
			t.Fatalf("read %q: %q %v %v, want %q", key, e.Value, ok, err, want)
		}
	}
	if _, ok, err := p.Read(ctx, "missing"); ok || err != nil {
		t.Fatalf("read missing: found %v, err %v", ok, err)
	}
	if err := p.SetQuorum(ctx, 3, 2); err != nil {
		t.Fatal(err)
	}
	if w, r := n.rep.quorum(); w != 3 || r != 2 {
		t.Fatalf("quorum %d/%d, want 3/2", w, r)
	}
	if got := n.httpHit.Load() - before; got != 0 {
		t.Fatalf("%d calls went over HTTP with the stream up", got)
	}
	if p.Dials() != 1 {
		t.Fatalf("%d dials, want 1", p.Dials())
	}
	// The stamps split the round trips as the HTTP header does.
	for _, k := range []hops.Kind{hops.Write, hops.Ack, hops.Read, hops.Response} {
		if rec.Count(k) == 0 {
			t.Errorf("no %v hop recorded", k)
		}
	}
}

func TestStreamErrorsMatchHTTP(t *testing.T) { inlineModes(t, testStreamErrorsMatchHTTP) }

func testStreamErrorsMatchHTTP(t *testing.T, inline bool) {
	noLeaks(t)
	n := startStreamNodeConfig(t, true, transport.StreamServerConfig{Limits: streamLimits, Inline: inline})
	p, _ := streamPeer(t, n, transport.StreamConfig{})
	ctx := context.Background()
	connected(t, p)

	var se *transport.StatusError
	// An update the replica refuses as invalid: a permanent refusal.
	err := p.Replicate(ctx, replication.Update{Key: "a", Value: "x", Version: 1 << 62})
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !errors.Is(err, replication.ErrRefused) {
		t.Fatalf("invalid version: %v, want a 400 refusal", err)
	}
	// Malformed updates are refused by the server's checks.
	for _, u := range []replication.Update{{Key: "", Version: 1}, {Key: "k", Version: 0}, {Key: "\xff", Version: 1}} {
		if err := p.ReplicateBatch(ctx, []replication.Update{u}); !errors.Is(err, replication.ErrRefused) {
			t.Fatalf("update %+v: %v, want a refusal", u, err)
		}
	}
	// A stale term.
	n.rep.setOnApply(func(context.Context) error { return replication.ErrStaleTerm })
	err = p.Replicate(ctx, replication.Update{Key: "a", Value: "x", Version: 1, Term: 1})
	if !errors.Is(err, replication.ErrStaleTerm) || !errors.Is(err, replication.ErrRefused) {
		t.Fatalf("stale term: %v", err)
	}
	// Peer states are not refusals.
	n.rep.setOnApply(func(context.Context) error { return replication.ErrNotReady })
	err = p.Replicate(ctx, replication.Update{Key: "a", Value: "x", Version: 1})
	if !errors.Is(err, replication.ErrNotReady) || errors.Is(err, replication.ErrRefused) {
		t.Fatalf("catching up: %v", err)
	}
	n.rep.setOnApply(nil)
	n.rep.setReady(false)
	if err := p.Probe(ctx); !errors.Is(err, replication.ErrNotReady) {
		t.Fatalf("probe of a node catching up: %v", err)
	}
	if err := p.SetQuorum(ctx, 0, 1); !errors.Is(err, replication.ErrRefused) {
		t.Fatalf("invalid quorum: %v", err)
	}
	if !p.Connected() {
		t.Fatal("error answers broke the stream")
	}
}

// A slow request does not hold up others on the same stream: answers come
// back in any order.
func TestStreamSlowRequestDoesNotBlockOthers(t *testing.T) {
	noLeaks(t)
	n := startStreamNode(t, true, streamLimits)
	p, _ := streamPeer(t, n, transport.StreamConfig{})
	connected(t, p)
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	n.rep.setOnApply(func(ctx context.Context) error {
		started <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	errc := make(chan error, 1)
	go func() {
		errc <- p.Replicate(context.Background(), replication.Update{Key: "slow", Value: "x", Version: 1})
	}()
	<-started
	for i := range 50 {
		if _, _, err := p.Read(context.Background(), "slow"); err != nil {
			t.Fatalf("read %d behind a slow apply: %v", i, err)
		}
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// A caller whose context ends gets its error at once, and the peer's work
// on the request is cancelled (as a closed HTTP connection cancels it).
func TestStreamCallerCancels(t *testing.T) {
	noLeaks(t)
	n := startStreamNode(t, true, streamLimits)
	p, _ := streamPeer(t, n, transport.StreamConfig{})
	connected(t, p)
	cancelled := make(chan struct{})
	n.rep.setOnApply(func(ctx context.Context) error {
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Replicate(ctx, replication.Update{Key: "a", Value: "x", Version: 1})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the call took %v", d)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the peer's request was not cancelled")
	}
	n.rep.setOnApply(nil)
	if err := p.Replicate(context.Background(), replication.Update{Key: "a", Value: "x", Version: 2}); err != nil {
		t.Fatalf("the stream after a cancel: %v", err)
	}
	if p.Dials() != 1 {
		t.Fatalf("%d dials: a cancel broke the stream", p.Dials())
	}
}

// recordingDialer remembers the connections it opened.
type recordingDialer struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (d *recordingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
	}
	return c, err
}

func (d *recordingDialer) last() net.Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns[len(d.conns)-1]
}

// A broken connection fails the calls in flight with an error whose
// outcome is unknown; the peer redials, and calls go over HTTP meanwhile.
func TestStreamBrokenConnectionAndReconnect(t *testing.T) {
	noLeaks(t)
	n := startStreamNode(t, true, streamLimits)
	var d recordingDialer
	p, _ := streamPeer(t, n, transport.StreamConfig{Dial: d.dial})
	connected(t, p)
	block := make(chan struct{})
	started := make(chan struct{}, 1)
	n.rep.setOnApply(func(ctx context.Context) error {
		started <- struct{}{}
		select {
		case <-block:
		case <-ctx.Done():
		}
		return ctx.Err()
	})
	errc := make(chan error, 1)
	go func() {
		errc <- p.Replicate(context.Background(), replication.Update{Key: "a", Value: "x", Version: 1})
	}()
	<-started
	d.last().Close()
	err := <-errc
	if !errors.Is(err, transport.ErrStreamBroken) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("in flight on a broken stream: %v", err)
	}
	close(block)
	n.rep.setOnApply(nil)
	// The next calls go over HTTP until the redial succeeds, then over
	// the stream again.
	hits := n.httpHit.Load()
	for i := uint64(0); p.Dials() < 2; i++ {
		if err := p.Replicate(context.Background(), replication.Update{Key: "b", Value: "x", Version: 10 + i}); err != nil {
			t.Fatalf("call while redialing: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	connected(t, p)
	hits = n.httpHit.Load() - hits
	if err := p.Replicate(context.Background(), replication.Update{Key: "c", Value: "x", Version: 1}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d calls over HTTP while redialing", hits)
}

// A peer killed with calls in flight fails them; one restarted is
// reconnected to.
func TestStreamPeerKilled(t *testing.T) {
	noLeaks(t)
	n := startStreamNode(t, true, streamLimits)
	p, _ := streamPeer(t, n, transport.StreamConfig{})
	connected(t, p)
	started := make(chan struct{}, 1)
	n.rep.setOnApply(func(ctx context.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	errc := make(chan error, 1)
	go func() {
		errc <- p.Replicate(context.Background(), replication.Update{Key: "a", Value: "x", Version: 1})
	}()
	<-started
	n.srv.Kill()
	if err := <-errc; !errors.Is(err, transport.ErrStreamBroken) {
		t.Fatalf("in flight when the peer died: %v", err)
	}
	// The killed server refuses new streams (503): calls go over HTTP.
	n.rep.setOnApply(nil)
	for range 5 {
		if err := p.Replicate(context.Background(), replication.Update{Key: "b", Value: "x", Version: 1}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if p.Connected() {
		t.Fatal("connected to a closed stream server")
	}
}

// A peer without the stream endpoint gets every call over HTTP.
func TestStreamFallbackToHTTP(t *testing.T) {
	noLeaks(t)
	n := startStreamNode(t, false, streamLimits)
	p, _ := streamPeer(t, n, transport.StreamConfig{})
	for i := range 20 {
		if err := p.Replicate(context.Background(), replication.Update{Key: "a", Value: "x", Version: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if p.Connected() || p.Dials() != 0 {
		t.Fatal("connected to a peer without the stream")
	}
	if n.httpHit.Load() != 20 {
		t.Fatalf("%d calls over HTTP, want 20", n.httpHit.Load())
	}
}

// A message over the peer's limits is refused as HTTP's 413 would be, and
// the stream stays up.
func TestStreamTooLarge(t *testing.T) {
	noLeaks(t)
	n := startStreamNode(t, true, transport.Limits{MaxKeyBytes: 16, MaxValueBytes: 16})
	p, _ := streamPeer(t, n, transport.StreamConfig{})
	connected(t, p)
	for _, us := range [][]replication.Update{
		{{Key: "a", Value: strings.Repeat("x", 100), Version: 1}},                                    // a value over the limit
		{{Key: "a", Value: strings.Repeat("x", 8<<20), Version: 1}},                                  // a frame over the limit
		{{Key: strings.Repeat("k", 17), Value: "x", Version: 1}, {Key: "b", Value: "x", Version: 1}}, // a key
	} {
		err := p.ReplicateBatch(context.Background(), us)
		var se *transport.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusRequestEntityTooLarge || !errors.Is(err, replication.ErrRefused) {
			t.Fatalf("oversized message: %v, want a 413 refusal", err)
		}
	}
	if err := p.Replicate(context.Background(), replication.Update{Key: "a", Value: "x", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if p.Dials() != 1 {
		t.Fatalf("%d dials, want 1", p.Dials())
	}
}

// The server's Close lets the requests in progress answer first.
func TestStreamServerCloseAnswersInFlight(t *testing.T) {
	noLeaks(t)
	n := startStreamNode(t, true, streamLimits)
	p, _ := streamPeer(t, n, transport.StreamConfig{})
	connected(t, p)
	started := make(chan struct{}, 1)
	n.rep.setOnApply(func(ctx context.Context) error {
		started <- struct{}{}
		time.Sleep(50 * time.Millisecond)
		return nil
	})
	errc := make(chan error, 1)
	go func() {
		errc <- p.Replicate(context.Background(), replication.Update{Key: "a", Value: "x", Version: 1})
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("a request in progress at Close: %v", err)
	}
}

// Faults apply to the stream as to HTTP: a partition fails new messages at
// once and breaks the open connection; after healing the stream works
// again. Delays apply per message.
func TestStreamFaults(t *testing.T) {
	noLeaks(t)
	n := startStreamNode(t, true, streamLimits)
	f := transport.NewFaults()
	self := "127.0.0.1:1"
	to := n.ts.Listener.Addr().String()
	p, _ := streamPeer(t, n, transport.StreamConfig{Dial: f.Dialer(self), Wrap: f.Wrap(self)})
	connected(t, p)
	ctx := context.Background()

	f.Partition(self, to)
	if err := p.Replicate(ctx, replication.Update{Key: "a", Value: "x", Version: 2}); !errors.Is(err, transport.ErrDropped) {
		t.Fatalf("across a partition: %v", err)
	}
	if err := p.Probe(ctx); !errors.Is(err, transport.ErrDropped) {
		t.Fatalf("probe across a partition: %v", err)
	}
	f.Heal()
	if err := p.Replicate(ctx, replication.Update{Key: "a", Value: "x", Version: 3}); err != nil {
		t.Fatalf("after healing: %v", err)
	}

	// A partition while a call is in flight breaks the connection (its
	// answer may still arrive, as over HTTP); after healing the peer
	// redials.
	started := make(chan struct{}, 1)
	n.rep.setOnApply(func(ctx context.Context) error {
		select {
		case started <- struct{}{}:
		default:
		}
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	errc := make(chan error, 1)
	go func() { errc <- p.Replicate(ctx, replication.Update{Key: "a", Value: "x", Version: 4}) }()
	<-started
	f.Partition(self, to)
	if err := <-errc; err != nil && !errors.Is(err, transport.ErrStreamBroken) && !errors.Is(err, transport.ErrDropped) {
		t.Fatalf("in flight across a partition: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("a partition did not break the stream")
		}
		time.Sleep(time.Millisecond)
	}
	n.rep.setOnApply(nil)
	f.Heal()
	deadline = time.Now().Add(5 * time.Second)
	for p.Dials() < 2 || !p.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not come back after healing")
		}
		if err := p.Replicate(ctx, replication.Update{Key: "a", Value: "x", Version: 5}); err != nil {
			t.Fatalf("after healing: %v", err)
		}
		time.Sleep(time.Millisecond)
	}

	f.Delay(to, 100*time.Millisecond)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := p.Replicate(ctx, replication.Update{Key: "d", Value: "x", Version: uint64(10 + i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d < 100*time.Millisecond || d > 900*time.Millisecond {
		t.Fatalf("10 delayed messages in parallel took %v, want about 100ms", d)
	}
}

// Closing the peer fails what is in flight and sends later calls over
// HTTP.
func TestStreamPeerClose(t *testing.T) {
	noLeaks(t)
	n := startStreamNode(t, true, streamLimits)
	p, _ := streamPeer(t, n, transport.StreamConfig{})
	connected(t, p)
	p.Close()
	if err := p.Replicate(context.Background(), replication.Update{Key: "a", Value: "x", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if p.Connected() || n.httpHit.Load() != 1 {
		t.Fatalf("after Close: connected %v, %d HTTP calls", p.Connected(), n.httpHit.Load())
	}
}

// httpPeerMessages sums the node-to-node update and read messages a node
// served over HTTP (its kvdb_http_requests_total).
func httpPeerMessages(t *testing.T, url string) int {
	t.Helper()
	return sumMetric(t, url, "kvdb_http_requests_total{", `route="internal_replicate"`, `route="internal_replicate_batch"`, `route="internal_read"`)
}

// sumMetric sums the samples of a node's metrics whose line starts with
// prefix and contains one of labels.
func sumMetric(t *testing.T, url, prefix string, labels ...string) int {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	total := 0
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		if !slices.ContainsFunc(labels, func(l string) bool { return strings.Contains(line, l) }) {
			continue
		}
		var n int
		fields := strings.Fields(line)
		if _, err := fmt.Sscan(fields[len(fields)-1], &n); err == nil {
			total += n
		}
	}
	return total
}

// A cluster on loopback HTTP with fault injection (as the robustness
// test's -robustness.http runs) sends its replication messages on the
// stream, not HTTP, once the streams are up (in protected mode and with a
// cluster token); with PeerTransport "http" on HTTP.
func TestClusterUsesStream(t *testing.T) {
	for _, tc := range []string{node.PeerStream, node.PeerStream + "+token", node.PeerHTTP} {
		t.Run(tc, func(t *testing.T) {
			pt, token, _ := strings.Cut(tc, "+")
			cfg := cluster.Config{Preset: "w3r3", Faults: transport.NewFaults()}
			cfg.Node.PeerTransport = pt
			if token != "" {
				// The handshake carries the cluster token.
				cfg.Node.Server.ClusterToken = "s3cret"
			}
			c, err := cluster.Start(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			hc := cluster.Client()
			defer hc.CloseIdleConnections()
			urls := c.URLs()
			do := func(i int) {
				resp, err := hc.Post(urls[0]+"/set", "application/json", strings.NewReader(fmt.Sprintf(`{"key":"k%d","value":"v"}`, i)))
				if err != nil {
					t.Fatal(err)
				}
				drainResp(resp)
				resp, err = hc.Get(fmt.Sprintf("%s/get/k%d", urls[1], i))
				if err != nil {
					t.Fatal(err)
				}
				drainResp(resp)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("get: %d", resp.StatusCode)
				}
			}
			for i := range 50 {
				do(i)
			}
			if pt == node.PeerStream {
				// The streams come up in the background (calls go over
				// HTTP meanwhile): node1 writes to every peer, node2 reads
				// from every peer.
				deadline := time.Now().Add(10 * time.Second)
				for sumMetric(t, urls[0], "kvdb_peer_stream_connects_total{", "peer=") < 4 || sumMetric(t, urls[1], "kvdb_peer_stream_connects_total{", "peer=") < 4 {
					if time.Now().After(deadline) {
						t.Fatal("the streams did not come up")
					}
					do(0)
					time.Sleep(10 * time.Millisecond)
				}
			}
			// Background replication of the warm-up settles.
			deadline := time.Now().Add(10 * time.Second)
			for c.Nodes()[0].Pending() > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			// Per node: messages served over HTTP, and calls a stream peer
			// sent over HTTP (its stream not up: a peer's first calls).
			counts := func() (served, sent []int) {
				for _, u := range urls {
					served = append(served, httpPeerMessages(t, u))
					sent = append(sent, sumMetric(t, u, "kvdb_peer_stream_calls_total{", `path="http"`))
				}
				return served, sent
			}
			servedBefore, sentBefore := counts()
			for i := range 200 {
				do(i)
			}
			servedAfter, sentAfter := counts()
			got, fellBack := 0, 0
			for i := range urls {
				got += servedAfter[i] - servedBefore[i]
				fellBack += sentAfter[i] - sentBefore[i]
			}
			switch {
			case pt == node.PeerStream && (sentAfter[0] != sentBefore[0] || sentAfter[1] != sentBefore[1]):
				t.Fatalf("node1 and node2 sent %d and %d calls over HTTP with their streams up",
					sentAfter[0]-sentBefore[0], sentAfter[1]-sentBefore[1])
			case pt == node.PeerStream && got > fellBack:
				// (Probes fall back to GET /health, which is not counted.)
				t.Fatalf("%d peer messages served over HTTP, only %d sent there by peers whose stream was not up yet", got, fellBack)
			case pt == node.PeerHTTP && got < 200:
				t.Fatalf("%d peer messages over HTTP, want at least 200", got)
			}
			t.Logf("%s: %d peer messages over HTTP for 200 writes and 200 quorum reads", tc, got)
		})
	}
}

// Many concurrent calls, some cancelled early, all get their answers: no
// answer is lost or given to the wrong caller.
func TestStreamStress(t *testing.T) {
	noLeaks(t)
	n := startStreamNode(t, true, streamLimits)
	p, _ := streamPeer(t, n, transport.StreamConfig{MaxInFlight: 16})
	connected(t, p)
	var wg sync.WaitGroup
	var version atomic.Uint64
	for g := range 32 {
		wg.Go(func() {
			for i := range 300 {
				key := fmt.Sprintf("g%d-%d", g, i%7)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if i%10 == 9 {
					// A caller that gives up at once.
					ctx2, cancel2 := context.WithCancel(ctx)
					cancel2()
					if err := p.Replicate(ctx2, replication.Update{Key: key, Value: "x", Version: version.Add(1)}); err != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("cancelled call: %v", err)
					}
				}
				v := version.Add(1)
				value := fmt.Sprintf("%s=%d", key, v)
				if err := p.Replicate(ctx, replication.Update{Key: key, Value: value, Version: v}); err != nil {
					t.Errorf("replicate: %v", err)
				}
				e, ok, err := p.Read(ctx, key)
				cancel()
				switch {
				case err != nil:
					t.Errorf("read: %v", err)
				case !ok || !strings.HasPrefix(e.Value, key+"="):
					t.Errorf("read %q: %q (found %v): another call's answer", key, e.Value, ok)
				}
				if t.Failed() {
					return
				}
			}
		})
	}
	wg.Wait()
	if p.Dials() != 1 {
		t.Fatalf("%d dials", p.Dials())
	}
}

// The paper delay profile over the stream: a W5 write takes its four
// sequential steps (ack after a 100 ms apply, 200 ms gap: 1.2 s), and R=5
// reads made meanwhile, whose peer reads sleep 50 ms, are not held up
// behind the sleeping applies on the same connections.
func TestStreamPaperDelays(t *testing.T) {
	if testing.Short() {
		t.Skip("paper delays take seconds")
	}
	cfg := cluster.Config{Preset: "w5r1"}
	cfg.Node.Replication.Delays = replication.PaperDelays()
	c, err := cluster.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	hc := cluster.Client()
	defer hc.CloseIdleConnections()
	urls := c.URLs()
	set := func(key string) time.Duration {
		start := time.Now()
		resp, err := hc.Post(urls[0]+"/set", "application/json", strings.NewReader(`{"key":"`+key+`","value":"v"}`))
		if err != nil {
			t.Error(err)
			return 0
		}
		drainResp(resp)
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("set: %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	set("warm") // node1's streams come up (its first messages may go over HTTP)
	sentHTTP := func() int { return sumMetric(t, urls[0], "kvdb_peer_stream_calls_total{", `path="http"`) }
	before := sentHTTP()
	var wg sync.WaitGroup
	var write time.Duration
	wg.Go(func() { write = set("k") })
	time.Sleep(150 * time.Millisecond) // the write is under way: peers sleep in its applies
	var slowest time.Duration
	for range 5 {
		start := time.Now()
		resp, err := hc.Get(urls[0] + "/get/warm?r=5")
		if err != nil {
			t.Fatal(err)
		}
		drainResp(resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("get: %d", resp.StatusCode)
		}
		slowest = max(slowest, time.Since(start))
	}
	wg.Wait()
	if after := sentHTTP(); after != before {
		t.Errorf("node1 sent %d calls over HTTP", after-before)
	}
	if write < 1200*time.Millisecond || write > 4*time.Second {
		t.Errorf("W5 write took %v, want the paper floor of 1.2 s", write)
	}
	if slowest < 50*time.Millisecond || slowest > time.Second {
		t.Errorf("R5 reads during the write took up to %v, want about 50 ms", slowest)
	}
	t.Logf("W5 write %v; R5 reads during it at most %v", write, slowest)
}

func drainResp(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
