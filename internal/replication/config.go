package replication

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Mode selects the replication architecture.
type Mode string

// The two architectures.
const (
	LeaderFollower Mode = "leader-follower"
	Leaderless     Mode = "leaderless"
)

// ParseMode accepts "leader-follower" (or "leader") and "leaderless".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "leader-follower", "leader", "leader_follower":
		return LeaderFollower, nil
	case "leaderless":
		return Leaderless, nil
	}
	return "", fmt.Errorf("mode %q: want leader-follower or leaderless", s)
}

// Member is one node of the cluster.
type Member struct {
	ID  string
	URL string // base URL peers use, e.g. http://10.0.0.2:8080
}

// Config configures an Engine.
type Config struct {
	// Self is this node's ID; it must be one of Members.
	Self string
	// Members lists every node, this one included, in a fixed order. The
	// position is the node's index (the Lamport tie-break) and the order in
	// which sequential replication visits peers.
	Members []Member
	// Mode is LeaderFollower or Leaderless.
	Mode Mode
	// Leader is the leader's ID in leader-follower mode (default: the first
	// member). Ignored in leaderless mode.
	Leader string
	// LeaderRedirectURL, if set, is the base URL clients are redirected to for
	// writes instead of Leader's member URL (for published ports); an entry
	// of RedirectURLs for the same member takes precedence.
	LeaderRedirectURL string
	// RedirectURLs maps member IDs to the base URLs clients are redirected
	// to when that member leads, where they differ from the member URLs
	// (published ports, e.g. containers).
	RedirectURLs map[string]string
	// Elector, if set (leader-follower only), decides who leads: an
	// election (package consensus) instead of the fixed Leader, which then
	// only names the node that founds the cluster. See term.go.
	Elector Elector
	// LeaderCatchUpWait bounds how long a newly elected leader tries to
	// copy the state of N-W+1 nodes before it accepts writes anyway,
	// reporting possible loss (default 500ms). Only peers that have not
	// answered by then are given up on; copies already streaming from
	// live peers are waited for.
	LeaderCatchUpWait time.Duration
	// W and R are the write and read quorums, 1..N. Zero means the default:
	// W=N, R=1.
	W, R int
	// Delays is the storage-delay profile (default none).
	Delays Delays
	// PeerTimeout bounds one message to a peer (default 2s).
	PeerTimeout time.Duration
	// RetryFor is how long an update a peer missed is kept and retried
	// (hinted handoff) before it is dropped and logged (default 10m).
	RetryFor time.Duration
	// TombstoneTTL is how long a delete's tombstone is kept before its
	// collection may begin, and how long its collector then waits, once it
	// has seen every replica hold it, before it drops it everywhere (see
	// tombstones.go). It must outlast every copy of an older version that
	// may still be travelling: a hint (RetryFor), a message (PeerTimeout) or
	// a snapshot copy (at most TombstoneTTL itself); so it is at least
	// RetryFor + 4 PeerTimeouts. Zero means the longest repair horizon,
	// RetryFor + 2m (snapshot copy bound) + 4 PeerTimeouts: 12m8s with the
	// defaults.
	TombstoneTTL time.Duration
	// MaxHints bounds the missed updates kept per peer, one per key
	// (default 100000); past it new ones are dropped and counted.
	MaxHints int
	// MaxInFlightPerPeer bounds replication messages in flight to one peer
	// (default 256); a message over the bound counts as failed and becomes
	// a hint, so a slow peer cannot pile up goroutines.
	MaxInFlightPerPeer int
	// DisableHintedHandoff drops updates a peer missed instead of keeping
	// them for it (for experiments).
	DisableHintedHandoff bool
	// DisableReadRepair stops reads with R>1 from updating the replicas
	// they saw behind (for experiments).
	DisableReadRepair bool
	// DisableBatching sends every update to a peer as its own message even
	// under a parallel profile (sequential profiles never batch).
	DisableBatching bool
	// DisableCatchUp makes the node ready at once, without copying state
	// from its peers (a node known to start with the whole cluster).
	DisableCatchUp bool
	// Journal, if set, makes every update this node applies durable before
	// it is acknowledged (the write-ahead log).
	Journal Journal
	// Logger receives the replicator's logs (default: discard).
	Logger *slog.Logger
	// Registerer, if set, receives the replicator's Prometheus metrics.
	Registerer prometheus.Registerer
}

// N returns the cluster size.
func (c *Config) N() int { return len(c.Members) }

// Index returns the position of id in Members, or -1.
func (c *Config) Index(id string) int {
	for i, m := range c.Members {
		if m.ID == id {
			return i
		}
	}
	return -1
}

