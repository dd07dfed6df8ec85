package cli

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pingRESP sends PING over the Redis protocol and returns the reply line.
func pingRESP(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return "", err
	}
	l, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(l), err
}

// kvdb serve --resp-addr (here from KVDB_RESP_ADDR) serves the Redis
// protocol beside HTTP, and stops with the node.
func TestServeRESP(t *testing.T) {
	port, rport := freePort(t), freePort(t)
	raddr := "127.0.0.1:" + strconv.Itoa(rport)
	vars := map[string]string{"KVDB_LISTEN": "127.0.0.1:" + strconv.Itoa(port), "KVDB_RESP_ADDR": raddr, "KVDB_MODE": "leaderless", "KVDB_LOG_LEVEL": "error"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Serve(ctx, nil, Env{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, Getenv: func(k string) string { return vars[k] }})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := pingRESP(raddr)
		if err == nil && got == "+PONG" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no PONG on %s: %q, %v", raddr, got, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
	if _, err := pingRESP(raddr); err == nil {
		t.Fatal("RESP port still open after the node stopped")
	}
}

func TestServeRESPFlags(t *testing.T) {
	code, _, stderr := runCmd(t, Serve, "-h")
	if code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	for _, f := range []string{"resp-addr", "resp-peers"} {
		if !strings.Contains(stderr, "--"+f+" ") || !strings.Contains(stderr, "[env "+envName(f)+"]") {
			t.Errorf("usage lacks --%s or %s", f, envName(f))
		}
	}
	for _, bad := range [][]string{{"--resp-addr", "nope"}, {"--resp-peers", "node1"}, {"--resp-peers", "node1=nohost"}} {
		if code, _, stderr := runCmd(t, Serve, bad...); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", bad, code, stderr)
		}
	}
	var v respAddrsValue
	if err := v.Set("node1=127.0.0.1:6379, node2=h2:6380"); err != nil {
		t.Fatal(err)
	}
	if v.String() != "node1=127.0.0.1:6379,node2=h2:6380" {
		t.Fatalf("parsed %q", v.String())
	}
}

// kvdb cluster --resp-base-port P prints node i's RESP address on P+i-1
// and serves there.
func TestClusterRESPBasePort(t *testing.T) {
	base := freePorts(t, 6)
	rbase := base + 3
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Cluster(ctx, []string{"--config", "w3r3", "--n", "3", "--base-port", strconv.Itoa(base), "--resp-base-port", strconv.Itoa(rbase)},
			Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "press Ctrl-C") {
		select {
		case code := <-done:
			t.Fatalf("exit %d early:\n%s\n%s", code, out.String(), errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not up:\n%s\n%s", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 3 {
		addr := fmt.Sprintf("127.0.0.1:%d", rbase+i)
		if !regexp.MustCompile(`node` + strconv.Itoa(i+1) + ` .*redis://` + regexp.QuoteMeta(addr)).MatchString(out.String()) {
			t.Errorf("node%d's RESP address %s not printed:\n%s", i+1, addr, out.String())
		}
		if got, err := pingRESP(addr); err != nil || got != "+PONG" {
			t.Errorf("PING node%d: %q, %v", i+1, got, err)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if code, _, _ := runCmd(t, Cluster, "--resp-base-port", "0"); code != 2 {
		t.Fatalf("--resp-base-port 0: exit %d, want 2", code)
	}
}

// freePorts returns the first of n consecutive loopback ports that were
// all free a moment ago.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := freePort(t)
		if base+n-1 > 65535 {
			continue
		}
		var ls []net.Listener
		for i := range n {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}
