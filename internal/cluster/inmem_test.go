package cluster_test

import (
	"hash/fnv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/transport"
)

// Two layers of in-process clusters (docs/design.md, "Testing"): the
// tests of replication semantics run their node-to-node traffic over an
// in-memory network (newNetwork), which is cheaper and takes the loopback
// HTTP stack's scheduling out of their timing; clients still talk to each
// node's HTTP server. The tests of the HTTP transport itself (tokens, bad
// input, metrics, large values, body timeouts, dead and hung peers) keep
// node-to-node traffic on loopback HTTP, with transport.Faults.

// newNetwork returns an in-memory network for one test's cluster, to pass
// as cluster.Config.Network. Its faults name nodes by member ID (ids); its
// random drops are seeded from the test's name.
func newNetwork(t testing.TB) *transport.InmemNetwork {
	h := fnv.New64a()
	io.WriteString(h, t.Name())
	return transport.NewInmemNetwork(h.Sum64())
}

// ids returns the cluster's member IDs in member order: the names an
// InmemNetwork's faults take (c.Hosts() are Faults' names).
func ids(c *cluster.Cluster) []string {
	var out []string
	for _, n := range c.Nodes() {
		out = append(out, n.ID())
	}
	return out
}

// faultInjector is what the tests ask of either network: transport.Faults
// (loopback HTTP, nodes named by host:port) and transport.InmemNetwork
// (nodes named by member ID).
type faultInjector interface {
	Drop(node string, p float64)
	Delay(node string, d time.Duration)
	Isolate(node string)
	Partition(a, b string)
	Heal()
}

var (
	_ faultInjector = (*transport.Faults)(nil)
	_ faultInjector = (*transport.InmemNetwork)(nil)
)

// With an in-memory network, node-to-node calls never reach a node's
// HTTP server, and its faults act on them: an isolated node misses a W=3
// write; after Heal a stopped node is unreachable, and once restarted
// catches up through the network.
func TestInmemNetworkCarriesPeerTraffic(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	net := newNetwork(t)
	c := start(t, cluster.Config{Preset: "leaderless", Network: net})
	cl := newClient(t)
	urls, names := c.URLs(), ids(c)
	net.Isolate(names[4])
	w := cl.setQ(urls[0], "k", "v1", "w=3")
	mustStatus(t, "W=3 write with node5 isolated", w, http.StatusCreated)
	waitFor(t, 5*time.Second, "the write on node1..node4", func() bool { return converged(cl, urls[:4], "k", w.Version) })
	if r := cl.localRead(urls[4], "k"); r.Status != http.StatusNotFound {
		t.Fatalf("isolated node5 holds the write: %d v%d", r.Status, r.Version)
	}
	net.Heal()
	waitFor(t, 5*time.Second, "hinted handoff to node5", func() bool { return converged(cl, urls, "k", w.Version) })

	if err := c.Stop(1); err != nil {
		t.Fatal(err)
	}
	w2 := cl.setQ(urls[0], "k", "v2", "w=4")
	mustStatus(t, "W=4 write with node2 stopped", w2, http.StatusCreated)
	if r := cl.setQ(urls[0], "k", "v3", "w=5"); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("W=5 write with node2 stopped: %d, want 503", r.Status)
	}
	if err := c.Restart(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(t.Context(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if r := cl.localRead(urls[1], "k"); r.Status != http.StatusOK || r.Version < w2.Version {
		t.Fatalf("restarted node2 after catch-up: %d v%d, want at least v%d", r.Status, r.Version, w2.Version)
	}

	for _, u := range urls {
		resp, err := cl.hc.Get(u + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), `route="internal_`) {
			t.Fatalf("%s served /internal/ requests over HTTP with an in-memory network", u)
		}
	}
}
