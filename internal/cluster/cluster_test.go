package cluster_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	kvclient "github.com/kvdb/kvdb/client"
	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/hops"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/server"
	"github.com/kvdb/kvdb/internal/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// After the leader acknowledges a set, a read from the leader and from a
// follower return the new value: directly with W5R1, through a coordinated
// read with the quorum configs.
func TestLeaderFollowerReadYourWrite(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	for _, preset := range []string{"w5r1", "w3r3", "w1r5"} {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			c := start(t, cluster.Config{Network: newNetwork(t), Preset: preset, Node: node.Config{Replication: replication.Config{Delays: scaled(0.05)}}})
			cl := newClient(t)
			urls := c.URLs()
			leader := urls[0]
			for i := range 5 {
				w := cl.set(leader, "k", value(i))
				mustStatus(t, "set", w, http.StatusCreated)
				for _, u := range []string{leader, urls[1+i%4]} {
					r := cl.get(u, "k")
					mustStatus(t, "get "+u, r, http.StatusOK)
					if r.Value != value(i) || r.Version != w.Version {
						t.Fatalf("%s: get from %s = %q v%d, want %q v%d", preset, u, r.Value, r.Version, value(i), w.Version)
					}
				}
			}
		})
	}
}

// With W=1 or W=3 under the paper delays, a follower's local copy lags
// behind an acknowledged write: local_read shows the older value.
func TestLocalReadShowsInconsistencyWindow(t *testing.T) {
	t.Parallel() // in-memory network; the windows it looks for are the paper profile's, hundreds of ms wide
	for _, preset := range []string{"w1r5", "w3r3"} {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			c := start(t, cluster.Config{Network: newNetwork(t), Preset: preset, Node: node.Config{Replication: replication.Config{Delays: replication.PaperDelays()}}})
			cl := newClient(t)
			urls := c.URLs()
			last := urls[len(urls)-1] // replicated to last, 1.2 s after the write starts
			stale := 0
			for i := range 3 {
				w := cl.set(urls[0], "k", value(i))
				mustStatus(t, "set", w, http.StatusCreated)
				r := cl.localRead(last, "k")
				if r.Status == http.StatusNotFound || r.Version < w.Version {
					stale++
				}
				// The coordinated read (R=N-W+1) still sees the write.
				g := cl.get(urls[1], "k")
				if g.Version != w.Version {
					t.Fatalf("coordinated get after ack: v%d, want v%d", g.Version, w.Version)
				}
				waitFor(t, 5*time.Second, "replication to every follower", func() bool { return converged(cl, urls, "k", w.Version) })
			}
			if stale == 0 {
				t.Fatalf("local_read on the last follower never showed an older value in 3 tries")
			}
			t.Logf("%s: %d of 3 local reads right after the ack were stale", preset, stale)
		})
	}
}

// Leaderless: while a write coordinated by a random node is in flight,
// other nodes return older data; after the acknowledgement the coordinator
// and every other node return the new value.
func TestLeaderlessWindowAndAfterAck(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	c := start(t, cluster.Config{Network: newNetwork(t), Preset: "leaderless", Node: node.Config{Replication: replication.Config{Delays: scaled(0.25)}}})
	cl := newClient(t)
	urls := c.URLs()
	coord := 2
	first := cl.set(urls[coord], "k", "old")
	mustStatus(t, "first set", first, http.StatusCreated)
	// The coordinator visits peers in member order after itself, so the node
	// just before it hears of the write last.
	lastPeer := urls[(coord+len(urls)-1)%len(urls)]

	var done atomic.Bool
	var second reply
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		second = cl.set(urls[coord], "k", "new")
		done.Store(true)
	}()
	sawOld := 0
	for n := 0; !done.Load() && n < 5000; n++ { // bounded: the write ends within its timeout
		if r := cl.get(lastPeer, "k"); r.Status == http.StatusOK && r.Value == "old" {
			sawOld++
		}
		time.Sleep(2 * time.Millisecond) // pace the probe; not a synchronization
	}
	wg.Wait()
	mustStatus(t, "second set", second, http.StatusCreated)
	if sawOld == 0 {
		t.Fatal("no read inside the write window returned the older value")
	}
	if second.Version <= first.Version {
		t.Fatalf("versions went backwards: %d then %d", first.Version, second.Version)
	}
	for _, u := range []string{urls[coord], urls[(coord+1)%5], lastPeer} {
		r := cl.get(u, "k")
		if r.Value != "new" || r.Version != second.Version {
			t.Fatalf("after ack, get from %s = %q v%d, want new v%d", u, r.Value, r.Version, second.Version)
		}
	}
	t.Logf("%d reads inside the window saw the older value", sawOld)
}

