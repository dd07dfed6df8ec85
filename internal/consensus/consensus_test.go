package consensus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/kvdb/kvdb/internal/consensus"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fast is the timing of tests that do not measure failover: a quarter of
// the defaults' still leaves a loaded machine under -race room.
func fast(c *consensus.Config) {
	c.HeartbeatTimeout = 150 * time.Millisecond
	c.ElectionTimeout = 150 * time.Millisecond
	c.LeaderLeaseTimeout = 75 * time.Millisecond
	c.CommitTimeout = 10 * time.Millisecond
}

// electionWait bounds every wait for an election: a hang check, not a
// speed assertion.
const electionWait = 10 * time.Second

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder is one node's hooks: every Leadership call and the last quorum.
type recorder struct {
	mu     sync.Mutex
	states []consensus.State
	w, r   int
	quorum int // Quorum calls

	inHook  atomic.Int32
	overlap atomic.Bool
}

func (rec *recorder) hooks() consensus.Hooks {
	return consensus.Hooks{
		Leadership: func(s consensus.State) {
			if rec.inHook.Add(1) > 1 {
				rec.overlap.Store(true)
			}
			rec.mu.Lock()
			rec.states = append(rec.states, s)
			rec.mu.Unlock()
			rec.inHook.Add(-1)
		},
		Quorum: func(w, r int) {
			rec.mu.Lock()
			rec.w, rec.r = w, r
			rec.quorum++
			rec.mu.Unlock()
		},
	}
}

func (rec *recorder) lastQuorum() (w, r int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.w, rec.r
}

func (rec *recorder) lastState() (consensus.State, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.states) == 0 {
		return consensus.State{}, false
	}
	return rec.states[len(rec.states)-1], true
}

// cluster is n consensus nodes on one in-memory network; node1 founds it.
type cluster struct {
	t       testing.TB
	net     *transport.InmemNetwork
	members []consensus.Member
	tune    func(*consensus.Config)
	dirs    map[string]string // DataDir by ID ("" = in memory)

	mu    sync.Mutex
	nodes map[string]*consensus.Node // running nodes
	recs  map[string]*recorder       // the latest incarnation's hooks
	regs  map[string]*prometheus.Registry
}

func id(i int) string { return fmt.Sprintf("node%d", i+1) }

func newCluster(t testing.TB, n int, tune func(*consensus.Config), persistent bool) *cluster {
	t.Helper()
	c := &cluster{
		t: t, net: transport.NewInmemNetwork(uint64(n)), tune: tune,
		dirs: map[string]string{}, nodes: map[string]*consensus.Node{},
		recs: map[string]*recorder{}, regs: map[string]*prometheus.Registry{},
	}
	for i := range n {
		c.members = append(c.members, consensus.Member{ID: id(i), Addr: fmt.Sprintf("http://10.0.0.%d:8080", i+1)})
		if persistent {
			c.dirs[id(i)] = t.TempDir()
		}
	}
	t.Cleanup(c.closeAll)
	for i := range n {
		c.start(id(i), i == 0)
	}
	return c
}

func (c *cluster) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.nodes))
	for id := range c.nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (c *cluster) node(id string) *consensus.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *cluster) rec(id string) *recorder {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recs[id]
}

