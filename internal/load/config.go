package load

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kvdb/kvdb/internal/check"
)

// Replication modes of the cluster under test.
const (
	ModeLeader     = "leader"
	ModeLeaderless = "leaderless"
)

// Read targets (ReadFrom). In leaderless mode "leader" means the first
// node and "followers" the others.
const (
	ReadAll       = "all"
	ReadLeader    = "leader"
	ReadFollowers = "followers"
)

// maxRequests bounds one run's schedule (and so its memory).
const maxRequests = 50_000_000

// DefaultNodes returns the URLs `kvdb cluster` listens on.
func DefaultNodes() []string {
	nodes := make([]string, 5)
	for i := range nodes {
		nodes[i] = "http://127.0.0.1:" + strconv.Itoa(8080+i)
	}
	return nodes
}

// Config configures a load run.
type Config struct {
	// Mode is ModeLeader (writes go to Nodes[0], the leader) or
	// ModeLeaderless (writes spread over all nodes).
	Mode string
	// Nodes are the nodes' base URLs; in leader mode the first is the
	// leader.
	Nodes []string
	// ReadFrom selects the nodes reads go to: ReadAll (default, so follower
	// staleness is measured), ReadLeader or ReadFollowers.
	ReadFrom string
	// WriteRatio is the fraction of requests that are writes, in [0, 1]
	// (zero: reads only; DefaultConfig: 0.5).
	WriteRatio float64
	// DeleteRatio is the fraction of writes that are deletes, in [0, 1]
	// (default 0: every write is a set). A delete picks its key as a read
	// does (mostly a recently written key), so it usually deletes data
	// that readers are looking at.
	DeleteRatio float64
	// Duration is how long requests are scheduled (default 60s).
	Duration time.Duration
	// QPS is the target request rate (default 20). Request i is intended
	// at t0 + i/QPS, whatever the server does.
	QPS float64
	// Keys configures the local-in-time key generator.
	Keys KeyConfig
	// MaxInFlight caps concurrent requests (default 1000); a request due
	// while the cap is reached is dropped and counted, never delayed.
	MaxInFlight int
	// Seed seeds the operation, key and node choices (0 means 1).
	Seed uint64
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// LateThreshold: a request sent more than this after its intended time
	// counts as late (default 5ms). Go's timers wake up to ~1-2 ms late on
	// a busy Linux machine, so a smaller threshold would count timer
	// jitter rather than a load generator falling behind. Latency is
	// measured from the intended time either way.
	LateThreshold time.Duration
	// ReadyWait bounds how long the run first waits for every node to
	// answer /health with 200 (default 5s). It then starts anyway, warning
	// about nodes not ready, unless no node answered at all.
	ReadyWait time.Duration
	// OutDir receives history.ndjson, summary.json and the histograms
	// (default results/load-<yyyymmdd-hhmmss>).
	OutDir string
	// Check configures the consistency check run on the history at the
	// end (Check.SkipLinearizability skips porcupine; Check.VizPath
	// defaults to OutDir/linearizability.html).
	Check check.Config
	// RunID names the run; it prefixes keys and values so that runs
	// against one cluster never collide (default from the start time).
	RunID string
	// Progress, if set, receives live progress: redrawn on one line when
	// Terminal, plain lines every ProgressInterval otherwise.
	Progress         io.Writer
	Terminal         bool
	ProgressInterval time.Duration
	// FollowLeader (leader mode) sends each write to the node that last
	// acknowledged one — at first Nodes[0] — and follows a follower's 307
	// to the leader (at most 3 redirects, still one attempt: never a
	// retry). After a write to that node fails (no answer, any error
	// status), the next write goes to the next node in Nodes, which leads
	// or redirects to whoever does. So after a failover writes find the new
	// leader, as the public client does, and the history still holds what
	// each request did. Off (the default), every write goes to Nodes[0]
	// and a 307 is recorded as an error.
	FollowLeader bool
	// OnStart, if set, is called once the schedule starts, with t0 (the
	// intended time of request 0; the history's times count from it), on
	// the run's goroutine: it must not block (start a goroutine to act at
	// offsets from t0, e.g. to inject faults into the cluster under test).
	OnStart func(t0 time.Time)
	// HTTPClient overrides the HTTP client (tests). Redirects are never
	// followed by net/http, whatever its CheckRedirect: a follower's 307 is
	// recorded, or followed by the load client itself with FollowLeader.
	HTTPClient *http.Client
	// Logger receives warnings such as a mode mismatch (default: discard).
	Logger *slog.Logger
}

// DefaultConfig returns the defaults, including those SetDefaults cannot
// infer from a zero value (WriteRatio, hot-set probabilities).
func DefaultConfig() Config {
	return Config{
		Mode: ModeLeader, Nodes: DefaultNodes(), ReadFrom: ReadAll, WriteRatio: 0.5,
		Duration: 60 * time.Second, QPS: 20, Keys: DefaultKeyConfig(), MaxInFlight: 1000,
		Seed: 1, Timeout: 10 * time.Second, LateThreshold: 5 * time.Millisecond, ReadyWait: 5 * time.Second,
	}
}

