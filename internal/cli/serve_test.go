package cli

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestServeUsageListsEveryFlagWithItsEnv(t *testing.T) {
	code, _, stderr := runCmd(t, Serve, "-h")
	if code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	for _, f := range []string{"id", "listen", "mode", "peers", "leader", "role", "leader-url", "w", "r", "delays",
		"peer-timeout", "request-timeout", "retry-for", "tombstone-ttl", "shutdown-timeout", "max-key-bytes", "max-value-bytes",
		"hinted-handoff", "read-repair", "catch-up", "data-dir", "fsync", "cluster-token", "log-level"} {
		if !strings.Contains(stderr, "--"+f+" ") || !strings.Contains(stderr, "[env "+envName(f)+"]") {
			t.Errorf("usage lacks --%s or %s", f, envName(f))
		}
	}
}

// An invalid configuration, from flags or from the environment, exits 2
// and names every problem.
func TestServeInvalidConfig(t *testing.T) {
	code, _, stderr := runCmd(t, Serve, "--id", "x", "--peers", "a=http://h:1,b=ftp://z", "--w", "9", "--mode", "leaderless")
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{`"ftp://z" is not an http(s) base URL`, `self id "x" is not among the members`, "w=9 outside 1..2"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("message lacks %q:\n%s", want, stderr)
		}
	}
	var errb syncBuffer
	env := Env{Stdout: &syncBuffer{}, Stderr: &errb, Getenv: func(k string) string {
		return map[string]string{"KVDB_W": "abc"}[k]
	}}
	if code := Serve(context.Background(), nil, env); code != 2 || !strings.Contains(errb.String(), "KVDB_W") {
		t.Fatalf("KVDB_W=abc: exit %d, %q", code, errb.String())
	}
	if code, _, _ := runCmd(t, Serve, "--mode", "raft"); code != 2 {
		t.Fatalf("unknown mode: exit %d, want 2", code)
	}
}

// A node configured by environment variables serves, and stops cleanly
// with exit 0 when its context is cancelled.
func TestServeFromEnvironment(t *testing.T) {
	port := freePort(t)
	vars := map[string]string{"KVDB_LISTEN": "127.0.0.1:" + strconv.Itoa(port), "KVDB_ID": "solo", "KVDB_MODE": "leaderless", "KVDB_LOG_LEVEL": "error"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Serve(ctx, nil, Env{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, Getenv: func(k string) string { return vars[k] }})
	}()
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/health"
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("node configured from env never answered %s: %v", url, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after cancel, want 0", code)
	}
}

func TestClusterCommand(t *testing.T) {
	if code, _, stderr := runCmd(t, Cluster, "--config", "w9r9"); code != 2 || !strings.Contains(stderr, "unknown config") {
		t.Fatalf("unknown config: exit %d %q", code, stderr)
	}
	base := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Cluster(ctx, []string{"--config", "w3r3", "--n", "3", "--base-port", strconv.Itoa(base)}, Env{Stdout: &out, Stderr: &syncBuffer{}})
	}()
	deadline := time.Now().Add(30 * time.Second) // a bound on a hang, not a speed assertion: a loaded 2-core machine under -race can take seconds
	for !strings.Contains(out.String(), "press Ctrl-C") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("cluster did not start:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{"node1  leader", "127.0.0.1:" + strconv.Itoa(base), "node3  follower"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	cancel()
	if code := <-done; code != 0 || !strings.Contains(out.String(), "stopped") {
		t.Fatalf("exit %d after cancel:\n%s", code, out.String())
	}
}

func TestExperimentBadUsage(t *testing.T) {
	for _, args := range [][]string{{"--ratios", "150"}, {"--ratios", "x"}, {"--configs", "w9r9"}, {"--delays", "slow"}} {
		code, _, stderr := runCmd(t, Experiment, args...)
		if code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
