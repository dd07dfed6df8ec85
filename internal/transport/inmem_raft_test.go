package transport_test

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

var raftMembers = []replication.Member{
	{ID: "a", URL: "http://a:1"},
	{ID: "b", URL: "http://b:1"},
	{ID: "c", URL: "http://c:1"},
}

func raftURL(id string) raft.ServerAddress { return raft.ServerAddress("http://" + id + ":1") }

// raftNet returns a network with a stream layer per member, closed at the
// end of the test.
func raftNet(t *testing.T) (*transport.InmemNetwork, map[string]raft.StreamLayer) {
	t.Helper()
	n := transport.NewInmemNetwork(1)
	layers := map[string]raft.StreamLayer{}
	for _, m := range raftMembers {
		s := n.RaftStreams(m.ID, raftMembers)
		layers[m.ID] = s
		t.Cleanup(func() { s.Close() })
	}
	return n, layers
}

// connect dials from -> to and returns both ends.
func connect(t *testing.T, layers map[string]raft.StreamLayer, from, to string) (dialed, accepted net.Conn) {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := layers[to].Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	c, err := layers[from].Dial(raftURL(to), time.Second)
	if err != nil {
		t.Fatalf("dial %s -> %s: %v", from, to, err)
	}
	sc := <-ch
	if sc == nil {
		t.Fatalf("accept on %s failed", to)
	}
	t.Cleanup(func() {
		c.Close()
		sc.Close()
	})
	return c, sc
}

// dead reports whether c is closed: a read fails at once with something
// other than a timeout.
func dead(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func mustRefuse(t *testing.T, layers map[string]raft.StreamLayer, from, to string) {
	t.Helper()
	c, err := layers[from].Dial(raftURL(to), time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("dial %s -> %s succeeded across a cut", from, to)
	}
	if !errors.Is(err, transport.ErrRaftUnreachable) {
		t.Fatalf("dial %s -> %s: %v, want ErrRaftUnreachable", from, to, err)
	}
}

func TestInmemRaftDialAccept(t *testing.T) {
	noLeaks(t)
	n, layers := raftNet(t)
	if got := layers["b"].Addr().String(); got != "http://b:1" {
		t.Fatalf("Addr %q", got)
	}
	c, sc := connect(t, layers, "a", "b")
	if c.LocalAddr().String() != "http://a:1" || c.RemoteAddr().String() != "http://b:1" ||
		sc.LocalAddr().String() != "http://b:1" || sc.RemoteAddr().String() != "http://a:1" {
		t.Fatalf("addresses %v->%v, %v->%v", c.LocalAddr(), c.RemoteAddr(), sc.LocalAddr(), sc.RemoteAddr())
	}
	exchange(t, c, sc)
	c.Close()
	if !dead(sc) {
		t.Fatal("the other end lives on after Close")
	}

	if _, err := layers["a"].Dial("http://nobody:1", time.Second); !errors.Is(err, transport.ErrRaftUnreachable) {
		t.Fatalf("dial to a non-member: %v", err)
	}
	// A member without a stream layer is unreachable.
	layers["c"].Close()
	mustRefuse(t, layers, "a", "c")
	if _, err := layers["c"].Dial(raftURL("a"), time.Second); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("dial from a closed layer: %v", err)
	}
	// A restarted node's new layer replaces the old one, whose
	// connections close.
	c, sc = connect(t, layers, "a", "b")
	layers["b"] = n.RaftStreams("b", raftMembers)
	t.Cleanup(func() { layers["b"].Close() })
	if !dead(c) || !dead(sc) {
		t.Fatal("connections of a replaced layer live on")
	}
	c, sc = connect(t, layers, "a", "b")
	exchange(t, c, sc)
}

func TestInmemRaftFaults(t *testing.T) {
	noLeaks(t)
	for _, tc := range []struct {
		name  string
		fault func(n *transport.InmemNetwork)
		cut   [][2]string // pairs whose connections must die
		kept  [][2]string // pairs whose connections must live
	}{
		{"partition", func(n *transport.InmemNetwork) { n.Partition("a", "b") }, [][2]string{{"a", "b"}, {"b", "a"}}, [][2]string{{"a", "c"}, {"c", "b"}}},
		{"disconnect one way", func(n *transport.InmemNetwork) { n.Disconnect("b", "a") }, [][2]string{{"a", "b"}, {"b", "a"}}, [][2]string{{"a", "c"}, {"c", "b"}}},
		{"disconnect all", func(n *transport.InmemNetwork) { n.DisconnectAll("a") }, [][2]string{{"a", "b"}, {"c", "a"}}, [][2]string{{"b", "c"}}},
		{"isolate", func(n *transport.InmemNetwork) { n.Isolate("a") }, [][2]string{{"a", "b"}, {"c", "a"}}, [][2]string{{"b", "c"}}},
		{"drop all", func(n *transport.InmemNetwork) { n.Drop("a", 1) }, [][2]string{{"a", "b"}, {"c", "a"}}, [][2]string{{"b", "c"}}},
		{"drop some", func(n *transport.InmemNetwork) { n.Drop("a", 0.5) }, nil, [][2]string{{"a", "b"}, {"c", "a"}}},
		{"delay", func(n *transport.InmemNetwork) { n.Delay("a", time.Hour) }, nil, [][2]string{{"a", "b"}, {"c", "a"}}},
		{"unregister", func(n *transport.InmemNetwork) { n.Unregister("a") }, [][2]string{{"a", "b"}, {"c", "a"}}, [][2]string{{"b", "c"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, layers := raftNet(t)
			type conn struct{ c, sc net.Conn }
			cut, kept := map[[2]string]conn{}, map[[2]string]conn{}
			for _, p := range tc.cut {
				c, sc := connect(t, layers, p[0], p[1])
				cut[p] = conn{c, sc}
			}
			for _, p := range tc.kept {
				c, sc := connect(t, layers, p[0], p[1])
				kept[p] = conn{c, sc}
			}
			tc.fault(n)
			for p, c := range cut {
				if !dead(c.c) || !dead(c.sc) {
					t.Fatalf("%s <-> %s: connection lives on", p[0], p[1])
				}
				mustRefuse(t, layers, p[0], p[1])
				mustRefuse(t, layers, p[1], p[0])
			}
			for _, c := range kept {
				exchange(t, c.c, c.sc)
			}
			for _, p := range tc.kept {
				connect(t, layers, p[0], p[1])
			}
			// Heal (and registering an unregistered node again) lets
			// dials through; nothing reopens by itself.
			n.Heal()
			if tc.name == "unregister" {
				for p := range cut {
					mustRefuse(t, layers, p[0], p[1])
				}
				n.Register("a", newFake())
			}
			for p := range cut {
				c, sc := connect(t, layers, p[0], p[1])
				exchange(t, c, sc)
			}
		})
	}
}

func TestInmemRaftCloseUnblocksAccept(t *testing.T) {
	noLeaks(t)
	_, layers := raftNet(t)
	c, sc := connect(t, layers, "a", "b")
	c2, sc2 := connect(t, layers, "b", "c")
	errc := make(chan error, 1)
	go func() {
		_, err := layers["b"].Accept()
		errc <- err
	}()
	layers["b"].Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Accept")
	}
	for _, c := range []net.Conn{c, sc, c2, sc2} {
		if !dead(c) {
			t.Fatal("a connection of a closed layer lives on")
		}
	}
	if err := layers["b"].Close(); err != nil {
		t.Fatal(err)
	}
}