// Every node can coordinate a leaderless write, and versions issued by
// different coordinators never collide.
func TestLeaderlessAnyCoordinator(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	c := start(t, cluster.Config{Network: newNetwork(t), Preset: "leaderless"})
	cl := newClient(t)
	seen := map[uint64]bool{}
	for i, u := range c.URLs() {
		w := cl.set(u, "k", value(i))
		mustStatus(t, "set via "+u, w, http.StatusCreated)
		if seen[w.Version] {
			t.Fatalf("version %d issued twice", w.Version)
		}
		seen[w.Version] = true
		for _, v := range c.URLs() {
			if r := cl.get(v, "k"); r.Value != value(i) {
				t.Fatalf("after set via %s, %s returns %q, want %q", u, v, r.Value, value(i))
			}
		}
	}
}

// The paper profile's floors (Delays.WriteFloor and ReadFloor): a W5 write
// 1.2 s, W3 0.6 s, W1 0, an R5 read 50 ms, an R1 read 0. Every sample must
// reach its floor: sleeps are never cut short, so the lower bounds are the
// arithmetic and hold however loaded the machine is. An upper bound only
// has to tell the floor from the next one a bug would produce — one more
// replication step (Apply+Gap, 300 ms) for a write, a second read delay
// (peers read one after another) for a quorum read, any read delay at all
// for a local read — and it is checked on the fastest sample, so a loaded
// machine (race detector, two shared cores) has to stall every sample to
// fail it. How long operations take beyond that is for benchmarks and the
// experiment, not for tests.
func TestPaperDelayFloors(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the full paper delays")
	}
	d := replication.PaperDelays()
	c := start(t, cluster.Config{Network: newNetwork(t), Preset: "w5r1", Node: node.Config{Replication: replication.Config{Delays: d}}})
	cl := newClient(t)
	urls := c.URLs()
	const samples = 2
	step := d.Apply + d.Gap
	for _, tc := range []struct {
		name, query string
		w           int
	}{{"W5", "w=5", 5}, {"W3", "w=3", 3}, {"W1", "w=1", 1}} {
		floor := d.WriteFloor(tc.w)
		fastest := time.Duration(1<<63 - 1)
		for i := range samples {
			r := cl.setQ(urls[0], "floor-"+tc.name, value(i), tc.query)
			mustStatus(t, tc.name, r, http.StatusCreated)
			if r.Elapsed < floor {
				t.Errorf("%s write took %s, below its floor %s", tc.name, r.Elapsed, floor)
			}
			fastest = min(fastest, r.Elapsed)
		}
		if fastest >= floor+step {
			t.Errorf("%s: the fastest of %d writes took %s, a whole replication step (%s) over its floor %s: it waited for a copy it does not need",
				tc.name, samples, fastest, step, floor)
		}
		t.Logf("%s write: fastest %s, floor %s", tc.name, fastest, floor)
	}
	r5, r1 := time.Duration(1<<63-1), time.Duration(1<<63-1)
	for _, u := range urls[:2] {
		for range samples {
			r := cl.getQ(u, "floor-W5", "r=5")
			mustStatus(t, "R5 read", r, http.StatusOK)
			if r.Elapsed < d.ReadFloor(5) {
				t.Errorf("R5 read from %s took %s, below its floor %s", u, r.Elapsed, d.ReadFloor(5))
			}
			r5 = min(r5, r.Elapsed)
			r = cl.get(u, "floor-W5")
			mustStatus(t, "R1 read", r, http.StatusOK)
			r1 = min(r1, r.Elapsed)
		}
	}
	if r5 >= d.ReadFloor(5)+d.Read {
		t.Errorf("the fastest R5 read took %s, two read delays: peers were not read in parallel", r5)
	}
	if r1 >= d.Read {
		t.Errorf("the fastest R1 read took %s, a whole read delay (%s): local reads never sleep", r1, d.Read)
	}
	t.Logf("R5 read: fastest %s, floor %s; R1 read: fastest %s", r5, d.ReadFloor(5), r1)
}

