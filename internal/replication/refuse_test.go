package replication

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// refuseKey makes p refuse every update of key permanently.
func (p *fakePeer) refuseKey(key string) {
	p.mu.Lock()
	p.refuse = func(u Update) bool { return u.Key == key }
	p.mu.Unlock()
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// An update a peer refuses permanently never holds back the others: in a
// batch (the write path) or among hints (a peer that comes back), the rest
// are delivered, the refused one is dropped — counted, logged once, not
// retried and not left in the hint outbox — and the peer is not marked
// as failed.
func TestRefusedUpdateDoesNotBlockOthers(t *testing.T) {
	for _, path := range []string{"batched writes", "single writes", "hints"} {
		t.Run(path, func(t *testing.T) {
			logs := &syncBuffer{}
			tc := newTestCluster(t, 3, func(c *Config) {
				c.W, c.RetryFor = 2, time.Minute
				c.DisableBatching = path == "single writes"
				c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			})
			picky, other := tc.peer("n2"), tc.peer("n3")
			picky.refuseKey("bad")
			if path == "hints" {
				picky.setMode(peerFail) // everything becomes a hint first
			}
			keys := []string{"bad"}
			for i := range 40 {
				keys = append(keys, fmt.Sprintf("k%d", i))
			}
			// Concurrent writes, so that the write path batches them.
			var wg sync.WaitGroup
			versions := make([]uint64, len(keys))
			for i, k := range keys {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := tc.rep.Write(bg(), k, strings.Repeat("v", i), Options{})
					if err != nil {
						t.Errorf("write %s: %v", k, err)
					}
					versions[i] = res.Version
				}()
			}
			wg.Wait()
			if path == "hints" {
				waitFor(t, "every update hinted for the down peer", func() bool { return tc.rep.Hints() == len(keys) })
				picky.setMode(peerOK)
			}
			for i, k := range keys[1:] {
				waitFor(t, "the other updates delivered to the picky peer", allHave(k, versions[i+1], picky, other))
			}
			waitFor(t, "the refused update counted", func() bool { return counterValue(tc.core.met.refused) == 1 })
			waitFor(t, "no hint left", func() bool { return tc.rep.Hints() == 0 })
			if picky.version("bad") != 0 || other.version("bad") != versions[0] {
				t.Fatalf("bad: picky peer has version %d, other %d (want 0 and %d)", picky.version("bad"), other.version("bad"), versions[0])
			}
			offers := picky.offers("bad")

			// More traffic, a second refused key and the hint worker woken
			// again: the first refused update is never offered again, and
			// the refusals are logged once for the peer.
			picky.mu.Lock()
			picky.refuse = func(u Update) bool { return strings.HasPrefix(u.Key, "bad") }
			picky.mu.Unlock()
			res, err := tc.rep.Write(bg(), "bad2", "v", Options{})
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the second refusal counted", func() bool { return counterValue(tc.core.met.refused) == 2 })
			last, err := tc.rep.Write(bg(), "after", "v", Options{W: 3})
			if err != nil {
				t.Fatalf("a write needing the picky peer after refusals: %v (the peer must not be marked failed)", err)
			}
			waitFor(t, "later writes delivered", allHave("after", last.Version, picky))
			waitFor(t, "no hint left", func() bool { return tc.rep.Hints() == 0 })
			if got := picky.offers("bad"); got != offers {
				t.Fatalf("the refused update was offered again: %d messages, then %d", offers, got)
			}
			if other.version("bad2") != res.Version {
				t.Fatal("the healthy peer missed bad2")
			}
			if n := strings.Count(logs.String(), "peer refused an update permanently"); n != 1 {
				t.Fatalf("%d refusal log lines for one peer and status, want 1:\n%s", n, logs)
			}
			if !strings.Contains(logs.String(), "status=413") {
				t.Fatalf("the log does not give the status:\n%s", logs)
			}
		})
	}
}

// A message refused as a whole (say, too large together) is delivered in
// halves, with nothing dropped.
func TestRefusedBatchDeliveredInHalves(t *testing.T) {
	tc := newTestCluster(t, 2, func(c *Config) { c.W = 1 })
	p := tc.peer("n2")
	us := make([]Update, 16)
	for i := range us {
		us[i] = Update{Key: fmt.Sprintf("k%d", i), Value: "v", Version: uint64(i + 1)}
	}
	l := newLink(bigRefuser{p, 4}, 4)
	if errs := tc.core.deliver(l, us); errs != nil {
		t.Fatalf("deliver: %v", errs)
	}
	for _, u := range us {
		if p.version(u.Key) != u.Version {
			t.Fatalf("%s not delivered", u.Key)
		}
	}
	if got := counterValue(tc.core.met.refused); got != 0 {
		t.Fatalf("%v updates counted as refused, want 0", got)
	}
}

// bigRefuser refuses messages of more than max updates.
type bigRefuser struct {
	*fakePeer
	max int
}

func (b bigRefuser) ReplicateBatch(ctx context.Context, us []Update) error {
	if len(us) > b.max {
		return errFakeRefused{"batch"}
	}
	return b.fakePeer.ReplicateBatch(ctx, us)
}