func (c *cluster) config(self string, bootstrap bool) consensus.Config {
	cfg := consensus.DefaultConfig()
	cfg.Self, cfg.Members, cfg.Bootstrap, cfg.DataDir = self, c.members, bootstrap, c.dirs[self]
	cfg.W, cfg.R = len(c.members), 1
	if testing.Verbose() && os.Getenv("RAFT_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	return cfg
}

func (c *cluster) replicationMembers() []replication.Member {
	ms := make([]replication.Member, len(c.members))
	for i, m := range c.members {
		ms[i] = replication.Member{ID: m.ID, URL: m.Addr}
	}
	return ms
}

// start runs a new incarnation of node id (a fresh Node, fresh hooks).
func (c *cluster) start(id string, bootstrap bool) *consensus.Node {
	c.t.Helper()
	rec := &recorder{}
	cfg := c.config(id, bootstrap)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	n, err := consensus.New(cfg, c.net.RaftStreams(id, c.replicationMembers()), rec.hooks())
	if err != nil {
		c.t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		n.Close()
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.nodes[id], c.recs[id], c.regs[id] = n, rec, reg
	c.mu.Unlock()
	return n
}

// kill closes node id.
func (c *cluster) kill(id string) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if err := n.Close(); err != nil {
		c.t.Errorf("close %s: %v", id, err)
	}
}

func (c *cluster) closeAll() {
	for _, id := range c.ids() {
		c.kill(id)
	}
	for id, rec := range c.recs {
		if rec.overlap.Load() {
			c.t.Errorf("%s: Leadership calls overlapped", id)
		}
	}
}

// leader returns the one node among ids that is leader, or "".
func (c *cluster) leader(ids ...string) (string, uint64) {
	var found []string
	var term uint64
	for _, id := range ids {
		if n := c.node(id); n != nil {
			if st := n.State(); st.Self {
				found, term = append(found, id), st.Term
			}
		}
	}
	if len(found) != 1 {
		return "", 0
	}
	return found[0], term
}

// waitLeader waits until exactly one of ids leads and every one of them
// knows it, and returns it and its term.
func (c *cluster) waitLeader(ids ...string) (string, uint64) {
	c.t.Helper()
	if len(ids) == 0 {
		ids = c.ids()
	}
	var l string
	var term uint64
	waitFor(c.t, electionWait, "a leader all of "+strings.Join(ids, ",")+" know", func() bool {
		l, term = c.leader(ids...)
		if l == "" {
			return false
		}
		for _, id := range ids {
			if st := c.node(id).State(); st.Leader != l || st.Term != term {
				return false
			}
			// A follower can know the leader from a heartbeat before it
			// holds the log's first entry, the bootstrap configuration;
			// without it, it would never campaign, and a test that cuts
			// the leader off next would wait in vain for a successor.
			if c.node(id).Stats().LastIndex < 1 {
				return false
			}
		}
		return true
	})
	return l, term
}

func others(ids []string, not ...string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(not, id) {
			out = append(out, id)
		}
	}
	return out
}

func TestFounderWinsFirstElection(t *testing.T) {
	for trial := range 5 {
		n := 3
		if trial%2 == 1 {
			n = 5
		}
		c := newCluster(t, n, fast, false)
		l, term := c.waitLeader()
		if l != "node1" {
			t.Fatalf("trial %d: %s won the first election, want the founder node1", trial, l)
		}
		// The state every node reported last through its hook is the
		// same leader.
		for _, id := range c.ids() {
			waitFor(t, electionWait, id+"'s hook told of "+l, func() bool {
				st, ok := c.rec(id).lastState()
				return ok && st.Leader == l && st.Term == term && st.Self == (id == l)
			})
		}
		c.closeAll()
	}
}

// failover kills the leader of c and returns the new leader and how long
// the survivors went without one.
func failover(t testing.TB, c *cluster) (string, time.Duration) {
	old, oldTerm := c.waitLeader()
	survivors := others(c.ids(), old)
	start := time.Now()
	c.kill(old)
	var l string
	var term uint64
	waitFor(t, electionWait, "a new leader", func() bool {
		l, term = c.leader(survivors...)
		return l != ""
	})
	d := time.Since(start)
	if term <= oldTerm {
		t.Fatalf("new leader %s in term %d, not after the old one's %d", l, term, oldTerm)
	}
	c.waitLeader(survivors...)
	return l, d
}

func TestLeaderFailover(t *testing.T) {
	// The default timings: the durations logged are what a deployment
	// would see (minus the network).
	var times []time.Duration
	c := newCluster(t, 3, nil, false)
	_, d := failover(t, c)
	times = append(times, d)
	c.closeAll()

	c = newCluster(t, 5, nil, false)
	for range 2 {
		_, d := failover(t, c)
		times = append(times, d)
	}
	t.Logf("leaderless after the leader's death: %v", times)
}