// Many clients write one key at once: no replica's version ever goes down,
// and when the load stops every replica holds the same value and version.
func TestConcurrentWritersConverge(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	for _, tc := range []struct{ preset, query string }{
		{"w5r1", ""}, {"w5r1", "w=1"}, {"leaderless", ""}, {"leaderless", "w=1"},
	} {
		t.Run(tc.preset+"/"+tc.query, func(t *testing.T) {
			c := start(t, cluster.Config{Network: newNetwork(t), Preset: tc.preset, Node: node.Config{Replication: replication.Config{Delays: replication.Delays{Name: "custom", Apply: time.Millisecond}}}})
			cl := newClient(t)
			urls := c.URLs()
			var wg sync.WaitGroup
			stop := make(chan struct{})
			var regress atomic.Int64
			// Watchers: each replica's version must never go down.
			for _, u := range urls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var last uint64
					for n := 0; n < 10000; n++ {
						select {
						case <-stop:
							return
						default:
						}
						r := cl.localRead(u, "hot")
						if r.Status == http.StatusOK {
							if r.Version < last {
								regress.Add(1)
							}
							last = r.Version
						}
					}
				}()
			}
			var writers sync.WaitGroup
			var acked atomic.Int64
			for w := range 8 {
				writers.Add(1)
				go func() {
					defer writers.Done()
					target := urls[0]
					for i := range 25 {
						if tc.preset == "leaderless" {
							target = urls[(w+i)%len(urls)]
						}
						if r := cl.setQ(target, "hot", value(w*1000+i), tc.query); r.Status == http.StatusCreated {
							acked.Add(1)
						}
					}
				}()
			}
			writers.Wait()
			close(stop)
			wg.Wait()
			if acked.Load() != 8*25 {
				t.Fatalf("%d of %d writes acknowledged", acked.Load(), 8*25)
			}
			if n := regress.Load(); n > 0 {
				t.Fatalf("a replica's version went backwards %d times", n)
			}
			var final reply
			waitFor(t, 10*time.Second, "replicas to converge", func() bool {
				final = cl.localRead(urls[0], "hot")
				for _, u := range urls[1:] {
					r := cl.localRead(u, "hot")
					if r.Version != final.Version || r.Value != final.Value {
						return false
					}
				}
				return true
			})
			t.Logf("converged on %q v%d", final.Value, final.Version)
		})
	}
}

// A dead follower: a W=5 write fails with 503 within the request timeout,
// saying how many copies acknowledged; a W=3 write still succeeds; reads go
// on.
func TestDeadFollower(t *testing.T) {
	for _, delays := range []replication.Delays{replication.NoDelays(), scaled(0.1)} {
		t.Run(delays.String(), func(t *testing.T) {
			c := start(t, cluster.Config{Preset: "w5r1", Node: node.Config{Replication: replication.Config{Delays: delays, RetryFor: 200 * time.Millisecond}, Server: server.Config{RequestTimeout: 3 * time.Second}}})
			cl := newClient(t)
			urls := c.URLs()
			if err := c.Stop(3); err != nil {
				t.Fatalf("stop node4: %v", err)
			}
			r := cl.set(urls[0], "k", "v5")
			mustStatus(t, "W=5 with a dead follower", r, http.StatusServiceUnavailable)
			// The dead node refuses connections, so the write fails as
			// soon as W=5 is out of reach, well within the request
			// timeout. The cap only catches a write the timeout does not
			// bound; twice the timeout leaves a loaded machine room.
			if r.Elapsed > 2*3*time.Second {
				t.Fatalf("W=5 failure took %s, more than twice the 3s request timeout", r.Elapsed)
			}
			if r.Acks < 1 || r.Acks > 4 || !strings.Contains(r.Error, "of 5 required copies acknowledged") {
				t.Fatalf("503 body %q (acks %d) does not say how many of the 5 copies acknowledged", r.Error, r.Acks)
			}
			w3 := cl.setQ(urls[0], "k", "v3", "w=3")
			mustStatus(t, "W=3 with a dead follower", w3, http.StatusCreated)
			if g := cl.get(urls[1], "k"); g.Status != http.StatusOK {
				t.Fatalf("read from a live follower: %d", g.Status)
			}
		})
	}
}

