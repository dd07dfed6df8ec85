package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/replication"
)

// Cluster runs a local cluster until ctx is cancelled.
func Cluster(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("cluster", "--config w5r1|w1r5|w3r3|leaderless [flags]", env.Stderr, false)
	var (
		cfg      cluster.Config
		delays   = delaysFlag{replication.NoDelays()}
		logLevel string
	)
	fs.StringVar(&cfg.Preset, "config", "w5r1", "replication config: "+strings.Join(cluster.PresetNames(), ", "))
	fs.IntVar(&cfg.N, "n", 5, "number of nodes")
	fs.StringVar(&cfg.Host, "host", "127.0.0.1", "address the nodes listen on")
	fs.IntVar(&cfg.BasePort, "base-port", 8080, "first node's port; the others follow it (leader-follower: the leader is here)")
	fs.Var(&delays, "delays", "delay `profile`: paper, none, paper*F or gap=D,apply=D,read=D[,sequential=BOOL]")
	fs.DurationVar(&cfg.PeerTimeout, "peer-timeout", 2*time.Second, "timeout of one node-to-node message")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 5*time.Second, "timeout of one client set or get")
	fs.StringVar(&cfg.ClusterToken, "cluster-token", "", "shared secret for /internal/ and PUT /config (default: a random one, printed at start)")
	hinted := fs.Bool("hinted-handoff", true, "keep updates an unreachable peer missed and deliver them later")
	readRepair := fs.Bool("read-repair", true, "reads with R>1 repair the replicas they saw behind")
	fs.StringVar(&logLevel, "log-level", "error", "node log level: debug, info, warn or error")
	if err := parseFlags(fs, args, nil); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	log, err := newLogger(env.Stderr, logLevel)
	if err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	cfg.Delays, cfg.Logger = delays.d, log
	cfg.DisableHintedHandoff, cfg.DisableReadRepair = !*hinted, !*readRepair
	if cfg.ClusterToken == "" {
		// Secure by default: the nodes share a fresh random token (about
		// 130 bits from crypto/rand), printed below for PUT /config.
		cfg.ClusterToken = rand.Text()
	}
	c, err := cluster.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "kvdb cluster: %v\n", indent(err))
		return 2
	}
	p := c.Preset()
	fmt.Fprintf(env.Stdout, "kvdb cluster: config %s (%s, W=%d R=%d N=%d), delays %s\n", p.Name, p.Mode, p.W, p.R, len(c.Nodes()), cfg.Delays)
	for _, n := range c.Nodes() {
		fmt.Fprintf(env.Stdout, "  %-6s %-9s %s\n", n.ID(), n.Info().Role, n.URL())
	}
	fmt.Fprintf(env.Stdout, "cluster token (required on /internal/ and PUT /config): %s\n", cfg.ClusterToken)
	fmt.Fprintf(env.Stdout, "change W and R on every node:\n  curl -X PUT %s/config -H 'Authorization: Bearer %s' -d '{\"w\":3,\"r\":3}'\n",
		c.Nodes()[0].URL(), cfg.ClusterToken)
	fmt.Fprintln(env.Stdout, "press Ctrl-C to stop")
	<-ctx.Done()
	fmt.Fprintln(env.Stdout, "stopping...")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Close(sctx); err != nil {
		fmt.Fprintf(env.Stderr, "kvdb cluster: shutdown: %v\n", err)
		return 1
	}
	fmt.Fprintln(env.Stdout, "stopped")
	return 0
}

// indent puts each line of a joined error on its own indented line.
func indent(err error) string { return strings.ReplaceAll(err.Error(), "\n", "\n  ") }
