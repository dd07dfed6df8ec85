// Package cluster starts a whole kvdb cluster inside one process: N nodes on
// loopback ports, configured from a named preset (w5r1, w1r5, w3r3, w1r1,
// leaderless, leaderless-w3r3, leaderless-w2r2, leaderless-w1r1). `kvdb
// cluster`, the experiment runner and the in-process tests all use it.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

// Preset is a named replication setting.
type Preset struct {
	Name string
	Mode replication.Mode
	W, R int
}

// Presets are the configurations the project measures, for N=5. The
// assignment's four (w5r1, w1r5, w3r3, leaderless) and leaderless-w3r3
// have R+W>N; w1r1, leaderless-w1r1 and leaderless-w2r2 have R+W<=N, so
// a read may miss an acknowledged write (partial quorums: the
// configurations whose staleness package pbs predicts).
var presets = map[string]Preset{
	"w5r1":            {"w5r1", replication.LeaderFollower, 5, 1},
	"w1r5":            {"w1r5", replication.LeaderFollower, 1, 5},
	"w3r3":            {"w3r3", replication.LeaderFollower, 3, 3},
	"w1r1":            {"w1r1", replication.LeaderFollower, 1, 1},
	"leaderless":      {"leaderless", replication.Leaderless, 5, 1},
	"leaderless-w3r3": {"leaderless-w3r3", replication.Leaderless, 3, 3},
	"leaderless-w2r2": {"leaderless-w2r2", replication.Leaderless, 2, 2},
	"leaderless-w1r1": {"leaderless-w1r1", replication.Leaderless, 1, 1},
}

// PresetNames lists the preset names, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupPreset returns the named preset.
func LookupPreset(name string) (Preset, error) {
	p, ok := presets[name]
	if !ok {
		return Preset{}, fmt.Errorf("unknown config %q: want one of %v", name, PresetNames())
	}
	return p, nil
}

// Config configures a local cluster.
type Config struct {
	// Preset names the replication setting (default w5r1); it sets the
	// template's mode, W and R.
	Preset string
	// N is the number of nodes (default 5).
	N int
	// Host is the address to listen on (default 127.0.0.1).
	Host string
	// BasePort is the first node's port; the others follow it. Zero picks
	// free ports.
	BasePort int
	// Node is the template every node is built from (zero fields keep the
	// node defaults; see node.Config): delays, timeouts, repair switches,
	// limits, cluster token, fsync policy, logger. Start fills in what
	// differs per node — the member ID, listen address, members, mode, W
	// and R from the preset, the data directory and the transport wrap —
	// and gives each node the template's logger with a "node" attribute.
	Node node.Config
	// DataDir, if set, gives every node a write-ahead log in DataDir/<id>.
	DataDir string
	// Faults, if set, is put between every node and its peers (tests).
	Faults *transport.Faults
	// Network, if set, carries every node's node-to-node calls in place of
	// HTTP (tests); Start sets it as each node's Network, Stop unregisters
	// the node.
	Network *transport.InmemNetwork
	// RESP, if set, gives every node a Redis-protocol listener on Host:
	// node i on RESPBasePort+i-1 (as BasePort numbers the HTTP ports), or
	// on free ports when RESPBasePort is zero. Each node's READONLY error
	// names the leader's RESP address.
	RESP bool
	// RESPBasePort is the first node's RESP port (with RESP).
	RESPBasePort int
	// NoPause leaves the nodes' sockets ungated, and Pause then fails.
	// Pause needs every connection and peer call wrapped (a check per
	// socket read and write, an http.Request per stream call); a cluster
	// that is never paused (kvdb cluster, kvdb bench) should not pay for
	// it.
	NoPause bool
}