// A hung follower (messages to it stall for a minute) never holds a client
// request past the timeouts (peer 300 ms, request 500 ms). The caps tell
// "bounded by the timeouts" from "waits for the hung peer" with seconds of
// headroom for a loaded machine, not a latency figure.
func TestHungFollowerBoundedByTimeout(t *testing.T) {
	faults := transport.NewFaults()
	c := start(t, cluster.Config{Preset: "w5r1", Faults: faults, Node: node.Config{Replication: replication.Config{PeerTimeout: 300 * time.Millisecond, RetryFor: 100 * time.Millisecond}, Server: server.Config{RequestTimeout: 500 * time.Millisecond}}})
	cl := newClient(t)
	urls := c.URLs()
	faults.Delay(c.Hosts()[2], time.Minute)
	r := cl.set(urls[0], "k", "v")
	mustStatus(t, "W=5 with a hung follower", r, http.StatusServiceUnavailable)
	const bounded = 5 * time.Second // 10x the request timeout, 1/12 of the hang
	if r.Elapsed > bounded {
		t.Fatalf("write with a hung follower took %s, more than %s", r.Elapsed, bounded)
	}
	if g := cl.getQ(urls[0], "k", "r=5"); g.Status != http.StatusServiceUnavailable || g.Elapsed > bounded {
		t.Fatalf("R=5 read with a hung follower: %d after %s, want 503 within %s", g.Status, g.Elapsed, bounded)
	}
	if g := cl.getQ(urls[0], "k", "r=4"); g.Status != http.StatusOK {
		t.Fatalf("R=4 read with one hung follower: %d (%s)", g.Status, g.Error)
	}
	faults.Heal()
	// Peers skip a node that failed for up to a second, unless a hint
	// delivery shows it answers again first.
	waitFor(t, 5*time.Second, "a W=5 write after healing", func() bool {
		return cl.set(urls[0], "k", "v2").Status == http.StatusCreated
	})
}

// A partitioned leaderless node misses writes while cut off and its peers'
// background retries bring it up to date once the partition heals.
func TestPartitionHealsByRetry(t *testing.T) {
	t.Parallel() // in-memory network: cheap, and no timing assertion
	faults := newNetwork(t)
	c := start(t, cluster.Config{Preset: "leaderless", Network: faults, Node: node.Config{Replication: replication.Config{RetryFor: 10 * time.Second}}})
	cl := newClient(t)
	urls, names := c.URLs(), ids(c)
	faults.Isolate(names[4])
	w := cl.setQ(urls[0], "k", "during-partition", "w=3")
	mustStatus(t, "W=3 write during partition", w, http.StatusCreated)
	if r := cl.localRead(urls[4], "k"); r.Status != http.StatusNotFound {
		t.Fatalf("isolated node already has the write: %d", r.Status)
	}
	faults.Heal()
	waitFor(t, 5*time.Second, "isolated node to catch up", func() bool { return converged(cl, urls, "k", w.Version) })
}

