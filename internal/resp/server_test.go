package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/kvdb/kvdb/internal/replication"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeBackend is a map with injectable errors and a gate that holds
// writes of chosen keys.
type fakeBackend struct {
	mu     sync.Mutex
	data   map[string]string
	errW   error // returned by Write and Delete when set
	errR   error // returned by Read when set
	info   replication.Info
	hold   map[string]chan struct{} // Write of the key waits for the channel (or ctx)
	rhold  map[string]chan struct{} // Read of the key waits for the channel (or ctx)
	writes int
}

func newFake() *fakeBackend {
	return &fakeBackend{data: map[string]string{}, hold: map[string]chan struct{}{}, rhold: map[string]chan struct{}{},
		info: replication.Info{Node: "node1", Mode: replication.LeaderFollower, Role: "leader", Leader: "node1", W: 3, R: 1, N: 5, Term: 2}}
}

func (f *fakeBackend) Write(ctx context.Context, key, value string, _ replication.Options) (replication.WriteResult, error) {
	f.mu.Lock()
	gate, err := f.hold[key], f.errW
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return replication.WriteResult{}, ctx.Err()
		}
	}
	if err != nil {
		return replication.WriteResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[key] = value
	f.writes++
	return replication.WriteResult{Key: key, Version: 1, Acks: 3, W: 3}, nil
}

func (f *fakeBackend) Read(ctx context.Context, key string, _ replication.Options) (replication.ReadResult, error) {
	f.mu.Lock()
	gate := f.rhold[key]
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return replication.ReadResult{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errR != nil {
		return replication.ReadResult{}, f.errR
	}
	v, ok := f.data[key]
	if !ok {
		return replication.ReadResult{}, replication.ErrNotFound
	}
	return replication.ReadResult{Key: key, Value: v}, nil
}

func (f *fakeBackend) Delete(_ context.Context, key string, _ replication.Options) (replication.WriteResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errW != nil {
		return replication.WriteResult{}, f.errW
	}
	delete(f.data, key)
	return replication.WriteResult{Key: key}, nil
}

func (f *fakeBackend) Info() replication.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.info
}

func (f *fakeBackend) Quorums() (w, r int) {
	inf := f.Info()
	return inf.W, inf.R
}

func (f *fakeBackend) Ready() bool { return true }

func (f *fakeBackend) Keys() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.data)
}

func (f *fakeBackend) Pending() int { return 0 }

func (f *fakeBackend) set(fn func(f *fakeBackend)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// startFake serves a fake backend on a free port until the test ends.
func startFake(t *testing.T, cfg Config) (*Server, *fakeBackend, string) {
	t.Helper()
	b := newFake()
	s, err := New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("serve returned %v", err)
		}
	})
	return s, b, l.Addr().String()
}

// newClient is a go-redis client that does not retry, so errors show.
func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a plain TCP connection for exact replies.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// send writes a command as a RESP array.
func (rc *rawConn) send(args ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	rc.write(b.String())
}