func TestProposeQuorum(t *testing.T) {
	c := newCluster(t, 3, fast, false)
	l, _ := c.waitLeader()
	ctx := context.Background()
	idx, err := c.node(l).ProposeQuorum(ctx, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if idx == 0 {
		t.Fatal("index 0")
	}
	// Applied on the leader before ProposeQuorum returns; on the others as
	// they learn of the commit.
	if w, r := c.node(l).Quorum(); w != 2 || r != 2 {
		t.Fatalf("leader's quorum %d/%d right after the proposal", w, r)
	}
	for _, id := range c.ids() {
		waitFor(t, electionWait, id+"'s Quorum hook", func() bool {
			w, r := c.rec(id).lastQuorum()
			return w == 2 && r == 2
		})
		if w, r := c.node(id).Quorum(); w != 2 || r != 2 {
			t.Fatalf("%s: Quorum %d/%d", id, w, r)
		}
	}

	// A follower names the leader.
	f := others(c.ids(), l)[0]
	_, err = c.node(f).ProposeQuorum(ctx, 1, 3)
	var nle *consensus.NotLeaderError
	if !errors.As(err, &nle) || !errors.Is(err, consensus.ErrNotLeader) || nle.LeaderID != l {
		t.Fatalf("proposal on follower %s: %v, want a NotLeaderError naming %s", f, err, l)
	}
	if nle.LeaderAddr == "" || errors.Is(err, consensus.ErrNoLeader) {
		t.Fatalf("NotLeaderError %+v", nle)
	}

	// Invalid values are refused without a proposal.
	before := c.node(l).Stats().LastIndex
	for _, q := range [][2]int{{0, 1}, {1, 0}, {4, 1}, {1, 4}, {-1, 2}} {
		if _, err := c.node(l).ProposeQuorum(ctx, q[0], q[1]); !errors.Is(err, consensus.ErrInvalid) {
			t.Fatalf("ProposeQuorum(%d, %d): %v, want ErrInvalid", q[0], q[1], err)
		}
	}
	if after := c.node(l).Stats().LastIndex; after != before {
		t.Fatalf("invalid proposals reached the log: last index %d -> %d", before, after)
	}
	// A cancelled context proposes nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.node(l).ProposeQuorum(cctx, 1, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}

	// Stats and metrics.
	st := c.node(l).Stats()
	if st.State != "leader" || st.Leader != l || st.Term == 0 || st.CommitIndex < idx || st.AppliedIndex < idx {
		t.Fatalf("leader stats %+v", st)
	}
	if fs := c.node(f).Stats(); fs.State != "follower" || fs.Leader != l || fs.LastContact.IsZero() {
		t.Fatalf("follower stats %+v", fs)
	}
	for id, want := range map[string]float64{l: 2, f: 0} {
		got := gauges(t, c.regs[id])
		if got["kvdb_raft_state"] != want || got["kvdb_raft_term"] != float64(st.Term) ||
			got["kvdb_raft_commit_index"] < float64(idx) || got["kvdb_raft_leader_changes_total"] < 1 {
			t.Fatalf("%s metrics %v", id, got)
		}
	}
	if term, ok := c.node(l).LeaderTerm(); !ok || term != st.Term {
		t.Fatalf("LeaderTerm on the leader: %d %v", term, ok)
	}
	if _, ok := c.node(f).LeaderTerm(); ok {
		t.Fatal("LeaderTerm true on a follower")
	}
}

// gauges returns the values of a registry's metrics.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func TestIsolatedLeaderStepsDown(t *testing.T) {
	c := newCluster(t, 3, fast, false)
	old, oldTerm := c.waitLeader()
	c.net.Isolate(old)
	// It stops claiming leadership within a few lease timeouts (the
	// bound is a hang check).
	waitFor(t, electionWait, old+" to step down", func() bool { return !c.node(old).State().Self })
	_, err := c.node(old).ProposeQuorum(context.Background(), 1, 1)
	if !errors.Is(err, consensus.ErrNoLeader) && !errors.Is(err, consensus.ErrNotLeader) {
		t.Fatalf("proposal on the deposed leader: %v", err)
	}
	if _, ok := c.node(old).LeaderTerm(); ok {
		t.Fatal("LeaderTerm true on a deposed leader")
	}
	rest := others(c.ids(), old)
	l, term := c.waitLeader(rest...)
	if term <= oldTerm {
		t.Fatalf("majority's leader %s in term %d, old term %d", l, term, oldTerm)
	}
	if _, err := c.node(l).ProposeQuorum(context.Background(), 2, 3); err != nil {
		t.Fatal(err)
	}
	// The isolated node learns nothing.
	if st := c.node(old).State(); st.Leader != "" || st.Self {
		t.Fatalf("isolated %s believes in %+v", old, st)
	}
	c.net.Heal()
	l2, term2 := c.waitLeader()
	for _, id := range c.ids() {
		if tm := c.node(id).Term(); tm != term2 {
			t.Fatalf("%s in term %d, leader %s in %d", id, tm, l2, term2)
		}
	}
	waitFor(t, electionWait, old+" to learn the quorum", func() bool {
		w, r := c.node(old).Quorum()
		return w == 2 && r == 3
	})
	// Its hook saw it lose leadership, then learn of the new leader.
	rec := c.rec(old)
	rec.mu.Lock()
	states := slices.Clone(rec.states)
	rec.mu.Unlock()
	lost := slices.IndexFunc(states, func(s consensus.State) bool { return !s.Self && s.Term >= oldTerm })
	if len(states) < 2 || !states[0].Self || lost < 0 || states[len(states)-1].Leader != l2 {
		t.Fatalf("%s's leadership calls: %+v", old, states)
	}
	for i := 1; i < len(states); i++ {
		if states[i].Term < states[i-1].Term {
			t.Fatalf("terms went backwards in %+v", states)
		}
	}
}