// Bad input against a real node: clear JSON errors with the right codes.
func TestBadInput(t *testing.T) {
	c := start(t, cluster.Config{Preset: "w5r1"})
	cl := newClient(t)
	u := c.URLs()[0]
	big := `{"key":"k","value":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"empty key", "POST", "/set", `{"key":"","value":"v"}`, 400},
		{"missing value", "POST", "/set", `{"key":"k"}`, 400},
		{"broken JSON", "POST", "/set", `{"key":`, 400},
		{"not an object", "POST", "/set", `[1,2]`, 400},
		{"oversized body", "POST", "/set", big, 413},
		{"long key", "POST", "/set", `{"key":"` + strings.Repeat("k", 2000) + `","value":""}`, 413},
		{"unknown path", "GET", "/nope", ``, 404},
		{"wrong method", "DELETE", "/set", ``, 405},
		{"get missing", "GET", "/get/missing", ``, 404},
		{"get empty key", "GET", "/get?key=", ``, 400},
		{"bad w", "POST", "/set?w=9", `{"key":"k","value":"v"}`, 400},
		{"bad config", "PUT", "/config", `{"w":6,"r":1}`, 400},
		{"empty value ok", "POST", "/set", `{"key":"k","value":""}`, 201},
	} {
		r := cl.do(tc.method, u+tc.path, []byte(tc.body))
		if r.Status != tc.want {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, r.Status, tc.want, r.Error)
		}
		if r.Status >= 400 && r.Error == "" {
			t.Errorf("%s: error response without an \"error\" field", tc.name)
		}
	}
}

// A follower redirects writes to the leader with 307; following it stores
// the value.
func TestFollowerRedirectsWrites(t *testing.T) {
	c := start(t, cluster.Config{Preset: "w5r1"})
	cl := newClient(t)
	urls := c.URLs()
	r := cl.setQ(urls[2], "k", "v", "w=5")
	mustStatus(t, "set on follower", r, http.StatusTemporaryRedirect)
	loc := r.Header.Get("Location")
	if loc != urls[0]+"/set?w=5" {
		t.Fatalf("Location %q, want %q", loc, urls[0]+"/set?w=5")
	}
	mustStatus(t, "set at Location", cl.do(http.MethodPost, loc, []byte(`{"key":"k","value":"v"}`)), http.StatusCreated)
}

// PUT /config changes W and R on every node: a follower redirects it to
// the leader, which commits it to the election's log.
func TestConfigClusterWide(t *testing.T) {
	c := start(t, cluster.Config{Preset: "w5r1"})
	cl := newClient(t)
	ctx := context.Background()
	leader := c.URLs()[c.Leader()]
	follower := c.URLs()[(c.Leader()+3)%5]
	_, err := cl.kv.SetConfig(ctx, 3, 3, kvclient.At(follower))
	if e, ok := errors.AsType[*kvclient.Error](err); !ok || e.Status != http.StatusTemporaryRedirect || e.Location != leader+"/config" {
		t.Fatalf("put config at a follower: %v, want 307 to %s/config", err, leader)
	}
	res, err := cl.kv.SetConfig(ctx, 3, 3, kvclient.At(leader))
	if err != nil || res.LogIndex == 0 {
		t.Fatalf("put config at the leader: %+v, %v", res, err)
	}
	// Committed to the election's log: every node applies it, followers
	// with the leader's next message.
	for _, u := range c.URLs() {
		waitFor(t, 5*time.Second, u+" applying w=3 r=3", func() bool {
			h, err := cl.kv.Health(ctx, kvclient.At(u))
			return err == nil && h.W == 3 && h.R == 3
		})
	}
	w := cl.set(c.URLs()[0], "k", "v")
	if w.Acks != 3 {
		t.Fatalf("write acknowledged with %d copies, want W=3", w.Acks)
	}
}

// With a cluster token, internal endpoints refuse callers without it while
// replication between nodes (which send it) works.
func TestClusterToken(t *testing.T) {
	c := start(t, cluster.Config{Preset: "w5r1", Node: node.Config{Server: server.Config{ClusterToken: "s3cret"}}})
	cl := newClient(t)
	u := c.URLs()[1]
	for _, p := range []struct{ method, path, body string }{
		{"POST", "/internal/replicate", `{"key":"k","value":"x","version":99}`},
		{"GET", "/internal/read?key=k", ``},
		{"PUT", "/config", `{"w":1}`},
	} {
		if r := cl.do(p.method, u+p.path, []byte(p.body)); r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s without token: %d, want 401", p.method, p.path, r.Status)
		}
	}
	mustStatus(t, "set with token-guarded replication", cl.set(c.URLs()[0], "k", "v"), http.StatusCreated)
	if r := cl.localRead(u, "k"); r.Value != "v" {
		t.Fatalf("follower has %q, want v", r.Value)
	}
}

// A dead leader is replaced: the survivors elect one of them, which
// redirects, answers writes it cannot replicate to W nodes with a quorum
// error, and accepts what it can; every survivor converges.
func TestDeadLeader(t *testing.T) {
	c := start(t, cluster.Config{Preset: "w5r1", Node: node.Config{Replication: replication.Config{PeerTimeout: 500 * time.Millisecond}}})
	cl := newClient(t)
	urls := c.URLs()
	mustStatus(t, "write before", cl.set(urls[0], "k", "v"), http.StatusCreated)
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	// The survivors elect a new leader by themselves (the bound is a hang
	// check, far above the default timings; the failover tests measure).
	li, err := c.WaitLeader(context.Background(), 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if li == 0 {
		t.Fatal("the dead node is still reported as the leader")
	}
	// W=5 cannot be met with four nodes: a quorum error, not a hang.
	r := cl.set(urls[li], "k", "v2")
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Error, "4 of 5") && !strings.Contains(r.Error, "quorum") {
		t.Fatalf("W=5 write with a node dead: %d %q", r.Status, r.Error)
	}
	mustStatus(t, "W=3 write at the new leader", cl.setQ(urls[li], "k", "v3", "w=3"), http.StatusCreated)
	other := 1 + (li % 4) // another survivor
	if other == li {
		other = 1 + (other % 4)
	}
	r = cl.set(urls[other], "k", "v4")
	if r.Status != http.StatusTemporaryRedirect || !strings.HasPrefix(r.Header.Get("Location"), urls[li]) {
		t.Fatalf("write at a follower: %d Location %q, want 307 to %s", r.Status, r.Header.Get("Location"), urls[li])
	}
	for _, u := range urls[1:] {
		waitFor(t, 5*time.Second, u+" holding the W=3 write", func() bool {
			g := cl.get(u, "k")
			return g.Status == http.StatusOK && g.Value == "v3"
		})
	}
}

// /metrics reports what the node did: requests by route and code,
// replication messages, read repairs and keys held.
func TestMetrics(t *testing.T) {
	faults := transport.NewFaults()
	c := start(t, cluster.Config{Preset: "leaderless", Faults: faults, Node: node.Config{Replication: replication.Config{DisableHintedHandoff: true}}})
	cl := newClient(t)
	urls := c.URLs()
	faults.Isolate(c.Hosts()[4])
	for i := range 5 {
		mustStatus(t, "write", cl.setQ(urls[0], "k"+value(i), "v", "w=3"), http.StatusCreated)
	}
	faults.Heal()
	mustStatus(t, "R=5 read", cl.getQ(urls[0], "kv0", "r=5"), http.StatusOK)
	resp, err := cl.hc.Get(urls[0] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`kvdb_http_requests_total{code="201",route="set"} 5`,
		`kvdb_read_repairs_total 1`,
		`kvdb_store_keys 5`,
		`kvdb_replication_messages_total{result="ok"}`,
		`kvdb_replication_messages_total{result="error"}`,
		`kvdb_replication_batch_size_bucket`,
		`kvdb_hints 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The nodes measure their messages' hops: under the paper profile scaled
// by 0.1 a replication message is applied 10 ms after it was sent (the
// apply delay), and a peer read reads its copy 5 ms after (the read
// delay); the way back takes neither.
func TestHopsMeasured(t *testing.T) {
	d, err := replication.ParseDelays("paper*0.1")
	if err != nil {
		t.Fatal(err)
	}
	c := start(t, cluster.Config{Preset: "w3r3", Node: node.Config{Replication: replication.Config{Delays: d}}})
	cl := newClient(t)
	urls := c.URLs()
	for i := range 3 {
		mustStatus(t, "write", cl.set(urls[0], "k"+value(i), "v"), http.StatusCreated)
		mustStatus(t, "read", cl.getQ(urls[0], "k"+value(i), "r=3"), http.StatusOK)
	}
	rec := c.Nodes()[0].Hops()
	check := func(k hops.Kind, lo, hi time.Duration) {
		t.Helper()
		s := rec.Samples(k)
		if len(s) == 0 {
			t.Fatalf("no %s samples", k)
		}
		for _, x := range s {
			if x < lo || x > hi {
				t.Fatalf("%s hop %v outside [%v, %v]", k, x, lo, hi)
			}
		}
	}
	check(hops.Write, 10*time.Millisecond, time.Second)
	check(hops.Ack, 0, time.Second)
	check(hops.Read, 5*time.Millisecond, time.Second)
	check(hops.Response, 0, time.Second)
}