// DefaultConfig returns the defaults of every setting that does not depend
// on the membership: leader-follower mode, no delays, a 2s peer timeout,
// hints kept for 10m (at most 100000 per peer), 256 messages in flight per
// peer, every repair mechanism on. Self and Members must still be set; W
// and R stay zero, which SetDefaults turns into W=N, R=1 once N is known.
func DefaultConfig() Config {
	return Config{
		Mode:               LeaderFollower,
		Delays:             NoDelays(),
		PeerTimeout:        2 * time.Second,
		RetryFor:           10 * time.Minute,
		MaxHints:           100_000,
		MaxInFlightPerPeer: 256,
		LeaderCatchUpWait:  500 * time.Millisecond,
	}
}

// SetDefaults fills zero fields with their defaults (DefaultConfig, and
// those derived from the members).
func (c *Config) SetDefaults() {
	d := DefaultConfig()
	c.Members = slices.Clone(c.Members) // callers may share the slice
	for i := range c.Members {
		c.Members[i].URL = strings.TrimRight(c.Members[i].URL, "/")
	}
	c.LeaderRedirectURL = strings.TrimRight(c.LeaderRedirectURL, "/")
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.Mode == LeaderFollower && c.Leader == "" && len(c.Members) > 0 {
		c.Leader = c.Members[0].ID
	}
	if c.W == 0 {
		c.W = len(c.Members)
	}
	if c.R == 0 {
		c.R = 1
	}
	if c.Delays.Name == "" {
		c.Delays = d.Delays
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = d.PeerTimeout
	}
	if c.RetryFor == 0 {
		c.RetryFor = d.RetryFor
	}
	if c.MaxHints == 0 {
		c.MaxHints = d.MaxHints
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = c.RetryFor + copyTimeout + tombstoneMessageSlack*c.PeerTimeout
	}
	if c.MaxInFlightPerPeer == 0 {
		c.MaxInFlightPerPeer = d.MaxInFlightPerPeer
	}
	if c.LeaderCatchUpWait == 0 {
		c.LeaderCatchUpWait = d.LeaderCatchUpWait
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem with the configuration.
func (c *Config) Validate() error {
	var errs []error
	n := len(c.Members)
	if n == 0 {
		errs = append(errs, errors.New("no members"))
	}
	if n > MaxNodes {
		errs = append(errs, fmt.Errorf("%d members: at most %d supported", n, MaxNodes))
	}
	seen := map[string]bool{}
	for _, m := range c.Members {
		if m.ID == "" {
			errs = append(errs, errors.New("member with empty id"))
		}
		if seen[m.ID] {
			errs = append(errs, fmt.Errorf("member id %q listed twice", m.ID))
		}
		seen[m.ID] = true
		if u, err := url.Parse(m.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("member %q: URL %q is not an http(s) base URL", m.ID, m.URL))
		}
	}
	if c.Self == "" {
		errs = append(errs, errors.New("self id is empty"))
	} else if n > 0 && !seen[c.Self] {
		errs = append(errs, fmt.Errorf("self id %q is not among the members", c.Self))
	}
	switch c.Mode {
	case LeaderFollower:
		if n > 0 && !seen[c.Leader] {
			errs = append(errs, fmt.Errorf("leader %q is not among the members", c.Leader))
		}
	case Leaderless:
		if c.Elector != nil {
			errs = append(errs, errors.New("leaderless mode has no election: Elector must be nil"))
		}
	default:
		errs = append(errs, fmt.Errorf("mode %q: want leader-follower or leaderless", c.Mode))
	}
	if err := checkQuorum(c.W, c.R, n); err != nil {
		errs = append(errs, err)
	}
	for id := range c.RedirectURLs {
		if !seen[id] {
			errs = append(errs, fmt.Errorf("redirect URL for %q, which is not a member", id))
		}
	}
	if c.PeerTimeout < 0 || c.RetryFor < 0 || c.LeaderCatchUpWait < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	if floor := c.RetryFor + tombstoneMessageSlack*c.PeerTimeout; c.TombstoneTTL < floor {
		errs = append(errs, fmt.Errorf("tombstone TTL %v is shorter than the hint retry window plus %d peer timeouts (%v + %d x %v = %v): an older copy still travelling could bring a deleted value back",
			c.TombstoneTTL, tombstoneMessageSlack, c.RetryFor, tombstoneMessageSlack, c.PeerTimeout, floor))
	}
	if c.MaxHints < 0 || c.MaxInFlightPerPeer < 0 {
		errs = append(errs, errors.New("max hints and max in-flight per peer must not be negative"))
	}
	if c.Delays.Gap < 0 || c.Delays.Apply < 0 || c.Delays.Read < 0 {
		errs = append(errs, errors.New("delays must not be negative"))
	}
	return errors.Join(errs...)
}

func checkQuorum(w, r, n int) error {
	if w < 1 || w > n {
		return fmt.Errorf("%w: w=%d outside 1..%d", ErrInvalid, w, n)
	}
	if r < 1 || r > n {
		return fmt.Errorf("%w: r=%d outside 1..%d", ErrInvalid, r, n)
	}
	return nil
}