func TestRestartedNodeRejoins(t *testing.T) {
	c := newCluster(t, 3, fast, false)
	l, _ := c.waitLeader()
	f := others(c.ids(), l)[0]
	c.kill(f)
	// A change made while it is down.
	if _, err := c.node(l).ProposeQuorum(context.Background(), 1, 3); err != nil {
		t.Fatal(err)
	}
	n := c.start(f, false) // in-memory stores: it starts empty
	waitFor(t, electionWait, f+" to learn the quorum", func() bool {
		w, r := c.rec(f).lastQuorum()
		return w == 1 && r == 3
	})
	if st := n.State(); st.Self {
		t.Fatalf("restarted %s leads: %+v", f, st)
	}
	c.waitLeader()

	// The founder, restarted with empty stores, bootstraps again with the
	// same configuration and rejoins as a follower.
	founder := "node1"
	if cur, _ := c.waitLeader(); cur == founder {
		failover(t, c)
	} else {
		c.kill(founder)
	}
	cur, term := c.waitLeader(others(c.ids(), founder)...)
	if _, err := c.node(cur).ProposeQuorum(context.Background(), 2, 2); err != nil {
		t.Fatal(err)
	}
	c.start(founder, true)
	waitFor(t, electionWait, "the founder to learn the quorum", func() bool {
		w, r := c.rec(founder).lastQuorum()
		return w == 2 && r == 2
	})
	l2, term2 := c.waitLeader()
	if l2 == founder || term2 < term {
		t.Fatalf("after the founder's restart: leader %s term %d (was %s, %d)", l2, term2, cur, term)
	}
}