// DefaultConfig returns the defaults: w5r1 on five nodes on 127.0.0.1,
// free ports, every node at node.DefaultConfig.
func DefaultConfig() Config {
	return Config{Preset: "w5r1", N: 5, Host: "127.0.0.1", Node: node.DefaultConfig()}
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	d := DefaultConfig()
	if c.Preset == "" {
		c.Preset = d.Preset
	}
	if c.N == 0 {
		c.N = d.N
	}
	if c.Host == "" {
		c.Host = d.Host
	}
	if c.Node.Logger == nil {
		c.Node.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports invalid settings. The template's own settings are
// checked per node by node.New.
func (c *Config) Validate() error {
	var errs []error
	p, err := LookupPreset(c.Preset)
	if err != nil {
		errs = append(errs, err)
	} else if p.W > c.N || p.R > c.N {
		errs = append(errs, fmt.Errorf("config %s needs at least %d nodes, have %d", p.Name, max(p.W, p.R), c.N))
	}
	if c.N < 1 || c.N > replication.MaxNodes {
		errs = append(errs, fmt.Errorf("n=%d outside 1..%d", c.N, replication.MaxNodes))
	}
	if c.BasePort < 0 || c.BasePort+c.N-1 > 65535 {
		errs = append(errs, fmt.Errorf("base port %d: ports must stay within 1..65535", c.BasePort))
	}
	if c.RESPBasePort < 0 || c.RESPBasePort+c.N-1 > 65535 {
		errs = append(errs, fmt.Errorf("RESP base port %d: ports must stay within 1..65535", c.RESPBasePort))
	}
	if c.RESPBasePort != 0 && c.BasePort != 0 && c.RESPBasePort < c.BasePort+c.N && c.BasePort < c.RESPBasePort+c.N {
		errs = append(errs, fmt.Errorf("RESP ports %d..%d overlap the HTTP ports %d..%d", c.RESPBasePort, c.RESPBasePort+c.N-1, c.BasePort, c.BasePort+c.N-1))
	}
	if c.Node.DataDir != "" {
		errs = append(errs, errors.New("set the cluster's DataDir (the root of every node's directory), not the template's"))
	}
	return errors.Join(errs...)
}

// nodeConfig is node i's config: the template with what differs per node.
func (c *Config) nodeConfig(p Preset, members []replication.Member, respAddrs []string, i int) node.Config {
	ncfg := c.Node
	if respAddrs != nil {
		ncfg.RESPListen = respAddrs[i]
		ncfg.RESP.Addrs = make(map[string]string, len(members))
		for j, m := range members {
			ncfg.RESP.Addrs[m.ID] = respAddrs[j]
		}
	}
	rc := &ncfg.Replication
	rc.Self, rc.Members, rc.Mode, rc.W, rc.R, rc.Leader = members[i].ID, members, p.Mode, p.W, p.R, ""
	ncfg.Listen = members[i].URL[len("http://"):]
	ncfg.Logger = c.Node.Logger.With("node", members[i].ID)
	if c.DataDir != "" {
		ncfg.DataDir = filepath.Join(c.DataDir, members[i].ID)
	}
	if c.Faults != nil {
		ncfg.WrapTransport = c.Faults.Wrap(ncfg.Listen)
		ncfg.RaftDial = c.Faults.Dialer(ncfg.Listen)
	}
	if c.Network != nil {
		ncfg.Network = c.Network
	}
	return ncfg
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg    Config
	preset Preset
	ncfgs  []node.Config
	gates  []*pauseGate // per node, across restarts (see Pause)
	mu     sync.Mutex
	nodes  []*node.Node
	errs   []chan error
	respc  []chan error // the RESP listeners' Serve results (with RESP)
	rls    []net.Listener
	down   []bool
}

// Start listens on every node's port and starts the nodes. In
// leader-follower mode the first node (on the base port) is the leader.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p, _ := LookupPreset(cfg.Preset)
	listeners := make([]net.Listener, 0, cfg.N)
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	var lc net.ListenConfig
	for i := range cfg.N {
		port := 0
		if cfg.BasePort != 0 {
			port = cfg.BasePort + i
		}
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(port)))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("cluster: node %d: %w", i+1, err)
		}
		listeners = append(listeners, l)
	}
	var respAddrs []string
	if cfg.RESP {
		for i := range cfg.N {
			port := 0
			if cfg.RESPBasePort != 0 {
				port = cfg.RESPBasePort + i
			}
			l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(port)))
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("cluster: node %d: RESP: %w", i+1, err)
			}
			listeners = append(listeners, l)
			respAddrs = append(respAddrs, l.Addr().String())
		}
	}
	members := make([]replication.Member, cfg.N)
	for i, l := range listeners[:cfg.N] {
		members[i] = replication.Member{ID: "node" + strconv.Itoa(i+1), URL: "http://" + l.Addr().String()}
	}
	c := &Cluster{cfg: cfg, preset: p, down: make([]bool, cfg.N), errs: make([]chan error, cfg.N), respc: make([]chan error, cfg.N), rls: make([]net.Listener, cfg.N)}
	if cfg.RESP {
		copy(c.rls, listeners[cfg.N:])
	}
	for i := range cfg.N {
		ncfg := cfg.nodeConfig(p, members, respAddrs, i)
		gate := newPauseGate()
		c.gates = append(c.gates, gate)
		if c.gated() {
			gate.wrapOutgoing(&ncfg)
		}
		n, err := node.New(ncfg)
		if err != nil {
			// Nothing has started yet: the nodes built so far hold only
			// their logs and clients.
			for _, built := range c.nodes {
				if cfg.Network != nil {
					cfg.Network.Unregister(built.ID())
				}
				_ = built.Kill()
			}
			closeAll()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		c.ncfgs = append(c.ncfgs, ncfg)
		c.nodes = append(c.nodes, n)
	}
	for i, n := range c.nodes {
		c.serve(i, n, listeners[i], c.rls[i])
	}
	if err := c.WaitReady(ctx, 30*time.Second); err != nil {
		_ = c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

// serve starts node i on l and, with RESP, on rl.
func (c *Cluster) serve(i int, n *node.Node, l, rl net.Listener) {
	errc := make(chan error, 1)
	c.errs[i] = errc
	if c.gated() {
		l = gatedListener{Listener: l, gate: c.gates[i]}
	}
	go func() { errc <- n.Serve(l) }()
	if rl == nil {
		c.respc[i] = nil
		return
	}
	respc := make(chan error, 1)
	c.respc[i] = respc
	if c.gated() {
		rl = gatedListener{Listener: rl, gate: c.gates[i]}
	}
	go func() { respc <- n.ServeRESP(rl) }()
}

// waitServed collects node i's Serve results (after Close or Kill).
func (c *Cluster) waitServed(i int) error {
	err := <-c.errs[i]
	if c.respc[i] != nil {
		err = errors.Join(err, <-c.respc[i])
	}
	return err
}

// WaitReady waits until every running node has caught up and serves
// clients and, in leader-follower mode, a leader accepts writes (elected
// and caught up), or timeout passes.
func (c *Cluster) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		waiting := 0
		c.mu.Lock()
		for i, n := range c.nodes {
			if !c.down[i] && !n.Ready() {
				waiting++
			}
		}
		c.mu.Unlock()
		leader := c.preset.Mode != replication.LeaderFollower || c.Leader() >= 0
		if waiting == 0 && leader {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if waiting == 0 {
				return fmt.Errorf("cluster: no leader accepting writes after %s", timeout)
			}
			return fmt.Errorf("cluster: %d nodes not ready after %s", waiting, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Leader returns the index of the running node that leads and accepts
// writes (elected and caught up), or -1 if none does (leaderless mode, an
// election under way, a new leader still catching up). If two nodes
// believe they lead (an old leader cut off, within its lease), it returns
// the one of the higher term.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	best, term := -1, uint64(0)
	for i, n := range c.nodes {
		if c.down[i] {
			continue
		}
		inf := n.Info()
		if inf.Role == "leader" && !inf.CatchingUp && (best < 0 || inf.Term > term) {
			best, term = i, inf.Term
		}
	}
	return best
}

// WaitLeader waits until a running node leads and accepts writes, and
// returns its index.
func (c *Cluster) WaitLeader(ctx context.Context, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		if i := c.Leader(); i >= 0 {
			return i, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return -1, fmt.Errorf("cluster: no leader accepting writes after %s", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Restart starts node i again after Stop, on the same address, with an
// empty store: it catches up from its peers before it serves clients.
// It does not wait for that; use WaitReady.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.down[i] {
		return fmt.Errorf("cluster: node %d is running", i+1)
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", c.ncfgs[i].Listen)
	if err != nil {
		return fmt.Errorf("cluster: restart node %d: %w", i+1, err)
	}
	var rl net.Listener
	if c.cfg.RESP {
		if rl, err = lc.Listen(ctx, "tcp", c.ncfgs[i].RESPListen); err != nil {
			l.Close()
			return fmt.Errorf("cluster: restart node %d: RESP: %w", i+1, err)
		}
	}
	n, err := node.New(c.ncfgs[i])
	if err != nil {
		l.Close()
		if rl != nil {
			rl.Close()
		}
		return fmt.Errorf("cluster: restart node %d: %w", i+1, err)
	}
	c.nodes[i] = n
	c.down[i] = false
	c.serve(i, n, l, rl)
	return nil
}

// Preset is the cluster's replication setting.
func (c *Cluster) Preset() Preset { return c.preset }

// Nodes returns the nodes in member order.
func (c *Cluster) Nodes() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*node.Node(nil), c.nodes...)
}

// URLs returns every node's base URL in member order (the leader first in
// leader-follower mode).
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.ncfgs))
	for i, n := range c.ncfgs {
		urls[i] = n.Replication.Members[i].URL
	}
	return urls
}

