package consensus

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Member is one voter.
type Member struct {
	// ID is the raft ServerID: the node's member ID.
	ID string
	// Addr is the raft ServerAddress: the node's base URL, e.g.
	// "http://127.0.0.1:8081". The stream layer knows how to dial it, and
	// this node's own Addr must be its stream layer's Addr.
	Addr string
}

// Config configures a Node. Zero fields get the defaults of DefaultConfig
// (SetDefaults); Validate reports every problem.
type Config struct {
	// Self is this node's member ID; it must be one of Members.
	Self string
	// Members lists every voter, this node included. Every node must be
	// given the same list.
	Members []Member
	// Bootstrap makes this node found the cluster: if it has no raft state
	// it writes a configuration with every member as a voter before it
	// starts. Exactly one node has it (the preferred first leader, node1 by
	// default). The others never bootstrap: a raft node with an empty
	// configuration grants votes but never campaigns, so the founder is the
	// only candidate of the first election and wins it. A founder restarted
	// with in-memory stores bootstraps again with the identical
	// configuration, which is safe: it cannot win against nodes with longer
	// logs and higher terms, and it adopts their term.
	Bootstrap bool
	// DataDir, if not empty, keeps raft's log, term, vote and snapshots in
	// DataDir/raft (raft.db, a bbolt file, and snapshots/), so a restarted
	// node keeps its term and vote and does not bootstrap again. Empty:
	// in-memory stores, lost on restart (a restarted node rejoins as a new
	// follower and learns the log from the leader; having forgotten its vote
	// it could vote twice in one term, which raft's safety argument does
	// not allow: in-memory stores are for tests and throwaway clusters).
	DataDir string

	// HeartbeatTimeout is how long a follower goes without hearing from
	// the leader before it starts an election (raft randomizes it to 1-2x;
	// the leader sends heartbeats ten times as often).
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes before it
	// tries again (randomized to 1-2x). At least HeartbeatTimeout.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader keeps leading without
	// contact with a majority before it steps down. At most
	// HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how long the leader waits without new entries
	// before it tells followers the commit index.
	CommitTimeout time.Duration
	// ApplyTimeout bounds ProposeQuorum.
	ApplyTimeout time.Duration

	// W and R are the write and read quorums the replicated state machine
	// holds before any entry is applied (default N and 1).
	W, R int

	// Logger receives this package's logs and raft's (default: discard).
	// Raft's debug and trace lines are logged at slog's debug level.
	Logger *slog.Logger
	// Registerer, if not nil, gets the gauges kvdb_raft_term,
	// kvdb_raft_state (0 follower, 1 candidate, 2 leader, 3 shutdown or not
	// started), kvdb_raft_commit_index and the counter
	// kvdb_raft_leader_changes_total. Close unregisters them.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the default timings.
//
// They are chosen so that a new leader is elected well within 2 s of the
// leader's death, on a loaded 2-core machine too. A follower notices the
// silence HeartbeatTimeout to 2x HeartbeatTimeout after the last heartbeat
// (0.5-1 s; at worst 1.5 s, when its randomized timer fires just before the
// silence reached 0.5 s), and the first follower to time out is elected in
// one round trip once a majority has also given up on the old leader (a
// follower refuses votes while it still believes in a leader); a split vote
// costs another 0.5-1 s (ElectionTimeout). Going lower would buy little:
// the leader heartbeats every HeartbeatTimeout/10 = 50 ms, so 500 ms
// already tolerates ten lost heartbeats, and with less a GC pause or a
// starved goroutine on a busy 2-core machine (or under -race) would depose
// healthy leaders. LeaderLeaseTimeout 250 ms (raft requires at most
// HeartbeatTimeout) makes a leader cut off from the majority step down
// within about 250-500 ms, well before the majority elects a successor.
// CommitTimeout 20 ms keeps a W/R change's commit latency low when nothing
// else is being appended.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		ApplyTimeout:       5 * time.Second,
	}
}

// SetDefaults fills zero fields with DefaultConfig's values, W with the
// number of members, R with 1 and Logger with a discarding logger.
func (c *Config) SetDefaults() {
	d := DefaultConfig()
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = d.HeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = d.ElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = d.LeaderLeaseTimeout
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = d.CommitTimeout
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = d.ApplyTimeout
	}
	if c.W == 0 {
		c.W = len(c.Members)
	}
	if c.R == 0 {
		c.R = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// raftMinTimeout is the smallest heartbeat, election and lease timeout raft
// accepts.
const raftMinTimeout = 5 * time.Millisecond

// Validate reports every problem with the configuration.
func (c *Config) Validate() error {
	var errs []error
	n := len(c.Members)
	if n == 0 {
		errs = append(errs, errors.New("no members"))
	}
	ids, addrs := map[string]bool{}, map[string]bool{}
	self := false
	for i, m := range c.Members {
		switch {
		case m.ID == "":
			errs = append(errs, fmt.Errorf("member %d: empty id", i+1))
		case ids[m.ID]:
			errs = append(errs, fmt.Errorf("member id %q listed twice", m.ID))
		}
		ids[m.ID] = true
		switch {
		case m.Addr == "":
			errs = append(errs, fmt.Errorf("member %q: empty address", m.ID))
		case addrs[m.Addr]:
			errs = append(errs, fmt.Errorf("member %q: address %q listed twice", m.ID, m.Addr))
		}
		addrs[m.Addr] = true
		if m.ID == c.Self {
			self = true
		}
	}
	switch {
	case c.Self == "":
		errs = append(errs, errors.New("self: empty"))
	case !self:
		errs = append(errs, fmt.Errorf("self %q is not among the members", c.Self))
	}
	for _, t := range []struct {
		name string
		d    time.Duration
		min  time.Duration
	}{
		{"heartbeat timeout", c.HeartbeatTimeout, raftMinTimeout},
		{"election timeout", c.ElectionTimeout, raftMinTimeout},
		{"leader lease timeout", c.LeaderLeaseTimeout, raftMinTimeout},
		{"commit timeout", c.CommitTimeout, time.Millisecond},
		{"apply timeout", c.ApplyTimeout, time.Nanosecond},
	} {
		if t.d < t.min {
			errs = append(errs, fmt.Errorf("%s %v: must be at least %v", t.name, t.d, t.min))
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("leader lease timeout %v: raft requires at most the heartbeat timeout (%v)",
			c.LeaderLeaseTimeout, c.HeartbeatTimeout))
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("election timeout %v: raft requires at least the heartbeat timeout (%v)",
			c.ElectionTimeout, c.HeartbeatTimeout))
	}
	if n > 0 {
		if c.W < 1 || c.W > n {
			errs = append(errs, fmt.Errorf("w=%d: must be within 1..%d", c.W, n))
		}
		if c.R < 1 || c.R > n {
			errs = append(errs, fmt.Errorf("r=%d: must be within 1..%d", c.R, n))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("consensus: invalid config: %w", errors.Join(errs...))
}

// member returns the member with id.
func (c *Config) member(id string) (Member, bool) {
	for _, m := range c.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}
