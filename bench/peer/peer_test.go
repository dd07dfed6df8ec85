package peer

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

// startPeers runs ../../scripts/bench-peers.sh on a fresh tmpfs directory
// and returns the endpoints it printed; it stops them at cleanup. Skipped
// unless KVDB_PEER_BENCH=1 (it starts Redis and etcd, installing them with
// apt-get when missing).
func startPeers(t *testing.T) map[string]string {
	t.Helper()
	if os.Getenv("KVDB_PEER_BENCH") != "1" {
		t.Skip("set KVDB_PEER_BENCH=1 to test against real Redis and etcd")
	}
	script, err := filepath.Abs("../../scripts/bench-peers.sh")
	if err != nil {
		t.Fatal(err)
	}
	base := ""
	if _, err := os.Stat("/dev/shm"); err == nil {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "kvdb-peer-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dir)
	stop := func() {
		if out, err := exec.Command("bash", script, "stop", "--dir", dir).CombinedOutput(); err != nil {
			t.Errorf("stop: %v\n%s", err, out)
		}
	}
	var out, errb bytes.Buffer
	cmd := exec.Command("bash", script, "start", "--dir", dir)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("start: %v\n%s", err, errb.String())
	}
	t.Cleanup(func() {
		stop()
		stop() // safe twice
	})
	env := map[string]string{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestPeersAgainstRealServers(t *testing.T) {
	env := startPeers(t)
	ctx := context.Background()
	r, err := NewRedis(ctx, RedisConfig{Addrs: strings.Split(env["REDIS_ADDRS"], ","), Wait: 4, PoolSize: 4, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e, err := NewEtcd(ctx, EtcdConfig{Endpoints: strings.Split(env["ETCD_ENDPOINTS"], ","), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for name, op := range map[string]driver.Op{"redis-wait4": r.Op, "etcd": e.Op} {
		if err := driver.Preload(ctx, op, 100, 10, 4, 5*time.Second); err != nil {
			t.Fatalf("%s preload: %v", name, err)
		}
		// After WAIT 4, every replica has the key: reads round robin over
		// all five nodes find it.
		for range 10 {
			if err := op(ctx, false, driver.KeyName(7), nil); err != nil {
				t.Fatalf("%s read: %v", name, err)
			}
		}
		res, err := driver.Run(ctx, driver.Config{Concurrency: 4, Duration: 300 * time.Millisecond, Keys: 100, WriteRatio: 0.5, ValueSize: 10}, op)
		if err != nil || res.Ops == 0 || res.Errors != 0 {
			t.Errorf("%s: %v %+v", name, err, res)
		}
	}
	if err := r.Op(ctx, false, "no-such-key", nil); err == nil {
		t.Error("redis read of a missing key succeeded")
	}
}

// Fill, INFO memory and WAIT, as the memory comparison uses them, and
// writes round robin (WriteAll) against Redis replicas, which refuse them.
func TestRedisFillAgainstRealServer(t *testing.T) {
	env := startPeers(t)
	ctx := context.Background()
	addrs := strings.Split(env["REDIS_ADDRS"], ",")
	r, err := NewRedis(ctx, RedisConfig{Addrs: addrs, PoolSize: 4, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := r.UsedMemory(ctx)
	if err != nil || before <= 0 {
		t.Fatalf("used_memory %d %v", before, err)
	}
	if err := r.Fill(ctx, 20000, 100, 4, 500); err != nil {
		t.Fatal(err)
	}
	if n, err := r.nodes[0].DBSize(ctx).Result(); err != nil || n != 20000 {
		t.Errorf("dbsize %d %v, want 20000", n, err)
	}
	if got, err := r.WaitReplicas(ctx, "fill-done", len(addrs)-1, 10*time.Second); err != nil || got != int64(len(addrs)-1) {
		t.Errorf("WAIT: %d replicas, %v", got, err)
	}
	after, err := r.UsedMemory(ctx)
	if err != nil || after-before < 20000*111 {
		t.Errorf("used_memory %d -> %d (%v): less than the payload", before, after, err)
	}
	if err := r.Fill(ctx, 0, 100, 4, 500); err == nil {
		t.Error("an empty fill accepted")
	}
	all, err := NewRedis(ctx, RedisConfig{Addrs: addrs, WriteAll: true, PoolSize: 2, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	failed := 0
	for range len(addrs) {
		if err := all.Op(ctx, true, "k", []byte("v")); err != nil {
			failed++ // a replica: READONLY
		}
	}
	if failed != len(addrs)-1 {
		t.Errorf("%d of %d round-robin writes failed, want the %d replicas' (READONLY)", failed, len(addrs), len(addrs)-1)
	}
}