// RESPAddrs returns every node's RESP address in member order (nil
// without Config.RESP).
func (c *Cluster) RESPAddrs() []string {
	if !c.cfg.RESP {
		return nil
	}
	addrs := make([]string, len(c.ncfgs))
	for i, n := range c.ncfgs {
		addrs[i] = n.RESPListen
	}
	return addrs
}

// Hosts returns every node's host:port, the names Faults uses.
func (c *Cluster) Hosts() []string {
	hosts := make([]string, len(c.nodes))
	for i, u := range c.URLs() {
		hosts[i] = u[len("http://"):]
	}
	return hosts
}

// Stop kills node i (its port then refuses connections and open
// connections are cut), as a crashed node would look to its peers. A
// paused node is resumed first (kill -9 of a stopped process), so nothing
// it holds waits for a resume that never comes.
func (c *Cluster) Stop(i int) error {
	c.gates[i].resume()
	c.mu.Lock()
	if c.down[i] {
		c.mu.Unlock()
		return nil
	}
	c.down[i] = true
	n := c.nodes[i]
	c.mu.Unlock()
	if c.cfg.Network != nil {
		c.cfg.Network.Unregister(n.ID())
	}
	return errors.Join(n.Kill(), c.waitServed(i))
}

// Close stops every node: first all drain their background replication
// while every server still answers, then all servers stop.
func (c *Cluster) Close(ctx context.Context) error {
	for _, g := range c.gates {
		g.resume()
	}
	var mu sync.Mutex
	var errs []error
	nodes := c.Nodes()
	each := func(fn func(n *node.Node) error) {
		var wg sync.WaitGroup
		for i, n := range nodes {
			c.mu.Lock()
			down := c.down[i]
			c.mu.Unlock()
			if down {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(n); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	each(func(n *node.Node) error { return n.Drain(ctx) })
	each(func(n *node.Node) error { return n.Close(ctx) })
	for i := range nodes {
		c.mu.Lock()
		down := c.down[i]
		c.down[i] = true
		c.mu.Unlock()
		if !down {
			if err := c.waitServed(i); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Client returns an HTTP client suited to talking to the cluster: no
// redirect following, keep-alive.
func Client() *http.Client { return transport.NewHTTPClient(10*time.Second, nil) }

// Pause freezes node i, as SIGSTOP (docker pause) freezes a process: its
// sockets stop moving. Requests to it — clients', peers' and raft's — are
// accepted by the kernel but not read, so their senders wait until their
// own timeouts; answers it has not yet sent stay unsent; and every message
// it starts sends nothing (its peer calls and raft connections wait). On
// Resume everything held moves again, in order. Peers and clients see a
// node that is up but silent: timeouts, not refused connections.
//
// What it does not emulate: the node's goroutines keep running, so its own
// timers fire during the pause rather than at the resume (its peer calls
// end at their timeouts, raft's election timer fires and it campaigns —
// its votes requests held until the resume — and a paused leader's lease
// lapses and it steps down while frozen); work already past the sockets
// (a request it has read, a reply already written) continues. Pause needs
// the nodes to talk over HTTP (it is refused with Config.Network).
func (c *Cluster) Pause(i int) error {
	if c.cfg.Network != nil {
		return errors.New("cluster: Pause needs HTTP between the nodes, not Config.Network")
	}
	if c.cfg.NoPause {
		return errors.New("cluster: Pause is off (Config.NoPause)")
	}
	if i < 0 || i >= len(c.gates) {
		return fmt.Errorf("cluster: no node %d", i+1)
	}
	c.gates[i].pause()
	return nil
}

// Resume lets a paused node run again; a node not paused is left alone.
func (c *Cluster) Resume(i int) error {
	if i < 0 || i >= len(c.gates) {
		return fmt.Errorf("cluster: no node %d", i+1)
	}
	c.gates[i].resume()
	return nil
}

// Paused reports whether node i is paused.
func (c *Cluster) Paused(i int) bool {
	return i >= 0 && i < len(c.gates) && c.gates[i].isPaused()
}

// gated reports whether the nodes' sockets go through their pause gates.
func (c *Cluster) gated() bool { return c.cfg.Network == nil && !c.cfg.NoPause }

// pauseGate holds one node's socket traffic while the node is paused.
// paused changes only under mu (with resumed); wait reads it without the
// lock, its fast path.
type pauseGate struct {
	mu      sync.Mutex
	paused  atomic.Bool
	resumed chan struct{} // closed while running; a fresh one per pause
}

func newPauseGate() *pauseGate {
	ch := make(chan struct{})
	close(ch)
	return &pauseGate{resumed: ch}
}

func (g *pauseGate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.paused.Load() {
		g.resumed = make(chan struct{})
		g.paused.Store(true)
	}
}

func (g *pauseGate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused.Load() {
		g.paused.Store(false)
		close(g.resumed)
	}
}

func (g *pauseGate) isPaused() bool { return g.paused.Load() }

// wait returns true at once when the node runs, else when it is resumed;
// false if done is closed first.
func (g *pauseGate) wait(done <-chan struct{}) bool {
	if !g.paused.Load() {
		return true
	}
	g.mu.Lock()
	ch := g.resumed
	g.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-done:
		return false
	}
}

// wrapOutgoing makes the node's own messages wait while it is paused: its
// peer calls (around any fault wrapper) and its raft connections.
func (g *pauseGate) wrapOutgoing(ncfg *node.Config) {
	inner := ncfg.WrapTransport
	ncfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
		if inner != nil {
			next = inner(next)
		}
		return gatedRT{gate: g, next: next}
	}
	dial := ncfg.RaftDial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	ncfg.RaftDial = func(ctx context.Context, network, address string) (net.Conn, error) {
		if !g.wait(ctx.Done()) {
			return nil, ctx.Err()
		}
		conn, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return newGatedConn(conn, g), nil
	}
}

// gatedRT holds a paused node's outgoing requests, and the answers to
// those already sent, until it is resumed (or the request's context ends).
type gatedRT struct {
	gate *pauseGate
	next http.RoundTripper
}

func (t gatedRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.gate.wait(req.Context().Done()) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, req.Context().Err()
	}
	resp, err := t.next.RoundTrip(req)
	if err == nil && !t.gate.wait(req.Context().Done()) {
		resp.Body.Close()
		return nil, req.Context().Err()
	}
	return resp, err
}

// gatedListener hands out connections that freeze while the node is
// paused (the HTTP server's, and raft's streams hijacked from it).
type gatedListener struct {
	net.Listener
	gate *pauseGate
}

func (l gatedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newGatedConn(conn, l.gate), nil
}

// gatedConn neither delivers what it reads nor sends what it is given
// while its node is paused; Close releases whatever waits.
type gatedConn struct {
	net.Conn
	gate   *pauseGate
	once   sync.Once
	closed chan struct{}
}

func newGatedConn(conn net.Conn, g *pauseGate) *gatedConn {
	return &gatedConn{Conn: conn, gate: g, closed: make(chan struct{})}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	if !c.gate.wait(c.closed) {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(p)
	// Bytes that arrived while the node was paused are its to read only
	// once it runs again.
	if !c.gate.wait(c.closed) {
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *gatedConn) Write(p []byte) (int, error) {
	if !c.gate.wait(c.closed) {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func (c *gatedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// CloseWrite half-closes like the TCP connection it wraps (net/http uses
// it when it can); a connection that cannot is left as it is.
func (c *gatedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
