//go:build unix

package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/node"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

// The benchmarks here compare the two peer transports side by side in one
// run: "http" (one HTTP/1.1 request per node-to-node message) and "stream"
// (the replication stream), on delay-free five-node clusters over loopback.

var peerTransports = []string{node.PeerHTTP, node.PeerStream}

// cpuTime is the CPU time (user and system) the process has used: the
// cluster's and the load's, which share the process. Per operation it is
// what a busy machine disturbs least (wall time per operation depends on
// what else runs).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runParallel runs body like b.RunParallel and reports the CPU time per
// operation as cpu-µs/op.
func runParallel(b *testing.B, parallelism int, body func(*testing.PB)) {
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	start := cpuTime()
	b.RunParallel(body)
	b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}

func benchTransportCluster(b *testing.B, preset, peerTransport string) *cluster.Cluster {
	b.Helper()
	cfg := cluster.Config{Preset: preset}
	cfg.Node.PeerTransport = peerTransport
	patientElections(&cfg)
	c, err := cluster.Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// BenchmarkPeerCall measures one node-to-node message, a single update
// applied by a real node, from many goroutines at once.
func BenchmarkPeerCall(b *testing.B) {
	c := benchTransportCluster(b, "w5r1", node.PeerHTTP)
	target := c.URLs()[1]
	lim := transport.Limits{MaxKeyBytes: 1 << 10, MaxValueBytes: 1 << 20}
	value := strings.Repeat("x", 100)
	var n atomic.Uint64
	n.Store(1 << 40) // versions keep rising across runs (below the cluster's counter limit)
	// stream+wrap: with a pass-through StreamConfig.Wrap, the path every
	// in-process cluster (package cluster: its pause gates) takes.
	for _, pt := range append(peerTransports, node.PeerStream+"+wrap") {
		b.Run(pt, func(b *testing.B) {
			hc := transport.NewHTTPClient(5*time.Second, nil)
			defer hc.CloseIdleConnections()
			var p replication.Peer = transport.NewHTTPPeer("node2", target, "", hc, lim)
			if pt != node.PeerHTTP {
				var scfg transport.StreamConfig
				if strings.HasSuffix(pt, "+wrap") {
					scfg.Wrap = func(next http.RoundTripper) http.RoundTripper { return next }
				}
				sp, err := transport.NewStreamPeer(p.(*transport.HTTPPeer), scfg)
				if err != nil {
					b.Fatal(err)
				}
				defer sp.Close()
				for !sp.Connected() {
					_ = sp.Probe(context.Background())
					time.Sleep(time.Millisecond)
				}
				p = sp
			}
			runParallel(b, 8, func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					u := replication.Update{Key: fmt.Sprintf("k%d", i%1000), Value: value, Version: i}
					if err := p.Replicate(context.Background(), u); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkTransportWorkload runs client workloads through the HTTP API
// with each peer transport: w5r1 writes through the leader, w5r1 50/50
// (writes through the leader, R=1 reads on any node), leaderless W5R1
// writes on any node, and w3r3 quorum reads.
func BenchmarkTransportWorkload(b *testing.B) {
	for _, wl := range []string{"w5r1-set", "w5r1-50", "leaderless-set", "w3r3-get"} {
		for _, pt := range peerTransports {
			b.Run(wl+"/"+pt, func(b *testing.B) {
				preset, _, _ := strings.Cut(wl, "-")
				c := benchTransportCluster(b, preset, pt)
				hc := cluster.Client()
				defer hc.CloseIdleConnections()
				urls := c.URLs()
				set := func(target string, i int64) (*http.Response, error) {
					body := fmt.Appendf(nil, `{"key":"k%d","value":"%0100d"}`, i%1000, i)
					return hc.Post(target+"/set", "application/json", bytes.NewReader(body))
				}
				if strings.HasSuffix(wl, "-get") || strings.HasSuffix(wl, "-50") {
					for i := range int64(1000) {
						resp, err := set(urls[0], i)
						if err != nil {
							b.Fatal(err)
						}
						drainResp(resp)
					}
				}
				var n atomic.Int64
				runParallel(b, 4, func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						var resp *http.Response
						var err error
						want := http.StatusOK
						switch {
						case wl == "leaderless-set":
							want = http.StatusCreated
							resp, err = set(urls[i%int64(len(urls))], i)
						case strings.HasSuffix(wl, "-set"), wl == "w5r1-50" && i%2 == 0:
							want = http.StatusCreated
							resp, err = set(urls[0], i)
						default:
							resp, err = hc.Get(fmt.Sprintf("%s/get/k%d", urls[i%int64(len(urls))], i%1000))
						}
						if err != nil {
							b.Fatal(err)
						}
						if resp.StatusCode != want {
							body, _ := io.ReadAll(resp.Body)
							resp.Body.Close()
							b.Fatalf("status %d, want %d: %s", resp.StatusCode, want, body)
						}
						drainResp(resp)
					}
				})
			})
		}
	}
}

// patientElections keeps a loaded machine from deposing the leader
// mid-benchmark (a starved leader loses its lease: 503
// leader_unavailable). The first election waits longer for it.
func patientElections(cfg *cluster.Config) {
	ec := &cfg.Node.Election
	ec.HeartbeatTimeout, ec.ElectionTimeout, ec.LeaderLeaseTimeout = 5*time.Second, 5*time.Second, 5*time.Second
}
