package main

import (
	"context"
	"strings"
	"testing"
)

func TestBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--system", "mongodb"},
		{"--system", "redis", "--mode", "open"}, // no rate
		{"--system", "etcd", "--write-ratio", "-1"},
		{"--system", "redis", "stray"},
		{"--no-such-flag"},
		{"--system", "etcd", "--fill", "10"},           // --fill is for RESP
		{"--system", "redis", "--fill", "-1"},          // negative count
		{"--system", "kvdb-resp", "--fill-batch", "0"}, // empty pipelines
	} {
		var out, errb strings.Builder
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("%v printed a result: %s", args, out.String())
		}
	}
}

func TestUnreachablePeerFails(t *testing.T) {
	var out, errb strings.Builder
	// Port 1 on loopback: nothing listens there.
	code := run(context.Background(), []string{"--system", "redis", "--redis-addrs", "127.0.0.1:1", "--duration", "100ms"}, &out, &errb)
	if code != 1 || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