func (rc *rawConn) write(s string) {
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// line reads one reply line (without its CRLF).
func (rc *rawConn) line() string {
	rc.t.Helper()
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("reading a reply: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func TestCommands(t *testing.T) {
	ctx := context.Background()
	_, b, addr := startFake(t, Config{})
	c := newClient(t, addr) // go-redis sends HELLO 3 and falls back to RESP2
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET k = %q, %v", v, err)
	}
	if err := c.Get(ctx, "missing").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET missing: %v, want redis.Nil", err)
	}
	if err := c.Set(ctx, "empty", "", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "empty").Result(); err != nil || v != "" {
		t.Fatalf("GET empty = %q, %v", v, err)
	}
	if n, err := c.Exists(ctx, "k", "missing", "k").Result(); err != nil || n != 2 {
		t.Fatalf("EXISTS k missing k = %d, %v; want 2", n, err)
	}
	if n, err := c.Del(ctx, "k", "missing", "k").Result(); err != nil || n != 1 {
		t.Fatalf("DEL k missing k = %d, %v; want 1", n, err)
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after DEL = %d, %v", n, err)
	}
	if v, err := c.Ping(ctx).Result(); err != nil || v != "PONG" {
		t.Fatalf("PING = %q, %v", v, err)
	}
	if v, err := c.Do(ctx, "PING", "hi").Text(); err != nil || v != "hi" {
		t.Fatalf("PING hi = %q, %v", v, err)
	}
	if v, err := c.Echo(ctx, "a b\r\nc").Result(); err != nil || v != "a b\r\nc" {
		t.Fatalf("ECHO = %q, %v", v, err)
	}
	if err := c.Do(ctx, "SELECT", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "SELECT", "1").Err(); err == nil || !strings.Contains(err.Error(), "DB index is out of range") {
		t.Fatalf("SELECT 1: %v", err)
	}
	if err := c.Do(ctx, "CLIENT", "SETNAME", "tester").Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Do(ctx, "CLIENT", "GETNAME").Text(); err != nil || v != "tester" {
		t.Fatalf("CLIENT GETNAME = %q, %v", v, err)
	}
	if err := c.Do(ctx, "CLIENT", "SETINFO", "LIB-NAME", "x").Err(); err != nil {
		t.Fatal(err)
	}
	hello, err := c.Do(ctx, "HELLO", "2").Slice()
	if err != nil || len(hello) != 14 || hello[0] != "server" || hello[1] != "kvdb" {
		t.Fatalf("HELLO 2 = %v, %v", hello, err)
	}
	if err := c.Do(ctx, "HELLO", "3").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPROTO") {
		t.Fatalf("HELLO 3: %v, want NOPROTO", err)
	}
	if n, err := c.Do(ctx, "COMMAND", "COUNT").Int(); err != nil || n != 13 {
		t.Fatalf("COMMAND COUNT = %d, %v", n, err)
	}
	if cmds, err := c.Do(ctx, "COMMAND").Slice(); err != nil || len(cmds) != 13 {
		t.Fatalf("COMMAND: %d entries, %v", len(cmds), err)
	}
	if docs, err := c.Do(ctx, "COMMAND", "DOCS", "get", "nosuch").Slice(); err != nil || len(docs) != 2 || docs[0] != "get" {
		t.Fatalf("COMMAND DOCS get nosuch = %v, %v", docs, err)
	}
	if v, err := c.Do(ctx, "CONFIG", "GET", "save").StringSlice(); err != nil || len(v) != 2 || v[0] != "save" || v[1] != "" {
		t.Fatalf("CONFIG GET save = %q, %v", v, err)
	}
	if v, err := c.Do(ctx, "CONFIG", "GET", "append*").StringSlice(); err != nil || len(v) != 2 || v[1] != "no" {
		t.Fatalf("CONFIG GET append* = %q, %v", v, err)
	}
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Replication\r\n", "role:master\r\n", "kvdb_mode:leader-follower\r\n", "kvdb_leader:node1\r\n", "kvdb_w:3\r\n", "kvdb_r:1\r\n", "kvdb_n:5\r\n", "kvdb_term:2\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO replication lacks %q:\n%s", want, info)
		}
	}
	if strings.Contains(info, "# Server") {
		t.Errorf("INFO replication has other sections:\n%s", info)
	}
	all, err := c.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Server\r\n", "# Clients\r\nconnected_clients:1\r\n", "# Memory\r\nused_memory:", "# Stats\r\n", "# Replication\r\n", "# Keyspace\r\ndb0:keys=1,"} {
		if !strings.Contains(all, want) {
			t.Errorf("INFO lacks %q:\n%s", want, all)
		}
	}
	b.set(func(f *fakeBackend) { f.info.Role, f.info.Leader = "follower", "node2" })
	info, err = c.Info(ctx, "replication").Result()
	if err != nil || !strings.Contains(info, "role:slave\r\n") || !strings.Contains(info, "master_link_status:up\r\n") {
		t.Fatalf("follower INFO replication: %v\n%s", err, info)
	}
}

