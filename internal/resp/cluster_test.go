package resp_test

// Tests against real nodes: in-process clusters (package cluster) on
// 127.0.0.1 free ports, HTTP between the nodes and RESP to the clients,
// driven by go-redis v9 and by the Debian redis-tools (redis-cli,
// redis-benchmark) where they are installed (.ci/run installs them).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/node"
)

// startCluster starts a 5-node cluster of preset with RESP on every node,
// closed when the test ends.
func startCluster(t *testing.T, preset string) *cluster.Cluster {
	t.Helper()
	cfg := cluster.DefaultConfig()
	cfg.Preset = preset
	cfg.RESP = true
	cfg.Node = node.DefaultConfig()
	cfg.Node.Replication.PeerTimeout = 500 * time.Millisecond
	ctx := context.Background()
	c, err := cluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

func client(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: 10 * time.Second, PoolSize: 4})
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually retries fn until it returns nil, for 10 seconds.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLeaderFollower: go-redis against a w5r1 cluster — every data
// command on the leader, a pipeline answered in order, a follower that
// serves reads and answers writes with READONLY naming the leader, INFO
// replication on both; then the same with redis-cli and redis-benchmark.
func TestLeaderFollower(t *testing.T) {
	c := startCluster(t, "w5r1")
	ctx := context.Background()
	addrs := c.RESPAddrs()
	leader, follower := client(t, addrs[0]), client(t, addrs[1])

	t.Run("go-redis", func(t *testing.T) {
		if err := leader.Set(ctx, "k", "v1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := leader.Get(ctx, "k").Result(); err != nil || v != "v1" {
			t.Fatalf("GET = %q, %v", v, err)
		}
		// W=5: acknowledged means every copy has it, so R=1 reads on
		// any node see it at once.
		if v, err := follower.Get(ctx, "k").Result(); err != nil || v != "v1" {
			t.Fatalf("follower GET = %q, %v", v, err)
		}
		if err := leader.Get(ctx, "nope").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET nope: %v", err)
		}
		if n, err := leader.Exists(ctx, "k", "nope").Result(); err != nil || n != 1 {
			t.Fatalf("EXISTS = %d, %v", n, err)
		}
		if n, err := leader.Del(ctx, "k", "nope").Result(); err != nil || n != 1 {
			t.Fatalf("DEL = %d, %v", n, err)
		}
		if err := leader.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET after DEL: %v", err)
		}
		if err := follower.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("follower GET after DEL: %v", err)
		}
		if n, err := leader.Del(ctx, "k").Result(); err != nil || n != 0 {
			t.Fatalf("second DEL = %d, %v", n, err)
		}
		if err := leader.Set(ctx, "k", "v2", 0).Err(); err != nil {
			t.Fatalf("SET after DEL: %v", err)
		}
		if v, err := leader.Get(ctx, "k").Result(); err != nil || v != "v2" {
			t.Fatalf("GET after SET after DEL = %q, %v", v, err)
		}
		if err := leader.Set(ctx, "ключ/ü", "", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := leader.Get(ctx, "ключ/ü").Result(); err != nil || v != "" {
			t.Fatalf("GET unicode key = %q, %v", v, err)
		}
		if err := leader.Set(ctx, "bad", "\xff", 0).Err(); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Fatalf("invalid UTF-8 value: %v", err)
		}
		if err := leader.Set(ctx, "big", strings.Repeat("x", 1<<20+1), 0).Err(); err == nil || !strings.Contains(err.Error(), "limit 1048576") {
			t.Fatalf("value over the limit: %v", err)
		}
		if err := leader.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("pipeline", func(t *testing.T) {
		const n = 1000
		cmds, err := leader.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range n {
				p.Set(ctx, fmt.Sprint("p", i), fmt.Sprint("value", i), 0)
				p.Get(ctx, fmt.Sprint("p", i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := cmds[2*i].Err(); err != nil {
				t.Fatalf("SET %d: %v", i, err)
			}
			if v := cmds[2*i+1].(*redis.StringCmd).Val(); v != fmt.Sprint("value", i) {
				t.Fatalf("GET %d answered %q: out of order", i, v)
			}
		}
	})

	t.Run("follower write", func(t *testing.T) {
		err := follower.Set(ctx, "f", "x", 0).Err()
		want := fmt.Sprintf("READONLY You can't write against a read only replica. (leader: node1 %s)", addrs[0])
		if err == nil || err.Error() != want {
			t.Fatalf("SET on a follower: %v, want %q", err, want)
		}
		if err := follower.Del(ctx, "p1").Err(); err == nil || !strings.HasPrefix(err.Error(), "READONLY") {
			t.Fatalf("DEL on a follower: %v", err)
		}
		if err := leader.Get(ctx, "f").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("the refused write was applied: %v", err)
		}
	})

	t.Run("info", func(t *testing.T) {
		li, err := leader.Info(ctx, "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"role:master", "connected_slaves:4", "kvdb_mode:leader-follower", "kvdb_role:leader", "kvdb_leader:node1",
			"kvdb_leader_addr:" + addrs[0], "kvdb_w:5", "kvdb_r:1", "kvdb_n:5"} {
			if !strings.Contains(li, want+"\r\n") {
				t.Errorf("leader INFO replication lacks %q:\n%s", want, li)
			}
		}
		if !regexp.MustCompile(`kvdb_term:[1-9]`).MatchString(li) {
			t.Errorf("no term in\n%s", li)
		}
		fi, err := follower.Info(ctx, "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(addrs[0])
		for _, want := range []string{"role:slave", "master_host:" + host, "master_port:" + port, "master_link_status:up", "kvdb_role:follower"} {
			if !strings.Contains(fi, want+"\r\n") {
				t.Errorf("follower INFO replication lacks %q:\n%s", want, fi)
			}
		}
	})

	t.Run("redis-cli", func(t *testing.T) {
		cli := needTool(t, "redis-cli")
		_, port, _ := net.SplitHostPort(addrs[0])
		_, fport, _ := net.SplitHostPort(addrs[1])
		run := func(port string, args ...string) string {
			t.Helper()
			out, err := exec.Command(cli, append([]string{"-h", "127.0.0.1", "-p", port}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("redis-cli %q: %v\n%s", args, err, out)
			}
			return strings.TrimSpace(string(out))
		}
		for _, tc := range []struct {
			port string
			args []string
			want string
		}{
			{port, []string{"set", "cli", "hello world"}, "OK"},
			{port, []string{"get", "cli"}, "hello world"},
			{fport, []string{"get", "cli"}, "hello world"},
			{port, []string{"exists", "cli", "nope"}, "1"},
			{port, []string{"del", "cli"}, "1"},
			{port, []string{"get", "cli"}, ""},
			{port, []string{"ping"}, "PONG"},
			{port, []string{"echo", "hi"}, "hi"},
			{fport, []string{"set", "cli", "x"}, "READONLY You can't write against a read only replica. (leader: node1 " + addrs[0] + ")"},
			{port, []string{"frob", "a"}, "ERR unknown command 'frob', with args beginning with: 'a'"},
			{port, []string{"get"}, "ERR wrong number of arguments for 'get' command"},
		} {
			if got := run(tc.port, tc.args...); got != tc.want {
				t.Errorf("redis-cli -p %s %q: got %q, want %q", tc.port, tc.args, got, tc.want)
			}
		}
		if info := run(port, "info", "replication"); !strings.Contains(info, "role:master") || !strings.Contains(info, "kvdb_w:5") {
			t.Errorf("redis-cli info replication:\n%s", info)
		}
		// --pipe: many commands in one stream, then redis-cli's own ECHO.
		var in bytes.Buffer
		for i := range 200 {
			fmt.Fprintf(&in, "SET pipe%d %d\r\n", i, i)
		}
		in.WriteString("GET pipe7\r\nDEL pipe7\r\n")
		cmd := exec.Command(cli, "-p", port, "--pipe")
		cmd.Stdin = &in
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "errors: 0, replies: 202") {
			t.Fatalf("redis-cli --pipe: %v\n%s", err, out)
		}
		if got := run(port, "get", "pipe199"); got != "199" {
			t.Fatalf("after --pipe: get pipe199 = %q", got)
		}
		if got := run(port, "exists", "pipe7"); got != "0" {
			t.Fatalf("after --pipe: exists pipe7 = %q", got)
		}
	})

	t.Run("redis-benchmark", func(t *testing.T) {
		bench := needTool(t, "redis-benchmark")
		_, port, _ := net.SplitHostPort(addrs[0])
		cmd := exec.Command(bench, "-h", "127.0.0.1", "-p", port, "-t", "set,get", "-n", "2000", "-c", "50", "-q")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("redis-benchmark: %v\n%s\n%s", err, stdout.String(), stderr.String())
		}
		// -q prints progress lines ending in \r and one final line per test.
		out := stdout.String()
		for _, test := range []string{"SET", "GET"} {
			re := regexp.MustCompile(test + `: [0-9.]+ requests per second`)
			if !re.MatchString(out) {
				t.Errorf("no %s result in\n%s", test, out)
			}
		}
		if strings.Contains(out+stderr.String(), "rror") || strings.Contains(stderr.String(), "WARNING") {
			t.Errorf("redis-benchmark reported errors:\n%s\n%s", out, stderr.String())
		}
		for _, l := range strings.Split(out, "\n") {
			if i := strings.LastIndex(l, "\r"); i >= 0 {
				l = l[i+1:]
			}
			if strings.Contains(l, "requests per second") {
				t.Log(strings.TrimSpace(l))
			}
		}
	})
}