func TestPersistentRestart(t *testing.T) {
	c := newCluster(t, 3, fast, true)
	l, _ := c.waitLeader()
	if _, err := c.node(l).ProposeQuorum(context.Background(), 2, 2); err != nil {
		t.Fatal(err)
	}
	for _, id := range c.ids() {
		waitFor(t, electionWait, id+" to apply", func() bool { w, _ := c.node(id).Quorum(); return w == 2 })
	}
	// One node restarts and keeps its term.
	f := others(c.ids(), l)[0]
	before := c.node(f).Term()
	c.kill(f)
	if got := c.start(f, false).Term(); got < before {
		t.Fatalf("%s restarted in term %d, was in %d", f, got, before)
	}
	_, term := c.waitLeader()

	// The whole cluster restarts: the founder does not bootstrap again,
	// the terms are kept, and a leader is elected in a later term.
	terms := map[string]uint64{}
	for _, id := range c.ids() {
		terms[id] = c.node(id).Term()
		c.kill(id)
	}
	for i := range 3 {
		n := c.start(id(i), i == 0)
		if got := n.Term(); got < terms[id(i)] {
			t.Fatalf("%s restarted in term %d, was in %d", id(i), got, terms[id(i)])
		}
	}
	_, term2 := c.waitLeader()
	if term2 <= term {
		t.Fatalf("after a full restart the term is %d, was %d", term2, term)
	}
	for _, id := range c.ids() {
		waitFor(t, electionWait, id+" to replay the quorum", func() bool {
			w, r := c.rec(id).lastQuorum()
			return w == 2 && r == 2
		})
	}
}

