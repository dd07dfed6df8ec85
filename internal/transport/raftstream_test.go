package transport_test

import (
	"bufio"
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

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"

	"github.com/kvdb/kvdb/internal/transport"
)

// raftServer serves a stream layer's handler at PathRaft on a real HTTP
// server; mw, if not nil, wraps it (the node's authentication).
func raftServer(t *testing.T, mw func(http.Handler) http.Handler) (*httptest.Server, *transport.RaftStreams) {
	t.Helper()
	mux := http.NewServeMux()
	ts := httptest.NewUnstartedServer(mux)
	s, err := transport.NewRaftStreams("http://"+ts.Listener.Addr().String(), "")
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	if mw != nil {
		h = mw(h)
	}
	mux.Handle(transport.PathRaft, h)
	ts.Start()
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return ts, s
}

// noLeaks checks, after the test and its cleanups, that it left no
// goroutine behind.
func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func newStreams(t *testing.T, advertise, token string, opts ...transport.RaftStreamsOption) *transport.RaftStreams {
	t.Helper()
	s, err := transport.NewRaftStreams(advertise, token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// acceptOne returns the next connection s accepts.
func acceptOne(s *transport.RaftStreams) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := s.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

func exchange(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, p := range [][2]net.Conn{{a, b}, {b, a}} {
		msg := "hello from " + p[0].LocalAddr().String()
		errc := make(chan error, 1)
		go func() {
			_, err := io.WriteString(p[0], msg)
			errc <- err
		}()
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(p[1], buf); err != nil {
			t.Fatalf("read: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("write: %v", err)
		}
		if string(buf) != msg {
			t.Fatalf("read %q, want %q", buf, msg)
		}
	}
}

func TestRaftStreamsUpgrade(t *testing.T) {
	noLeaks(t)
	var auth atomic.Value
	ts, srv := raftServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			auth.Store(r.Header.Get("Authorization"))
			h.ServeHTTP(w, r)
		})
	})
	var dials atomic.Int32
	var d net.Dialer
	cli := newStreams(t, "http://127.0.0.1:1", "s3cret", transport.WithRaftDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}))
	if got := srv.Addr().String(); got != ts.URL {
		t.Fatalf("Addr %q, want %q", got, ts.URL)
	}
	accepted := acceptOne(srv)
	c, err := cli.Dial(raft.ServerAddress("http://"+ts.Listener.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-accepted
	if sc == nil {
		t.Fatal("Accept failed")
	}
	defer sc.Close()
	exchange(t, c, sc)
	if got := auth.Load(); got != "Bearer s3cret" {
		t.Fatalf("Authorization %q, want the bearer token", got)
	}
	if dials.Load() != 1 {
		t.Fatalf("custom dialer used %d times, want 1", dials.Load())
	}
	// A second connection works beside the first.
	accepted = acceptOne(srv)
	c2, err := cli.Dial(raft.ServerAddress(ts.URL), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	sc2 := <-accepted
	defer sc2.Close()
	exchange(t, c2, sc2)
	exchange(t, c, sc)
}

// decodeError reads kvdb's JSON error body.
func decodeError(t *testing.T, resp *http.Response) (msg, code string) {
	t.Helper()
	defer resp.Body.Close()
	var e struct{ Error, Code string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("error body: %v", err)
	}
	return e.Error, e.Code
}

func TestRaftStreamsRefusals(t *testing.T) {
	noLeaks(t)
	ts, srv := raftServer(t, nil)
	client := ts.Client()
	defer client.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodPost, ts.URL+transport.PathRaft, nil)
	req.Header.Set("Upgrade", transport.RaftProtocol)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodGet {
		t.Fatalf("POST: %d Allow %q, want 405 Allow GET", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if _, code := decodeError(t, resp); code != "method_not_allowed" {
		t.Fatalf("POST: code %q", code)
	}

	for _, upgrade := range []string{"", "websocket"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+transport.PathRaft, nil)
		if upgrade != "" {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", upgrade)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("Upgrade %q: %d, want 400", upgrade, resp.StatusCode)
		}
		if msg, code := decodeError(t, resp); code != "bad_request" || msg == "" {
			t.Fatalf("Upgrade %q: error %q code %q", upgrade, msg, code)
		}
	}

	// A refused handshake is a Dial error naming the status and the body.
	deny := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"missing or wrong cluster token","code":"unauthorized"}`)
	}))
	defer deny.Close()
	cli := newStreams(t, "http://127.0.0.1:1", "")
	_, err = cli.Dial(raft.ServerAddress(deny.URL), time.Second)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "cluster token") {
		t.Fatalf("Dial to a refusing server: %v, want the 401 and its body", err)
	}

	// After Close the handler answers 503.
	srv.Close()
	req, _ = http.NewRequest(http.MethodGet, ts.URL+transport.PathRaft, nil)
	req.Header.Set("Upgrade", transport.RaftProtocol)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %d, want 503", resp.StatusCode)
	}
	decodeError(t, resp)
}

func TestRaftStreamsCloseUnblocksAcceptAndClosesConns(t *testing.T) {
	noLeaks(t)
	ts, srv := raftServer(t, nil)
	cli := newStreams(t, "http://127.0.0.1:1", "")

	accepted := acceptOne(srv)
	c, err := cli.Dial(raft.ServerAddress(ts.URL), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-accepted
	exchange(t, c, sc)

	errc := make(chan error, 1)
	go func() {
		_, err := srv.Accept()
		errc <- err
	}()
	srv.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Accept")
	}
	// The accepted (hijacked) connection is closed: the dialer reads EOF.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read from a connection the server closed: %v, want EOF", err)
	}
	if _, err := sc.Write([]byte("x")); err == nil {
		t.Fatal("write on a closed accepted connection succeeded")
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Closing the dialing side closes what it dialed, and it dials no more.
	ts2, srv2 := raftServer(t, nil)
	accepted = acceptOne(srv2)
	c2, err := cli.Dial(raft.ServerAddress(ts2.URL), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sc2 := <-accepted
	defer sc2.Close()
	cli.Close()
	sc2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := sc2.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read after the dialer closed: %v, want EOF", err)
	}
	if _, err := c2.Write([]byte("x")); err == nil {
		t.Fatal("write on a dialed connection after Close succeeded")
	}
	if _, err := cli.Dial(raft.ServerAddress(ts2.URL), time.Second); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after Close: %v, want net.ErrClosed", err)
	}
}

func TestRaftStreamsDialFailures(t *testing.T) {
	noLeaks(t)
	cli := newStreams(t, "http://127.0.0.1:1", "")

	// A dead port: refused at once (the bound is a hang check).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	start := time.Now()
	if _, err := cli.Dial(raft.ServerAddress(dead), 10*time.Second); err == nil {
		t.Fatal("Dial to a dead port succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Dial to a dead port took %v", d)
	}

	// A server that never answers: the handshake times out.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := silent.Accept()
		if err == nil {
			held <- c
		}
	}()
	if _, err := cli.Dial(raft.ServerAddress("http://"+silent.Addr().String()), 200*time.Millisecond); err == nil {
		t.Fatal("Dial to a silent server succeeded")
	}
	(<-held).Close()

	for _, bad := range []string{"", "127.0.0.1:80", "https://x:1", "http://"} {
		if _, err := cli.Dial(raft.ServerAddress(bad), time.Second); err == nil {
			t.Fatalf("Dial(%q) succeeded", bad)
		}
		if _, err := transport.NewRaftStreams(bad, ""); err == nil {
			t.Fatalf("NewRaftStreams(%q) succeeded", bad)
		}
	}
	if _, err := transport.NewRaftStreams("http://127.0.0.1:1", "a\r\nX-Evil: 1"); err == nil {
		t.Fatal("a token with CRLF was accepted")
	}
}

// Bytes that arrive in the same packet as the handshake are not lost, on
// either side.
func TestRaftStreamsBufferedBytes(t *testing.T) {
	noLeaks(t)
	// Client side: the 101 and the first bytes in one write.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: kvdb-raft\r\n\r\nearly bytes")
		io.Copy(io.Discard, c)
	}()
	cli := newStreams(t, "http://127.0.0.1:1", "")
	c, err := cli.Dial(raft.ServerAddress("http://"+l.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("early bytes"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "early bytes" {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.Close()

	// Server side: the request and the first bytes in one write.
	ts, srv := raftServer(t, nil)
	accepted := acceptOne(srv)
	raw, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	io.WriteString(raw, "GET /internal/raft HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: kvdb-raft\r\n\r\nping")
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	sc := <-accepted
	defer sc.Close()
	buf = make([]byte, 4)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v", buf, err)
	}
}
