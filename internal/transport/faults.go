package transport

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
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

// Dialer returns a dial function for the node at host from that obeys the
// faults as raft's connections need: a dial over a cut link fails, and a
// connection it opened fails its next read or write once the link is cut in
// either direction (one TCP connection carries both), so a partition cuts
// the election's long-lived connections too, not only new ones. Delays and
// drops are not applied to them.
func (f *Faults) Dialer(from string) func(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if f.linkCut(from, address) {
			return nil, fmt.Errorf("%s -> %s: %w", from, address, ErrDropped)
		}
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &faultyConn{Conn: c, f: f, from: from, to: address}, nil
	}
}

// linkCut reports whether either direction between a and b is cut.
func (f *Faults) linkCut(a, b string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cut[[2]string{a, b}] || f.cut[[2]string{b, a}] || f.isolate[a] || f.isolate[b]
}

// faultyConn is a connection that breaks once its link is cut.
type faultyConn struct {
	net.Conn
	f        *Faults
	from, to string
}

func (c *faultyConn) check() error {
	if c.f.linkCut(c.from, c.to) {
		c.Conn.Close()
		return fmt.Errorf("%s -> %s: %w", c.from, c.to, ErrDropped)
	}
	return nil
}

func (c *faultyConn) Read(p []byte) (int, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if err == nil {
		err = c.check()
	}
	return n, err
}

func (c *faultyConn) Write(p []byte) (int, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