// TestErrors checks the exact error replies: Redis's own forms for
// unknown commands, arity and syntax, kvdb's rules, and the mapping of
// the engine's errors.
func TestErrors(t *testing.T) {
	_, b, addr := startFake(t, Config{MaxKeyBytes: 8, MaxValueBytes: 16, Addrs: map[string]string{"node2": "10.0.0.2:6379"}})
	rc := dialRaw(t, addr)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"FOO", "a", "b"}, "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' "},
		{[]string{"nosuch"}, "-ERR unknown command 'nosuch', with args beginning with: "},
		{[]string{"GET"}, "-ERR wrong number of arguments for 'get' command"},
		{[]string{"get", "a", "b"}, "-ERR wrong number of arguments for 'get' command"},
		{[]string{"SET", "k"}, "-ERR wrong number of arguments for 'set' command"},
		{[]string{"PING", "a", "b"}, "-ERR wrong number of arguments for 'ping' command"},
		{[]string{"SET", "k", "v", "EX", "10"}, "-ERR SET option EX is not supported by kvdb (no expiry, no conditional writes): send SET key value"},
		{[]string{"SET", "k", "v", "nx"}, "-ERR SET option NX is not supported by kvdb (no expiry, no conditional writes): send SET key value"},
		{[]string{"SET", "k", "v", "bogus"}, "-ERR syntax error"},
		{[]string{"SET", "", "v"}, "-ERR empty key: kvdb keys are 1 to 8 bytes of valid UTF-8"},
		{[]string{"SET", "123456789", "v"}, "-ERR key is 9 bytes, limit 8"},
		{[]string{"SET", "k", strings.Repeat("v", 17)}, "-ERR value is 17 bytes, limit 16"},
		{[]string{"SET", "k\xff", "v"}, "-ERR key is not valid UTF-8: kvdb keys and values are UTF-8 text"},
		{[]string{"SET", "k", "\xc3\x28"}, "-ERR value is not valid UTF-8: kvdb keys and values are UTF-8 text"},
		{[]string{"GET", ""}, "$-1"},
		{[]string{"EXISTS", "", "k\xff"}, ":0"},
		{[]string{"CLIENT", "NOPE"}, "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP."},
		{[]string{"CLIENT", "SETNAME", "a b"}, "-ERR Client names cannot contain spaces, newlines or special characters."},
		{[]string{"CLIENT", "SETNAME"}, "-ERR wrong number of arguments for 'client|setname' command"},
		{[]string{"COMMAND", "NOPE"}, "-ERR unknown subcommand 'NOPE'. Try COMMAND HELP."},
		{[]string{"CONFIG", "SET", "save", ""}, "-ERR CONFIG SET is not supported by kvdb (W and R change with PUT /config on the HTTP API)"},
		{[]string{"SELECT", "x"}, "-ERR value is not an integer or out of range"},
		{[]string{"HELLO", "x"}, "-ERR Protocol version is not an integer or out of range"},
		{[]string{"HELLO", "2", "AUTH", "u", "p"}, "-ERR AUTH is not supported: kvdb's RESP port has no passwords (keep it on a trusted network)"},
	} {
		rc.send(tc.args...)
		if got := rc.line(); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.args, got, tc.want)
		}
	}

	// The engine's errors.
	for _, tc := range []struct {
		write error
		read  error
		want  string
	}{
		{write: &replication.QuorumError{Op: "write", Acks: 3, Required: 5, N: 5}, want: "-NOREPLICAS Not enough good replicas to write: 3 of 5 required copies acknowledged (n=5); the write may still be applied on the copies that took it"},
		{write: &replication.NotLeaderError{LeaderID: "node2", LeaderURL: "http://10.0.0.2:8080"}, want: "-READONLY You can't write against a read only replica. (leader: node2 10.0.0.2:6379)"},
		{write: &replication.NotLeaderError{LeaderID: "node3", LeaderURL: "http://10.0.0.3:8080"}, want: "-READONLY You can't write against a read only replica. (leader: node3 http://10.0.0.3:8080)"},
		{write: fmt.Errorf("%w: leader node2 does not answer", replication.ErrLeaderUnavailable), want: "-CLUSTERDOWN leader unavailable: leader node2 does not answer"},
		{write: replication.ErrLeaderCatchingUp, want: "-TRYAGAIN the new leader is catching up before it accepts writes; retry shortly"},
		{write: replication.ErrNotReady, want: "-LOADING kvdb is catching up from its peers before it serves clients"},
		{write: replication.ErrStorage, want: "-MISCONF kvdb cannot persist updates to its write-ahead log; it acknowledges nothing until restarted: storage failure"},
		{read: &replication.QuorumError{Op: "read", Acks: 1, Required: 3, N: 5}, want: "-NOREPLICAS Not enough good replicas to read: 1 of 3 required copies acknowledged (n=5)"},
	} {
		b.set(func(f *fakeBackend) { f.errW, f.errR = tc.write, tc.read })
		if tc.write != nil {
			rc.send("SET", "k", "v")
		} else {
			rc.send("GET", "k")
		}
		if got := rc.line(); got != tc.want {
			t.Errorf("%v/%v: got %q, want %q", tc.write, tc.read, got, tc.want)
		}
	}
	b.set(func(f *fakeBackend) { f.errW, f.errR = nil, nil })
	rc.send("PING")
	if got := rc.line(); got != "+PONG" {
		t.Fatalf("connection unusable after errors: %q", got)
	}
}

