package cli

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/node"
)

// The shared node flags write straight into the config tree, booleans
// phrased positively (--read-repair=false turns DisableReadRepair on),
// from the command line or the environment; unset flags keep
// node.DefaultConfig.
func TestNodeFlagsBindTheConfigTree(t *testing.T) {
	parse := func(args []string, env map[string]string) node.Config {
		t.Helper()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg := node.DefaultConfig()
		nodeFlags(fs, &cfg)
		if err := parseFlags(fs, args, func(k string) string { return env[k] }); err != nil {
			t.Fatalf("%v %v: %v", args, env, err)
		}
		return cfg
	}
	def := parse(nil, nil)
	want := node.DefaultConfig()
	if def.Replication.PeerTimeout != want.Replication.PeerTimeout || def.Server.MaxKeyBytes != want.Server.MaxKeyBytes ||
		def.Replication.DisableReadRepair || def.Replication.DisableHintedHandoff || def.Replication.DisableCatchUp || def.Replication.DisableBatching ||
		def.Replication.Delays.Name != "none" || def.Fsync != want.Fsync {
		t.Fatalf("defaults changed by binding: %+v", def)
	}
	cfg := parse([]string{"--read-repair=false", "--hinted-handoff=false", "--catch-up=false", "--batching=false",
		"--peer-timeout", "3s", "--request-timeout", "4s", "--max-value-bytes", "99", "--delays", "paper", "--cluster-token", "tok", "--max-hints", "7"}, nil)
	rc, sc := cfg.Replication, cfg.Server
	if !rc.DisableReadRepair || !rc.DisableHintedHandoff || !rc.DisableCatchUp || !rc.DisableBatching ||
		rc.PeerTimeout != 3*time.Second || sc.RequestTimeout != 4*time.Second || sc.MaxValueBytes != 99 ||
		rc.Delays.Name != "paper" || sc.ClusterToken != "tok" || rc.MaxHints != 7 {
		t.Fatalf("flags not bound: replication %+v server %+v", rc, sc)
	}
	if cfg := parse([]string{"--read-repair"}, nil); cfg.Replication.DisableReadRepair {
		t.Fatal("--read-repair alone must keep read repair on")
	}
	env := parse(nil, map[string]string{"KVDB_READ_REPAIR": "false", "KVDB_RETRY_FOR": "1m"})
	if !env.Replication.DisableReadRepair || env.Replication.RetryFor != time.Minute {
		t.Fatalf("environment not bound: %+v", env.Replication)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg = node.DefaultConfig()
	nodeFlags(fs, &cfg)
	if err := parseFlags(fs, []string{"--read-repair=maybe"}, nil); err == nil {
		t.Fatal("--read-repair=maybe accepted")
	}
}
