package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
)

// envName is the environment variable that may set flag name:
// "peer-timeout" -> "KVDB_PEER_TIMEOUT".
func envName(name string) string {
	return "KVDB_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// newFlagSet returns a flag set that reports errors to w and whose usage
// lists every flag with the environment variable that may also set it
// (when withEnv).
func newFlagSet(name, synopsis string, w io.Writer, withEnv bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "usage: kvdb %s %s\n\nflags:\n", name, synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			typ, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  --%s %s\n    \t%s", f.Name, typ, strings.ReplaceAll(usage, "\n", "\n    \t"))
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			if withEnv {
				fmt.Fprintf(w, " [env %s]", envName(f.Name))
			}
			fmt.Fprintln(w)
		})
	}
	return fs
}

// parseFlags parses args, then fills every flag not given on the command
// line from its environment variable, if set. It returns flag.ErrHelp for
// -h, and a usage error otherwise.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if getenv == nil {
		return nil
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// exitCode maps a flag parsing outcome to the exit code.
func usageExit(fs *flag.FlagSet, w io.Writer, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(w, "kvdb %s: %v\n", fs.Name(), err)
	return 2
}

// nodeFlags binds the flags for a node's knobs — every setting `kvdb
// serve` and `kvdb cluster` share — directly to the fields of cfg, with
// the values already in cfg (node.DefaultConfig) as defaults. Adding a
// knob means one config field and one line here. Flags that name the
// node or its cluster (--id, --peers, --w, ... or --config, --n, ...)
// are the commands' own.
func nodeFlags(fs *flag.FlagSet, cfg *node.Config) {
	rc, sc := &cfg.Replication, &cfg.Server
	fs.Var((*delaysValue)(&rc.Delays), "delays", "delay `profile`: paper (sequential replication, 200ms gap, 100ms apply, 50ms peer read),\nnone, paper*F (scaled), or gap=D,apply=D,read=D[,sequential=BOOL]")
	fs.DurationVar(&rc.PeerTimeout, "peer-timeout", rc.PeerTimeout, "timeout of one node-to-node message")
	fs.DurationVar(&sc.RequestTimeout, "request-timeout", sc.RequestTimeout, "timeout of one client set or get, coordination included")
	fs.DurationVar(&rc.RetryFor, "retry-for", rc.RetryFor, "how long updates a peer missed are kept and retried for it (hinted handoff)")
	fs.DurationVar(&rc.TombstoneTTL, "tombstone-ttl", rc.TombstoneTTL, "how long a delete's tombstone is kept before its collection may begin\n(0: --retry-for + 2m + 4 peer timeouts, 12m8s with the defaults; at least --retry-for + 4 peer timeouts)")
	fs.IntVar(&rc.MaxHints, "max-hints", rc.MaxHints, "most updates kept per unreachable peer (one per key); past it they are dropped and counted")
	fs.IntVar(&rc.MaxInFlightPerPeer, "max-in-flight", rc.MaxInFlightPerPeer, "most replication messages in flight to one peer; past it an update becomes a hint")
	enabledVar(fs, &rc.DisableHintedHandoff, "hinted-handoff", "keep updates an unreachable peer missed and deliver them when it answers again")
	enabledVar(fs, &rc.DisableReadRepair, "read-repair", "reads with R>1 bring the replicas they saw behind up to date")
	enabledVar(fs, &rc.DisableCatchUp, "catch-up", "on start, copy the current state from the leader (or the peers) before serving clients")
	enabledVar(fs, &rc.DisableBatching, "batching", "under a parallel delay profile, send the updates queued for a peer as one message")
	fs.IntVar(&sc.MaxKeyBytes, "max-key-bytes", sc.MaxKeyBytes, "largest key accepted")
	fs.IntVar(&sc.MaxValueBytes, "max-value-bytes", sc.MaxValueBytes, "largest value accepted")
	fs.DurationVar(&sc.BodyReadTimeout, "body-timeout", sc.BodyReadTimeout, "bound on receiving a request body; a slower body gets 408 and its connection is closed")
	fs.StringVar(&sc.ClusterToken, "cluster-token", sc.ClusterToken, "shared secret required on /internal/ and PUT /config (Authorization: Bearer ...);\nwithout one those answer loopback callers only (protected mode)")
	fs.StringVar(&cfg.Fsync, "fsync", cfg.Fsync, "write-ahead log fsync policy: always (group commit before every ack),\ninterval (every 100ms) or never (the OS decides)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "bound on graceful shutdown")
	ec := &cfg.Election
	fs.DurationVar(&ec.HeartbeatTimeout, "election-heartbeat", ec.HeartbeatTimeout, "leader-follower: a follower that hears nothing from the leader for this long (randomized to 1-2x)\nstarts an election; the leader heartbeats ten times as often")
	fs.DurationVar(&ec.ElectionTimeout, "election-timeout", ec.ElectionTimeout, "leader-follower: how long a candidate waits for votes before it tries again (randomized to 1-2x)")
	fs.DurationVar(&ec.LeaderLeaseTimeout, "leader-lease", ec.LeaderLeaseTimeout, "leader-follower: a leader that reaches no majority for this long steps down and stops\nacknowledging writes (at most --election-heartbeat)")
	fs.DurationVar(&rc.LeaderCatchUpWait, "leader-catchup-wait", rc.LeaderCatchUpWait, "leader-follower: how long a new leader tries to copy N-W+1 nodes before it accepts writes anyway,\nreporting in /health and /metrics that acknowledged writes may have been lost")
}

// respFlags binds kvdb serve's Redis-protocol flags.
func respFlags(fs *flag.FlagSet, cfg *node.Config) {
	fs.StringVar(&cfg.RESPListen, "resp-addr", "", "address to serve the Redis protocol (RESP) on, beside HTTP, e.g. :6379 (default: off)")
	fs.Var((*respAddrsValue)(&cfg.RESP.Addrs), "resp-peers", "`id=host:port,...`: the RESP address clients reach each member at; a follower's READONLY\nerror names the leader's (default: its HTTP URL)")
}

// respAddrsValue parses "id=host:port,..." into a map.
type respAddrsValue map[string]string

func (v *respAddrsValue) String() string {
	if v == nil || len(*v) == 0 {
		return ""
	}
	parts := make([]string, 0, len(*v))
	for id, a := range *v {
		parts = append(parts, id+"="+a)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (v *respAddrsValue) Set(s string) error {
	m := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		id, addr = strings.TrimSpace(id), strings.TrimSpace(addr)
		if !ok || id == "" {
			return fmt.Errorf("%q: want id=host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%q: %w", part, err)
		}
		m[id] = addr
	}
	*v = m
	return nil
}

// enabledVar binds a positively named boolean flag (--read-repair,
// default true) to a config field that says the opposite
// (DisableReadRepair, whose zero value keeps the mechanism on): the one
// place the CLI inverts a boolean.
func enabledVar(fs *flag.FlagSet, disabled *bool, name, usage string) {
	fs.Var((*enabledValue)(disabled), name, usage)
}

// enabledValue is a bool flag that stores its negation.
type enabledValue bool

func (v *enabledValue) String() string {
	if v == nil {
		return "true"
	}
	return strconv.FormatBool(!bool(*v))
}

func (v *enabledValue) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("parse error: want true or false")
	}
	*v = enabledValue(!on)
	return nil
}