// TestProtocolLimits: a command over the limits ends the connection with
// Redis's protocol error, after answering what came before it.
func TestProtocolLimits(t *testing.T) {
	s, _, addr := startFake(t, Config{MaxKeyBytes: 8, MaxValueBytes: 16, MaxCommandBytes: 200, MaxArgs: 10})
	for _, tc := range []struct{ name, in, want string }{
		{"huge bulk length", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9223372036854775807\r\n", "-ERR Protocol error: invalid bulk length"},
		{"bulk length over the limit", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$201\r\n", "-ERR Protocol error: invalid bulk length (201 bytes, limit 200)"},
		{"command too large", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$190\r\n", "-ERR Protocol error: command too large (over 200 bytes)"},
		{"too many arguments", "*11\r\n", "-ERR Protocol error: too many arguments in one command (11, limit 10)"},
		{"inline too big", strings.Repeat("x", 70<<10), "-ERR Protocol error: too big inline request"},
		{"not RESP", "*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, addr)
			rc.write("PING\r\n" + tc.in)
			if got := rc.line(); got != "+PONG" {
				t.Fatalf("first reply %q", got)
			}
			if got := rc.line(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if b, err := rc.r.ReadByte(); err == nil {
				t.Fatalf("connection still open (read %q)", b)
			}
		})
	}
	waitFor(t, func() bool { return testutil.ToFloat64(s.m.protocolErrors) == 6 })
}

// TestPipeline: replies come back in order, and a QUIT ends the pipeline.
func TestPipeline(t *testing.T) {
	ctx := context.Background()
	_, b, addr := startFake(t, Config{})
	c := newClient(t, addr)
	const n = 500
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			p.Set(ctx, fmt.Sprint("k", i), fmt.Sprint("v", i), 0)
			p.Get(ctx, fmt.Sprint("k", i))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if v := cmds[2*i+1].(*redis.StringCmd).Val(); v != fmt.Sprint("v", i) {
			t.Fatalf("reply %d: %q", i, v)
		}
	}
	rc := dialRaw(t, addr)
	rc.write("*1\r\n$4\r\nQUIT\r\n*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$1\r\nx\r\n")
	if got := rc.line(); got != "+OK" {
		t.Fatalf("QUIT: %q", got)
	}
	if _, err := rc.r.ReadByte(); err == nil {
		t.Fatal("connection open after QUIT")
	}
	b.mu.Lock()
	_, ran := b.data["after"]
	b.mu.Unlock()
	if ran {
		t.Fatal("a command pipelined after QUIT ran")
	}
}

// TestLargeRepliesFlushMidPipeline: a pipeline of GETs of large values
// has its replies written out as they go, not held for the whole batch.
func TestLargeRepliesFlushMidPipeline(t *testing.T) {
	_, b, addr := startFake(t, Config{})
	big := strings.Repeat("v", flushAfter+1)
	gate := make(chan struct{})
	b.set(func(f *fakeBackend) { f.data["big"] = big; f.rhold["gate"] = gate })
	rc := dialRaw(t, addr)
	rc.write("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n*2\r\n$3\r\nGET\r\n$4\r\ngate\r\n")
	// The GET of gate is still waiting: the big reply must arrive anyway.
	if got := rc.line(); got != fmt.Sprintf("$%d", len(big)) {
		t.Fatalf("first reply header %q", got)
	}
	if got := rc.line(); got != big {
		t.Fatalf("first reply of %d bytes", len(got))
	}
	close(gate)
	if got := rc.line(); got != "$-1" {
		t.Fatalf("second reply %q", got)
	}
}

// TestSlowWriteHoldsOnlyItsConnection: a SET waiting for its
// acknowledgements delays the commands behind it on its own connection,
// and no other connection's.
func TestSlowWriteHoldsOnlyItsConnection(t *testing.T) {
	ctx := context.Background()
	_, b, addr := startFake(t, Config{})
	gate := make(chan struct{})
	b.set(func(f *fakeBackend) { f.hold["slow"] = gate })
	slow := dialRaw(t, addr)
	slow.send("SET", "slow", "1")
	slow.send("GET", "slow")
	c := newClient(t, addr)
	for i := range 20 {
		if err := c.Set(ctx, fmt.Sprint("fast", i), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	if got := slow.line(); got != "+OK" {
		t.Fatalf("slow SET: %q", got)
	}
	if got := slow.line(); got != "$1" {
		t.Fatalf("GET after the slow SET: %q", got)
	}
}

// TestCloseLetsCommandsFinish: Close waits for a command in flight (new
// ones are refused meanwhile); a cancelled Close cuts it short.
func TestCloseLetsCommandsFinish(t *testing.T) {
	for _, graceful := range []bool{true, false} {
		t.Run(fmt.Sprint("graceful=", graceful), func(t *testing.T) {
			b := newFake()
			gate := make(chan struct{})
			b.hold["slow"] = gate
			s, err := New(Config{}, b)
			if err != nil {
				t.Fatal(err)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- s.Serve(l) }()
			slow := dialRaw(t, l.Addr().String())
			other := dialRaw(t, l.Addr().String())
			other.send("PING")
			if got := other.line(); got != "+PONG" {
				t.Fatal(got)
			}
			slow.send("SET", "slow", "1")
			waitFor(t, func() bool { return s.active.Load() == 1 })
			ctx, cancel := context.WithCancel(context.Background())
			if !graceful {
				cancel()
			}
			closed := make(chan error, 1)
			go func() { closed <- s.Close(ctx) }()
			if graceful {
				waitFor(t, func() bool { return s.draining.Load() })
				other.send("PING")
				if got := other.line(); got != "-ERR kvdb is shutting down" {
					t.Fatalf("command during the stop: %q", got)
				}
				close(gate)
				if got := slow.line(); got != "+OK" {
					t.Fatalf("SET in flight: %q", got)
				}
			} else {
				if _, err := slow.r.ReadString('\n'); err == nil {
					t.Fatal("a killed server answered the command in flight")
				}
			}
			if err := <-closed; err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := <-served; !errors.Is(err, ErrServerClosed) {
				t.Fatal(err)
			}
		})
	}
}

func TestMaxClients(t *testing.T) {
	_, _, addr := startFake(t, Config{MaxClients: 1})
	first := dialRaw(t, addr)
	first.send("PING")
	if got := first.line(); got != "+PONG" {
		t.Fatal(got)
	}
	second := dialRaw(t, addr)
	if got := second.line(); got != "-ERR max number of clients reached" {
		t.Fatalf("second client: %q", got)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, _, addr := startFake(t, Config{Registerer: reg})
	rc := dialRaw(t, addr)
	rc.send("SET", "k", "v")
	rc.line()
	rc.send("GET")
	rc.line()
	rc.send("NOSUCH")
	rc.line()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"kvdb_resp_commands_total", "kvdb_resp_errors_total", "kvdb_resp_command_duration_seconds", "kvdb_resp_connections", "kvdb_resp_connections_total"} {
		if !got[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{MaxKeyBytes: -1}, {MaxArgs: 2}, {MaxClients: -1}, {RequestTimeout: -1}, {MaxValueBytes: 100, MaxCommandBytes: 50}} {
		c.SetDefaults()
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	c := DefaultConfig()
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
