package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/kvdb/kvdb/internal/cluster"
)

// Cluster runs a local cluster until ctx is cancelled.
func Cluster(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("cluster", "--config "+strings.Join(cluster.PresetNames(), "|")+" [flags]", env.Stderr, false)
	cfg := cluster.DefaultConfig()
	cfg.BasePort = 8080
	cfg.NoPause = true // nothing here pauses a node: no gates on its sockets
	var logLevel string
	fs.StringVar(&cfg.Preset, "config", cfg.Preset, "replication config: "+strings.Join(cluster.PresetNames(), ", "))
	fs.IntVar(&cfg.N, "n", cfg.N, "number of nodes")
	fs.StringVar(&cfg.Host, "host", cfg.Host, "address the nodes listen on")
	fs.IntVar(&cfg.BasePort, "base-port", cfg.BasePort, "first node's port; the others follow it (leader-follower: the leader is here)")
	fs.Func("resp-base-port", "serve the Redis protocol (RESP) too: the first node's RESP `port`; the others follow it\n(default: off)", func(s string) error {
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 || p > 65535 {
			return errors.New("want a port, 1..65535")
		}
		cfg.RESP, cfg.RESPBasePort = true, p
		return nil
	})
	fs.StringVar(&cfg.DataDir, "data-dir", "", "root of the nodes' write-ahead logs, one directory per node (default: none, data lives in memory only)")
	nodeFlags(fs, &cfg.Node)
	peerTransportFlag(fs, &cfg.Node)
	fs.Lookup("cluster-token").Usage = "shared secret for /internal/ and PUT /config (default: a random one, printed at start)"
	fs.StringVar(&logLevel, "log-level", "error", "node log level: debug, info, warn or error")
	if err := parseFlags(fs, args, nil); err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	log, err := newLogger(env.Stderr, logLevel)
	if err != nil {
		return usageExit(fs, env.Stderr, err)
	}
	cfg.Node.Logger = log
	if cfg.Node.Server.ClusterToken == "" {
		// Secure by default: the nodes share a fresh random token (about
		// 130 bits from crypto/rand), printed below for PUT /config.
		cfg.Node.Server.ClusterToken = rand.Text()
	}
	c, err := cluster.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "kvdb cluster: %v\n", indent(err))
		return 2
	}
	p := c.Preset()
	fmt.Fprintf(env.Stdout, "kvdb cluster: config %s (%s, W=%d R=%d N=%d), delays %s\n", p.Name, p.Mode, p.W, p.R, len(c.Nodes()), cfg.Node.Replication.Delays)
	resp := c.RESPAddrs()
	for i, n := range c.Nodes() {
		fmt.Fprintf(env.Stdout, "  %-6s %-9s %s", n.ID(), n.Info().Role, n.URL())
		if resp != nil {
			fmt.Fprintf(env.Stdout, "  redis://%s", resp[i])
		}
		fmt.Fprintln(env.Stdout)
	}
	if resp != nil {
		fmt.Fprintf(env.Stdout, "Redis protocol on every node (writes go to the leader; a follower answers READONLY naming it):\n  redis-cli -p %s set k v\n", portOf(resp[0]))
	}
	fmt.Fprintf(env.Stdout, "cluster token (required on /internal/ and PUT /config): %s\n", cfg.Node.Server.ClusterToken)
	fmt.Fprintf(env.Stdout, "change W and R on every node:\n  curl -X PUT %s/config -H 'Authorization: Bearer %s' -d '{\"w\":3,\"r\":3}'\n",
		c.Nodes()[0].URL(), cfg.Node.Server.ClusterToken)
	fmt.Fprintln(env.Stdout, "press Ctrl-C to stop")
	<-ctx.Done()
	fmt.Fprintln(env.Stdout, "stopping...")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Node.ShutdownTimeout)
	defer cancel()
	if err := c.Close(sctx); err != nil {
		fmt.Fprintf(env.Stderr, "kvdb cluster: shutdown: %v\n", err)
		return 1
	}
	fmt.Fprintln(env.Stdout, "stopped")
	return 0
}

// portOf is the port of host:port.
func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// indent puts each line of a joined error on its own indented line.
func indent(err error) string { return strings.ReplaceAll(err.Error(), "\n", "\n  ") }
