package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/wal"
)

// No test here runs in parallel, so each may check for leaks on its own.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// blocked returns a path under which no directory can be created: its
// parent is a regular file.
func blocked(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(f, "wal")
}

// A node whose write-ahead log cannot be opened fails to build and leaves
// nothing running.
func TestNewFailsCleanly(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := node.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.Fsync = "127.0.0.1:0", blocked(t), wal.SyncInterval
	if _, err := node.New(cfg); err == nil {
		t.Fatal("New with a data directory that cannot be created succeeded")
	}
}

// A node that was built but never served starts nothing, and Kill or
// Close releases what it holds (its log, whose interval fsync runs a
// goroutine).
func TestBuiltNodeNeverServedLeavesNothing(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, stop := range []string{"kill", "close"} {
		cfg := node.DefaultConfig()
		cfg.Listen, cfg.DataDir, cfg.Fsync = "127.0.0.1:0", t.TempDir(), wal.SyncInterval
		cfg.Replication.Self = "n1"
		cfg.Replication.Members = []replication.Member{{ID: "n1", URL: "http://127.0.0.1:1"}, {ID: "n2", URL: "http://127.0.0.1:2"}}
		n, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if stop == "kill" {
			err = n.Kill()
		} else {
			err = n.Close(context.Background())
		}
		if err != nil {
			t.Fatalf("%s: %v", stop, err)
		}
	}
}

// cluster.Start fails part-way — the second node cannot create its log
// directory — and closes everything the first node opened: its log (with
// the interval fsync goroutine), its listener, its peer clients.
func TestClusterStartFailsPartWayCleanly(t *testing.T) {
	defer goleak.VerifyNone(t)
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "node2"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := cluster.Config{Preset: "w3r3", N: 3, DataDir: root}
	cfg.Node.Fsync = wal.SyncInterval
	c, err := cluster.Start(context.Background(), cfg)
	if err == nil {
		_ = c.Close(context.Background())
		t.Fatal("Start succeeded although node2's data directory cannot be created")
	}
	if !strings.Contains(err.Error(), "node2") {
		t.Errorf("error %q does not name node2's directory", err)
	}
	// The first node's log was opened (and closed again).
	if _, err := os.Stat(filepath.Join(root, "node1", wal.FileName)); err != nil {
		t.Errorf("node1's log was never opened, so the test did not fail part-way: %v", err)
	}
}
