package transport

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvdb/kvdb/internal/replication"
)

// This file carries raft's traffic between the nodes of an InmemNetwork:
// each node's raft.StreamLayer hands out one end of a net.Pipe per
// connection, and the network's faults apply to those pipes as they do to
// the data calls, so a partition test cuts raft too.
//
// A raft connection is two-way (requests one way, answers the other), so a
// pipe between a and b lives only while both directions are up: a cut in
// either direction (Disconnect, DisconnectAll, Partition), Isolate of either
// end, Drop of either end with p >= 1 (no message to it arrives: requests
// to it and answers to its own requests alike) and Unregister of either end
// close it, and a Dial across such a link fails at once, as a refused
// connection would. Connect and Heal reopen nothing: raft redials. Delay and
// Drop with p < 1 do not apply to raft streams (raft's timing is what an
// election measures; a lossy link would only be a slower one).

// ErrRaftUnreachable is returned by an in-memory raft Dial that cannot
// reach its target: not on the network, no open stream layer, or the link
// cut.
var ErrRaftUnreachable = errors.New("transport: raft peer unreachable")

// inmemRaft is the raft part of an InmemNetwork, guarded by its mu. The zero
// value is ready.
type inmemRaft struct {
	layers map[string]*InmemRaftStreams // each node's current stream layer, by ID
	down   map[string]bool              // unregistered (crashed) nodes
	pipes  map[*inmemPipe]struct{}      // live pipes
}

// inmemPipe is one raft connection: the dialer's end and the acceptor's.
type inmemPipe struct {
	from, to        *InmemRaftStreams
	dialEnd, accEnd *inmemRaftConn
}

// close closes both ends (without the network's lock).
func (p *inmemPipe) close() {
	p.dialEnd.Conn.Close()
	p.accEnd.Conn.Close()
}

// RaftStreams returns node self's raft stream layer on n. Addresses are the
// members' base URLs (Member.URL); Addr is self's. A node has one stream
// layer at a time: a second call for the same node (a restarted node)
// replaces the first, closing its connections. The layer is reachable from
// the others until it is closed or the node is unregistered (and again once
// the node is registered anew).
func (n *InmemNetwork) RaftStreams(self string, members []replication.Member) raft.StreamLayer {
	s := &InmemRaftStreams{
		net:    n,
		id:     self,
		addr:   raftAddr(self),
		ids:    make(map[string]string, len(members)),
		accept: make(chan net.Conn),
		done:   make(chan struct{}),
	}
	for _, m := range members {
		s.ids[m.URL] = m.ID
		if m.ID == self {
			s.addr = raftAddr(m.URL)
		}
	}
	n.mu.Lock()
	if n.raft.layers == nil {
		n.raft.layers = map[string]*InmemRaftStreams{}
	}
	old := n.raft.layers[self]
	n.raft.layers[self] = s
	cut := n.raft.pipesOfLocked(old)
	n.mu.Unlock()
	closePipes(cut)
	return s
}

// InmemRaftStreams is one node's raft.StreamLayer on an InmemNetwork (see
// InmemNetwork.RaftStreams).
type InmemRaftStreams struct {
	net    *InmemNetwork
	id     string
	addr   raftAddr
	ids    map[string]string // member URL -> ID
	accept chan net.Conn
	done   chan struct{}
	closed bool // under net.mu
}

// Dial connects to the node whose base URL is address. It fails at once if
// that node cannot be reached now.
func (s *InmemRaftStreams) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	to, ok := s.ids[string(address)]
	if !ok {
		return nil, fmt.Errorf("raft dial %s -> %s: %w: not a member", s.id, address, ErrRaftUnreachable)
	}
	n := s.net
	n.mu.Lock()
	if s.closed {
		n.mu.Unlock()
		return nil, ErrRaftStreamsClosed
	}
	target := n.raft.layers[to]
	if target == nil || target.closed || n.raft.layers[s.id] != s || !n.raftLinkUpLocked(s.id, to) {
		n.mu.Unlock()
		return nil, fmt.Errorf("raft dial %s -> %s: %w", s.id, to, ErrRaftUnreachable)
	}
	a, b := net.Pipe()
	p := &inmemPipe{from: s, to: target}
	p.dialEnd = &inmemRaftConn{Conn: a, net: n, pipe: p, local: s.addr, remote: target.addr}
	p.accEnd = &inmemRaftConn{Conn: b, net: n, pipe: p, local: target.addr, remote: s.addr}
	if n.raft.pipes == nil {
		n.raft.pipes = map[*inmemPipe]struct{}{}
	}
	n.raft.pipes[p] = struct{}{}
	n.mu.Unlock()

	if timeout <= 0 {
		timeout = defaultRaftHandshake
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case target.accept <- p.accEnd:
		return p.dialEnd, nil
	case <-target.done:
	case <-s.done:
	case <-t.C:
	}
	p.dialEnd.Close()
	p.accEnd.Conn.Close()
	return nil, fmt.Errorf("raft dial %s -> %s: %w: not accepted", s.id, to, ErrRaftUnreachable)
}

