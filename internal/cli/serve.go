package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
)

// Serve runs one node until ctx is cancelled.
func Serve(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("serve", "[flags]   (every flag may also be set by its environment variable)", env.Stderr, true)
	var (
		cfg      node.Config
		mode     string
		members  membersFlag
		delays   = delaysFlag{replication.NoDelays()}
		logLevel string
	)
	fs.StringVar(&cfg.ID, "id", "node1", "this node's member ID; must appear in --peers")
	fs.StringVar(&cfg.Listen, "listen", ":8080", "address to listen on")
	fs.StringVar(&mode, "mode", "leader-follower", "replication architecture: leader-follower or leaderless")
	fs.Var(&members, "peers", "the cluster's `members`, this node included, in order: id=url,id=url,...\n(plain url,url names them node1, node2, ...; default: this node alone)")
	fs.StringVar(&cfg.Leader, "leader", "", "leader's member ID in leader-follower mode (default: first member, or this node with --role leader)")
	fs.StringVar(&cfg.Role, "role", "", "leader or follower; checked against --leader (optional)")
	fs.StringVar(&cfg.LeaderRedirectURL, "leader-url", "", "base URL followers redirect client writes to (default: the leader's member URL)")
	fs.IntVar(&cfg.W, "w", 0, "write quorum, 1..N (default N)")
	fs.IntVar(&cfg.R, "r", 0, "read quorum, 1..N (default 1)")
	fs.Var(&delays, "delays", "delay `profile`: paper (sequential replication, 200ms gap, 100ms apply, 50ms peer read),\nnone, paper*F (scaled), or gap=D,apply=D,read=D[,sequential=BOOL]")
	fs.DurationVar(&cfg.PeerTimeout, "peer-timeout", 2*time.Second, "timeout of one node-to-node message")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 5*time.Second, "timeout of one client set or get, coordination included")
	fs.DurationVar(&cfg.RetryFor, "retry-for", 10*time.Minute, "how long updates a peer missed are kept and retried for it (hinted handoff)")
	hinted := fs.Bool("hinted-handoff", true, "keep updates an unreachable peer missed and deliver them when it answers again")
	readRepair := fs.Bool("read-repair", true, "reads with R>1 bring the replicas they saw behind up to date")
	catchUp := fs.Bool("catch-up", true, "on start, copy the current state from the leader (or the peers) before serving clients")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "bound on graceful shutdown")
	fs.IntVar(&cfg.MaxKeyBytes, "max-key-bytes", 1<<10, "largest key accepted")
	fs.IntVar(&cfg.MaxValueBytes, "max-value-bytes", 1<<20, "largest value accepted")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory of the write-ahead log (default: none, data lives in memory only)")
	fs.StringVar(&cfg.Fsync, "fsync", "always", "write-ahead log fsync policy: always (group commit before every ack),\ninterval (every 100ms) or never (the OS decides)")
	fs.DurationVar(&cfg.BodyReadTimeout, "body-timeout", 10*time.Second, "bound on receiving a request body; a slower body gets 408 and its connection is closed")
	fs.StringVar(&cfg.ClusterToken, "cluster-token", "", "shared secret required on /internal/ and PUT /config (Authorization: Bearer ...);\nwithout one those answer loopback callers only (protected mode)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args, env.Getenv); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	m, err := replication.ParseMode(mode)
	if err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	log, err := newLogger(env.Stderr, logLevel)
	if err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	cfg.Mode, cfg.Members, cfg.Delays, cfg.Logger = m, members.m, delays.d, log
	cfg.DisableHintedHandoff, cfg.DisableReadRepair, cfg.DisableCatchUp = !*hinted, !*readRepair, !*catchUp
	n, err := node.New(cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "kvdb serve: invalid configuration:\n  %v\n", indent(err))
		return 2
	}
	if err := n.Run(ctx); err != nil {
		fmt.Fprintf(env.Stderr, "kvdb serve: %v\n", err)
		return 1
	}
	return 0
}