// SetDefaults fills zero fields whose zero value is invalid.
func (c *Config) SetDefaults(now time.Time) {
	d := DefaultConfig()
	setIfZero(&c.Mode, d.Mode)
	setIfZero(&c.ReadFrom, d.ReadFrom)
	setIfZero(&c.Duration, d.Duration)
	setIfZero(&c.QPS, d.QPS)
	setIfZero(&c.MaxInFlight, d.MaxInFlight)
	setIfZero(&c.Seed, d.Seed)
	setIfZero(&c.Timeout, d.Timeout)
	setIfZero(&c.LateThreshold, d.LateThreshold)
	setIfZero(&c.ReadyWait, d.ReadyWait)
	setIfZero(&c.RunID, "r"+strconv.FormatInt(now.UnixMilli(), 36))
	setIfZero(&c.Keys.Prefix, c.RunID+"-")
	setIfZero(&c.OutDir, "results/load-"+now.Format("20060102-150405"))
	setIfZero(&c.Check.VizPath, filepath.Join(c.OutDir, VizFile))
	if c.Nodes == nil {
		c.Nodes = d.Nodes
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = 5 * time.Second
		if c.Terminal {
			c.ProgressInterval = 500 * time.Millisecond
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Keys.SetDefaults()
	c.Check.SetDefaults()
}

func setIfZero[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Validate reports invalid settings, all at once.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Mode != ModeLeader && c.Mode != ModeLeaderless {
		add("mode %q: want %s or %s", c.Mode, ModeLeader, ModeLeaderless)
	}
	if len(c.Nodes) == 0 {
		add("no nodes")
	}
	for _, n := range c.Nodes {
		if err := validateNodeURL(n); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.ReadFrom {
	case ReadAll, ReadLeader:
	case ReadFollowers:
		if len(c.Nodes) < 2 {
			add("read-from followers needs at least 2 nodes")
		}
	default:
		add("read-from %q: want %s, %s or %s", c.ReadFrom, ReadAll, ReadLeader, ReadFollowers)
	}
	if !(c.WriteRatio >= 0 && c.WriteRatio <= 1) {
		add("write-ratio %v: must be in [0, 1]", c.WriteRatio)
	}
	if !(c.DeleteRatio >= 0 && c.DeleteRatio <= 1) {
		add("delete-ratio %v: must be in [0, 1]", c.DeleteRatio)
	}
	if c.Duration <= 0 {
		add("duration %v: must be positive", c.Duration)
	}
	if !(c.QPS > 0) || math.IsInf(c.QPS, 1) {
		add("qps %v: must be positive", c.QPS)
	} else if n := c.Duration.Seconds() * c.QPS; c.Duration > 0 && (n < 1 || n > maxRequests) {
		add("duration x qps = %.0f requests: must be between 1 and %d", n, maxRequests)
	}
	if c.MaxInFlight < 1 {
		add("max-inflight %d: must be at least 1", c.MaxInFlight)
	}
	if c.Timeout <= 0 || c.LateThreshold <= 0 || c.ReadyWait < 0 {
		add("timeout %v and late threshold %v must be positive, wait %v not negative", c.Timeout, c.LateThreshold, c.ReadyWait)
	}
	errs = append(errs, c.Keys.Validate(), c.Check.Validate())
	return errors.Join(errs...)
}

// total is the number of requests the schedule holds.
func (c *Config) total() int64 { return int64(c.Duration.Seconds() * c.QPS) }

// offset is request i's intended time relative to t0.
func (c *Config) offset(i int64) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / c.QPS)
}

// writeNodes and readNodes are the targets of writes and reads.
func (c *Config) writeNodes() []string {
	if c.Mode == ModeLeader {
		return c.Nodes[:1]
	}
	return c.Nodes
}

func (c *Config) readNodes() []string {
	switch c.ReadFrom {
	case ReadLeader:
		return c.Nodes[:1]
	case ReadFollowers:
		return c.Nodes[1:]
	}
	return c.Nodes
}

func validateNodeURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("node %q: want a base URL such as http://127.0.0.1:8080", s)
	}
	return nil
}

// ParseNodes parses a comma-separated node list. A node without a scheme
// gets http://; trailing slashes are removed.
func ParseNodes(s string) ([]string, error) {
	var nodes []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "://") {
			part = "http://" + part
		}
		part = strings.TrimRight(part, "/")
		if err := validateNodeURL(part); err != nil {
			return nil, err
		}
		nodes = append(nodes, part)
	}
	if len(nodes) == 0 {
		return nil, errors.New("empty node list")
	}
	return nodes, nil
}

// ParseDuration reads a plain number as seconds ("60", "0.5") and anything
// else as a Go duration ("30s", "2m").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want seconds (60) or a Go duration (30s, 2m)", s)
	}
	return d, nil
}
