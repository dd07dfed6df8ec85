package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/kvdb/kvdb/internal/node"
)

// Serve runs one node until ctx is cancelled.
func Serve(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("serve", "[flags]   (every flag may also be set by its environment variable)", env.Stderr, true)
	cfg := node.DefaultConfig()
	rc := &cfg.Replication
	rc.Self = "node1"
	var logLevel string
	fs.StringVar(&rc.Self, "id", rc.Self, "this node's member ID; must appear in --peers")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to listen on")
	fs.Var((*modeValue)(&rc.Mode), "mode", "replication architecture: leader-follower or leaderless")
	fs.Var((*membersValue)(&rc.Members), "peers", "the cluster's `members`, this node included, in order: id=url,id=url,...\n(plain url,url names them node1, node2, ...; default: this node alone)")
	fs.StringVar(&rc.Leader, "leader", "", "leader-follower: the member that founds the cluster and leads first (default: the first\nmember, or this node with --role leader); after that the election decides")
	fs.StringVar(&cfg.Role, "role", "", "leader or follower; checked against --leader (optional)")
	fs.StringVar(&rc.LeaderRedirectURL, "leader-url", "", "base URL clients are redirected to when the --leader member leads (default: its member URL;\n--redirect-urls names every member's)")
	fs.Var((*redirectsValue)(&rc.RedirectURLs), "redirect-urls", "`id=url,...`: the base URL clients are redirected to when that member leads, where it differs\nfrom its member URL (published ports; default: the member URLs)")
	fs.IntVar(&rc.W, "w", 0, "write quorum, 1..N (default N)")
	fs.IntVar(&rc.R, "r", 0, "read quorum, 1..N (default 1)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory of the write-ahead log (default: none, data lives in memory only)")
	respFlags(fs, &cfg)
	nodeFlags(fs, &cfg)
	peerTransportFlag(fs, &cfg)
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args, env.Getenv); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	log, err := newLogger(env.Stderr, logLevel)
	if err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	cfg.Logger = log
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

// peerTransportFlag binds --peer-transport (KVDB_PEER_TRANSPORT): how the
// node sends its messages to its peers. Validate refuses other values.
func peerTransportFlag(fs *flag.FlagSet, cfg *node.Config) {
	fs.StringVar(&cfg.PeerTransport, "peer-transport", cfg.PeerTransport, "node-to-node messages: stream (one persistent, multiplexed binary connection per peer, HTTP\nwhile it is down) or http (one HTTP request per message, for comparison); nodes serve both")
}
