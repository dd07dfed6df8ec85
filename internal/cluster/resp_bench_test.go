package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
)

// BenchmarkRESP measures the RESP hot path of a 5-node cluster as kvdb
// bench drives it — one command in flight per connection, SETs on the
// leader, GETs spread over the nodes — with the allocations per command,
// so that `-memprofile` shows what each one allocates across all five
// nodes (replication and the peers' applies included).
func BenchmarkRESP(b *testing.B) {
	for _, tt := range []struct {
		preset string
		writes int // percent
	}{{"w5r1", 100}, {"w1r5", 100}, {"w1r5", 0}, {"w3r3", 50}} {
		b.Run(fmt.Sprintf("%s/%d%%writes", tt.preset, tt.writes), func(b *testing.B) {
			c, err := cluster.Start(context.Background(), cluster.Config{Preset: tt.preset, RESP: true, NoPause: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.Close(context.Background()) })
			leader, err := c.WaitLeader(b.Context(), 10*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			addrs := c.RESPAddrs()
			value := fmt.Sprintf("%0100d", 7)
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(8)
			before := schedLatencies()
			b.ResetTimer()
			defer func() {
				b.StopTimer()
				p50, p99 := schedLatencies().since(before)
				b.ReportMetric(p50*1e6, "sched-p50-µs")
				b.ReportMetric(p99*1e6, "sched-p99-µs")
			}()
			b.RunParallel(func(pb *testing.PB) {
				conns := make([]*respConn, len(addrs))
				for i, a := range addrs {
					rc, err := dialRESP(a)
					if err != nil {
						b.Error(err)
						return
					}
					defer rc.Close()
					conns[i] = rc
				}
				for pb.Next() {
					i := n.Add(1)
					key := fmt.Sprintf("key%08d", i%10000)
					var err error
					if int(i%100) < tt.writes {
						err = conns[leader].do("SET", key, value)
					} else {
						err = conns[i%int64(len(conns))].do("GET", key)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// schedHist is the runtime's histogram of how long goroutines waited to
// run after becoming runnable.
type schedHist struct{ h *metrics.Float64Histogram }

func schedLatencies() schedHist {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	return schedHist{s[0].Value.Float64Histogram()}
}

// since returns the median and 99th percentile of the waits after before.
func (h schedHist) since(before schedHist) (p50, p99 float64) {
	var total uint64
	counts := make([]uint64, len(h.h.Counts))
	for i := range counts {
		counts[i] = h.h.Counts[i] - before.h.Counts[i]
		total += counts[i]
	}
	at := func(q float64) float64 {
		want := uint64(q * float64(total))
		var n uint64
		for i, c := range counts {
			n += c
			if n > want {
				return h.h.Buckets[i+1]
			}
		}
		return 0
	}
	return at(0.5), at(0.99)
}

// respConn is a minimal RESP client: one command, one reply.
type respConn struct {
	net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func dialRESP(addr string) (*respConn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &respConn{Conn: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}, nil
}

// do sends args as a command and reads its reply (simple string, error,
// integer or bulk string; nil counts as a reply).
func (c *respConn) do(args ...string) error {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n%s\r\n", len(a), a)
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	switch line[0] {
	case '-':
		return fmt.Errorf("%s", line[1:len(line)-2])
	case '$':
		var n int
		if _, err := fmt.Sscanf(string(line[1:]), "%d", &n); err != nil {
			return err
		}
		if n >= 0 {
			if _, err := c.r.Discard(n + 2); err != nil {
				return err
			}
		}
	}
	return nil
}