func TestCloseWithoutStart(t *testing.T) {
	nw := transport.NewInmemNetwork(1)
	members := []replication.Member{{ID: "a", URL: "http://a:1"}}
	reg := prometheus.NewRegistry()
	cfg := consensus.Config{Self: "a", Members: []consensus.Member{{ID: "a", Addr: "http://a:1"}}, Registerer: reg}
	n, err := consensus.New(cfg, nw.RaftStreams("a", members), consensus.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if st := n.State(); st != (consensus.State{}) || n.Term() != 0 || n.Stats() != (consensus.Stats{}) {
		t.Fatalf("before Start: %+v %+v", st, n.Stats())
	}
	if _, err := n.ProposeQuorum(context.Background(), 1, 1); !errors.Is(err, consensus.ErrClosed) {
		t.Fatalf("ProposeQuorum before Start: %v", err)
	}
	if w, r := n.Quorum(); w != 1 || r != 1 {
		t.Fatalf("default quorum %d/%d, want N/1", w, r)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); !errors.Is(err, consensus.ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	// Close unregistered the metrics: a new node registers them again.
	cfg.Bootstrap = true
	n2, err := consensus.New(cfg, nw.RaftStreams("a", members), consensus.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.Start(); err != nil {
		t.Fatal(err)
	}
	// A cluster of one elects itself.
	waitFor(t, electionWait, "a single node to lead", func() bool { return n2.State().Self })
	if _, err := n2.ProposeQuorum(context.Background(), 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := n2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.ProposeQuorum(context.Background(), 1, 1); !errors.Is(err, consensus.ErrClosed) {
		t.Fatalf("ProposeQuorum after Close: %v", err)
	}
	if st := n2.Stats(); st.State != "shutdown" {
		t.Fatalf("stats after Close: %+v", st)
	}
}

func TestNewRefuses(t *testing.T) {
	nw := transport.NewInmemNetwork(1)
	members := []replication.Member{{ID: "a", URL: "http://a:1"}, {ID: "b", URL: "http://b:1"}}
	s := nw.RaftStreams("a", members)
	defer s.Close()
	ms := []consensus.Member{{ID: "a", Addr: "http://a:1"}, {ID: "b", Addr: "http://b:1"}}
	for _, tc := range []struct {
		cfg  consensus.Config
		want []string
	}{
		{consensus.Config{Self: "x", Members: ms}, []string{`self "x" is not among`}},
		{consensus.Config{Self: "a", Members: append(slices.Clone(ms), consensus.Member{ID: "a", Addr: ""})},
			[]string{`"a" listed twice`, "empty address"}},
		{consensus.Config{Self: "a", Members: ms, W: 3, R: -1}, []string{"w=3", "r=-1"}},
		{consensus.Config{Self: "a", Members: ms, HeartbeatTimeout: time.Second, LeaderLeaseTimeout: 2 * time.Second, ElectionTimeout: 10 * time.Millisecond, ApplyTimeout: -1},
			[]string{"lease", "election timeout 10ms", "apply timeout"}},
		{consensus.Config{Self: "b", Members: ms}, []string{`address "http://a:1" is not self's`}},
	} {
		_, err := consensus.New(tc.cfg, s, consensus.Hooks{})
		if err == nil {
			t.Fatalf("%+v: accepted", tc.cfg)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%+v: %v, want %q", tc.cfg, err, w)
			}
		}
	}
	// A failed New left the stream layer to its owner, open.
	if _, err := s.Dial("http://b:1", time.Second); errors.Is(err, net.ErrClosed) {
		t.Fatal("a failed New closed the stream layer")
	}
}

// TestOverHTTP runs a cluster whose raft traffic goes through the stream
// layer mounted on real HTTP servers, behind a token check as the node's
// middleware would be.
func TestOverHTTP(t *testing.T) {
	const token = "t0ken"
	type httpNode struct {
		l    net.Listener
		srv  *http.Server
		node *consensus.Node
	}
	var members []consensus.Member
	var listeners []net.Listener
	for i := range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, l)
		members = append(members, consensus.Member{ID: id(i), Addr: "http://" + l.Addr().String()})
	}
	var rejected atomic.Int32
	nodes := map[string]*httpNode{}
	for i, l := range listeners {
		streams, err := transport.NewRaftStreams(members[i].Addr, token)
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		h := streams.Handler()
		mux.Handle(transport.PathRaft, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				rejected.Add(1)
				http.Error(w, `{"error":"unauthorized","code":"unauthorized"}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(l)
		cfg := consensus.DefaultConfig()
		cfg.Self, cfg.Members, cfg.Bootstrap = id(i), members, i == 0
		n, err := consensus.New(cfg, streams, consensus.Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		nodes[id(i)] = &httpNode{l: l, srv: srv, node: n}
	}
	kill := func(id string) {
		hn := nodes[id]
		delete(nodes, id)
		if err := hn.node.Close(); err != nil {
			t.Error(err)
		}
		hn.srv.Close()
	}
	t.Cleanup(func() {
		for id := range nodes {
			kill(id)
		}
	})
	for _, hn := range nodes {
		if err := hn.node.Start(); err != nil {
			t.Fatal(err)
		}
	}
	leader := func() string {
		var ls []string
		for id, hn := range nodes {
			if hn.node.State().Self {
				ls = append(ls, id)
			}
		}
		if len(ls) != 1 {
			return ""
		}
		for _, hn := range nodes {
			if hn.node.State().Leader != ls[0] {
				return ""
			}
		}
		return ls[0]
	}
	var l string
	waitFor(t, electionWait, "a leader over HTTP", func() bool { l = leader(); return l != "" })
	if l != "node1" {
		t.Fatalf("first leader %s, want node1", l)
	}
	if _, err := nodes[l].node.ProposeQuorum(context.Background(), 2, 2); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	kill(l)
	var l2 string
	waitFor(t, electionWait, "a new leader over HTTP", func() bool { l2 = leader(); return l2 != "" })
	t.Logf("over HTTP: %s took over %v after %s died", l2, time.Since(start), l)
	// The survivors apply the change at the latest when the new leader
	// commits its first entry.
	for id, hn := range nodes {
		waitFor(t, electionWait, id+" to apply the quorum", func() bool { w, r := hn.node.Quorum(); return w == 2 && r == 2 })
	}
	if rejected.Load() != 0 {
		t.Fatalf("%d raft handshakes without the token", rejected.Load())
	}
}

// BenchmarkFailover measures how long a 3-node cluster with the default
// timings goes without a leader after its leader dies (the metric
// ms/failover); the dead node then restarts as a follower. Run it with
// e.g. -bench Failover -benchtime 20x.
func BenchmarkFailover(b *testing.B) {
	c := newCluster(b, 3, nil, false)
	var times []time.Duration
	for b.Loop() {
		old, _ := c.waitLeader()
		_, d := failover(b, c)
		times = append(times, d)
		c.start(old, false)
		c.waitLeader()
	}
	slices.Sort(times)
	var sum time.Duration
	for _, d := range times {
		sum += d
	}
	b.ReportMetric(float64(sum.Milliseconds())/float64(len(times)), "ms/failover")
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "max-ms")
}

var _ raft.StreamLayer = (*transport.RaftStreams)(nil)