// TestQuorumFailure: with two of five nodes down, a W=5 SET answers
// NOREPLICAS saying how many copies acknowledged; reads still work.
func TestQuorumFailure(t *testing.T) {
	c := startCluster(t, "w5r1")
	ctx := context.Background()
	leader := client(t, c.RESPAddrs()[0])
	if err := leader.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{3, 4} {
		if err := c.Stop(i); err != nil {
			t.Fatal(err)
		}
	}
	// The engine may give up as soon as the quorum cannot be met, so
	// fewer than the three live copies may have answered by then.
	err := leader.Set(ctx, "k", "v", 0).Err()
	if err == nil || !regexp.MustCompile(`^NOREPLICAS Not enough good replicas to write: [1-3] of 5 required copies acknowledged \(n=5\)`).MatchString(err.Error()) {
		t.Fatalf("SET with 2 of 5 nodes down: %v, want NOREPLICAS", err)
	}
	if v, err := leader.Get(ctx, "before").Result(); err != nil || v != "1" {
		t.Fatalf("GET with nodes down = %q, %v", v, err)
	}
	// A stopped node's RESP port refuses connections like its HTTP port.
	down := redis.NewClient(&redis.Options{Addr: c.RESPAddrs()[4], MaxRetries: -1, DialTimeout: time.Second})
	defer down.Close()
	if err := down.Ping(ctx).Err(); err == nil {
		t.Fatal("a stopped node answered")
	}
	// Back up, the node serves RESP again on the same address.
	if err := c.Restart(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "restarted node's RESP port", func() error { return down.Ping(ctx).Err() })
}

// TestLeaderless: every node coordinates writes.
func TestLeaderless(t *testing.T) {
	c := startCluster(t, "leaderless")
	ctx := context.Background()
	for i, addr := range c.RESPAddrs() {
		cl := client(t, addr)
		key := fmt.Sprint("k", i)
		if err := cl.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatalf("SET on node %d: %v", i+1, err)
		}
		if v, err := client(t, c.RESPAddrs()[(i+1)%5]).Get(ctx, key).Result(); err != nil || v != "v" {
			t.Fatalf("GET on the next node = %q, %v", v, err)
		}
		info, err := cl.Info(ctx, "replication").Result()
		if err != nil || !strings.Contains(info, "role:master\r\n") || !strings.Contains(info, "kvdb_mode:leaderless\r\n") {
			t.Fatalf("INFO replication: %v\n%s", err, info)
		}
	}
}

// needTool returns the path of a redis-tools program, or skips the test
// when it is not installed.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (Debian package redis-tools; .ci/run installs it): %v", name, err)
	}
	return p
}
