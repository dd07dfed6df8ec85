package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The child side of a cluster process, over pipes: ready line, profile
// commands, and shutdown at the end of its input.
func TestServeClusterProtocol(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ServeCluster(context.Background(), "leaderless", 0, "", inR, outW)
		outW.Close()
	}()
	out := bufio.NewReader(outR)
	line, err := out.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var info clusterInfo
	if err := json.Unmarshal(line, &info); err != nil || len(info.URLs) != 5 || len(info.RESPAddrs) != 5 || info.Mode != "leaderless" || info.W != 5 || info.R != 1 {
		t.Fatalf("ready line %s: %v", line, err)
	}
	tg := NewKVDBTarget(info.URLs, true, 2)
	defer tg.Close()
	if err := tg.WaitReady(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tg.Op(context.Background(), true, "k", []byte("v")); err != nil {
		t.Fatalf("write to the served cluster: %v", err)
	}
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	for _, c := range []struct{ send, want string }{
		{"profile " + prof, "ok"},
		{"profile " + prof, "error: a profile is running"},
		{"stop", "ok"},
		{"bogus", `error: unknown command "bogus"`},
	} {
		if _, err := io.WriteString(inW, c.send+"\n"); err != nil {
			t.Fatal(err)
		}
		reply, err := out.ReadString('\n')
		if err != nil || strings.TrimSpace(reply) != c.want {
			t.Errorf("%q: reply %q (%v), want %q", c.send, reply, err, c.want)
		}
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("profile: %v", err)
	}
	inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeCluster: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ServeCluster did not stop at the end of its input")
	}
}