// Accept waits for the next connection; after Close it returns an error
// matching net.ErrClosed.
func (s *InmemRaftStreams) Accept() (net.Conn, error) {
	select {
	case c := <-s.accept:
		return c, nil
	case <-s.done:
		return nil, ErrRaftStreamsClosed
	}
}

// Close closes the layer and every connection it dialed or accepted, and
// takes it off the network. It is idempotent.
func (s *InmemRaftStreams) Close() error {
	n := s.net
	n.mu.Lock()
	if s.closed {
		n.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	if n.raft.layers[s.id] == s {
		delete(n.raft.layers, s.id)
	}
	cut := n.raft.pipesOfLocked(s)
	n.mu.Unlock()
	closePipes(cut)
	return nil
}

// Addr is the node's base URL.
func (s *InmemRaftStreams) Addr() net.Addr { return s.addr }

// raftLinkUpLocked reports whether a raft connection between nodes a and b
// can live: both directions up, neither end isolated, dropping everything or
// unregistered.
func (n *InmemNetwork) raftLinkUpLocked(a, b string) bool {
	return !n.cut[[2]string{a, b}] && !n.cut[[2]string{b, a}] &&
		!n.isolated[a] && !n.isolated[b] &&
		n.drop[a] < 1 && n.drop[b] < 1 &&
		!n.raft.down[a] && !n.raft.down[b]
}

// pipesOfLocked removes and returns the live pipes with an end at layer s
// (none for nil).
func (r *inmemRaft) pipesOfLocked(s *InmemRaftStreams) []*inmemPipe {
	if s == nil {
		return nil
	}
	var cut []*inmemPipe
	for p := range r.pipes {
		if p.from == s || p.to == s {
			cut = append(cut, p)
			delete(r.pipes, p)
		}
	}
	return cut
}

// raftDownLocked marks node id unregistered: its raft streams are cut until
// it registers again.
func (n *InmemNetwork) raftDownLocked(id string) {
	if n.raft.down == nil {
		n.raft.down = map[string]bool{}
	}
	n.raft.down[id] = true
}

// raftDisconnectAllLocked is DisconnectAll's part for nodes on the network
// by their raft streams only (not registered): it cuts the links from node
// from to them too.
func (n *InmemNetwork) raftDisconnectAllLocked(from string) {
	for to := range n.raft.layers {
		if to != from {
			n.cut[[2]string{from, to}] = true
		}
	}
}

// raftUpLocked marks node id registered.
func (n *InmemNetwork) raftUpLocked(id string) { delete(n.raft.down, id) }

// unlockCut is n.mu.Unlock for the fault methods: it removes the raft pipes
// the faults now in force cut, unlocks, then closes them.
func (n *InmemNetwork) unlockCut() {
	var cut []*inmemPipe
	for p := range n.raft.pipes {
		if !n.raftLinkUpLocked(p.from.id, p.to.id) {
			cut = append(cut, p)
			delete(n.raft.pipes, p)
		}
	}
	n.mu.Unlock()
	closePipes(cut)
}

func closePipes(ps []*inmemPipe) {
	for _, p := range ps {
		p.close()
	}
}

// inmemRaftConn is one end of a raft pipe, with the nodes' base URLs as its
// addresses. Closing it closes the connection: the pipe leaves the network's
// list, and the other end reads EOF.
type inmemRaftConn struct {
	net.Conn
	net           *InmemNetwork
	pipe          *inmemPipe
	local, remote net.Addr
	once          sync.Once
}

func (c *inmemRaftConn) LocalAddr() net.Addr  { return c.local }
func (c *inmemRaftConn) RemoteAddr() net.Addr { return c.remote }

func (c *inmemRaftConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = c.Conn.Close()
		c.net.mu.Lock()
		delete(c.net.raft.pipes, c.pipe)
		c.net.mu.Unlock()
	})
	return err
}
