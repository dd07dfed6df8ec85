package transport

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Faults injects network faults between nodes in tests, in the manner of
// hashicorp/raft's in-memory transport: a link from one node to another can
// be cut (partition), slowed (delay) or made lossy (drop probability). Links
// are directed and named by the hosts (host:port) of the two nodes. The zero
// value is not usable; call NewFaults.
type Faults struct {
	mu      sync.Mutex
	cut     map[[2]string]bool
	delay   map[string]time.Duration // by destination host
	drop    map[string]float64       // by destination host
	isolate map[string]bool
}

// NewFaults returns a fault table with every link healthy.
func NewFaults() *Faults {
	return &Faults{cut: map[[2]string]bool{}, delay: map[string]time.Duration{}, drop: map[string]float64{}, isolate: map[string]bool{}}
}

// Partition cuts the links between a and b in both directions.
func (f *Faults) Partition(a, b string) {
	f.mu.Lock()
	f.cut[[2]string{a, b}], f.cut[[2]string{b, a}] = true, true
	f.mu.Unlock()
}

// Isolate cuts every link to and from host.
func (f *Faults) Isolate(host string) {
	f.mu.Lock()
	f.isolate[host] = true
	f.mu.Unlock()
}

// Delay makes every message to host wait d first.
func (f *Faults) Delay(host string, d time.Duration) {
	f.mu.Lock()
	f.delay[host] = d
	f.mu.Unlock()
}

// Drop makes messages to host fail with probability p.
func (f *Faults) Drop(host string, p float64) {
	f.mu.Lock()
	f.drop[host] = p
	f.mu.Unlock()
}

// Heal removes every fault.
func (f *Faults) Heal() {
	f.mu.Lock()
	clear(f.cut)
	clear(f.delay)
	clear(f.drop)
	clear(f.isolate)
	f.mu.Unlock()
}

// Wrap returns a wrapper for the transport of the node at host from.
func (f *Faults) Wrap(from string) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		return &faultyRT{f: f, from: from, next: next}
	}
}

type faultyRT struct {
	f    *Faults
	from string
	next http.RoundTripper
}

func (t *faultyRT) RoundTrip(req *http.Request) (*http.Response, error) {
	to := req.URL.Host
	t.f.mu.Lock()
	cut := t.f.cut[[2]string{t.from, to}] || t.f.isolate[t.from] || t.f.isolate[to]
	d, p := t.f.delay[to], t.f.drop[to]
	t.f.mu.Unlock()
	if cut || (p > 0 && rand.Float64() < p) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%s -> %s: %w", t.from, to, ErrDropped)
	}
	if d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-req.Context().Done():
			timer.Stop()
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, req.Context().Err()
		}
	}
	return t.next.RoundTrip(req)
}
