package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kvdb/kvdb/internal/cluster"
)

// benchCluster starts a delay-free cluster for a benchmark.
func benchCluster(b *testing.B, preset string) *cluster.Cluster {
	b.Helper()
	cfg := cluster.Config{Preset: preset}
	if p, ok := strings.CutSuffix(preset, "-nobatch"); ok {
		cfg.Preset, cfg.Node.Replication.DisableBatching = p, true
	}
	c, err := cluster.Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// BenchmarkSet measures a client write through the leader (or any node)
// with replication fanned out over loopback: the delay-free hot path.
func BenchmarkSet(b *testing.B) {
	for _, preset := range []string{"w5r1", "w5r1-nobatch", "w1r5", "leaderless", "leaderless-w3r3"} {
		b.Run(preset, func(b *testing.B) {
			c := benchCluster(b, preset)
			hc := cluster.Client()
			defer hc.CloseIdleConnections()
			urls := c.URLs()
			hammer(b, http.StatusCreated, func(i int64) (*http.Response, error) {
				target := urls[0]
				if strings.HasPrefix(preset, "leaderless") {
					target = urls[i%int64(len(urls))]
				}
				body := fmt.Appendf(nil, `{"key":"k%d","value":"%0100d"}`, i%1000, i)
				return hc.Post(target+"/set", "application/json", bytes.NewReader(body))
			})
		})
	}
}

// BenchmarkGet measures an R=1 read served from a node's own copy, an R=5
// read that fans out to every peer, and R=3 quorum reads (R+W>N) in both
// architectures.
func BenchmarkGet(b *testing.B) {
	for _, tt := range []struct{ preset, r string }{{"w5r1", "r=1"}, {"w5r1", "r=5"}, {"w3r3", "r=3"}, {"leaderless-w3r3", "r=3"}} {
		preset, r := tt.preset, tt.r
		b.Run(preset+"/"+r, func(b *testing.B) {
			c := benchCluster(b, preset)
			hc := cluster.Client()
			defer hc.CloseIdleConnections()
			urls := c.URLs()
			for i := range 1000 {
				resp, err := hc.Post(urls[0]+"/set", "application/json", bytes.NewReader(fmt.Appendf(nil, `{"key":"k%d","value":"%0100d"}`, i, i)))
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
			hammer(b, http.StatusOK, func(i int64) (*http.Response, error) {
				return hc.Get(fmt.Sprintf("%s/get/k%d?%s", urls[i%5], i%1000, r))
			})
		})
	}
}

// hammer runs do from four goroutines per CPU for b.N requests in all and
// fails on any status other than want.
func hammer(b *testing.B, want int, do func(i int64) (*http.Response, error)) {
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := do(n.Add(1))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Fatalf("status %d, want %d", resp.StatusCode, want)
			}
		}
	})
}