func (v *enabledValue) IsBoolFlag() bool { return true }

// delaysValue is a flag.Value setting a delay profile.
type delaysValue replication.Delays

func (v *delaysValue) String() string {
	if v == nil || v.Name == "" {
		return replication.NoDelays().String()
	}
	return (*replication.Delays)(v).String()
}

func (v *delaysValue) Set(s string) error {
	d, err := replication.ParseDelays(s)
	if err != nil {
		return err
	}
	*v = delaysValue(d)
	return nil
}

// modeValue is a flag.Value setting the replication mode.
type modeValue replication.Mode

func (v *modeValue) String() string {
	if v == nil {
		return ""
	}
	return string(*v)
}

func (v *modeValue) Set(s string) error {
	m, err := replication.ParseMode(s)
	if err != nil {
		return err
	}
	*v = modeValue(m)
	return nil
}

// membersValue parses "id=url,id=url" or plain "url,url" (ids node1..).
type membersValue []replication.Member

func (v *membersValue) String() string {
	if v == nil {
		return ""
	}
	parts := make([]string, len(*v))
	for i, m := range *v {
		parts[i] = m.ID + "=" + m.URL
	}
	return strings.Join(parts, ",")
}

func (v *membersValue) Set(s string) error {
	var ms []replication.Member
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, u, ok := strings.Cut(part, "=")
		if !ok {
			id, u = fmt.Sprintf("node%d", i+1), part
		}
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		ms = append(ms, replication.Member{ID: strings.TrimSpace(id), URL: strings.TrimRight(strings.TrimSpace(u), "/")})
	}
	if len(ms) == 0 {
		return errors.New("empty member list")
	}
	*v = ms
	return nil
}

// redirectsValue parses "id=url,id=url" into a map.
type redirectsValue map[string]string

func (v *redirectsValue) String() string {
	if v == nil || len(*v) == 0 {
		return ""
	}
	parts := make([]string, 0, len(*v))
	for id, u := range *v {
		parts = append(parts, id+"="+u)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (v *redirectsValue) Set(s string) error {
	m := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, u, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(id) == "" || strings.TrimSpace(u) == "" {
			return fmt.Errorf("%q: want id=url", part)
		}
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		m[strings.TrimSpace(id)] = strings.TrimRight(strings.TrimSpace(u), "/")
	}
	*v = m
	return nil
}
