package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kvclient "github.com/kvdb/kvdb/client"
)

// client is the tests' client: requests go through the public client
// (kvclient), one attempt each, never following redirects, every attempt
// bounded by a client-side timeout; do sends raw requests.
type client struct {
	hc *http.Client
	kv *kvclient.Client
}

func newClient(t *testing.T, timeout time.Duration) *client {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	kv, err := kvclient.New(kvclient.Config{HTTPClient: hc, MaxRedirects: -1, Retry: kvclient.NoRetry()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return &client{hc: hc, kv: kv}
}

// reply is one answer (or transport error) and how long it took.
type reply struct {
	Status   int           `json:"-"`
	Key      string        `json:"key"`
	Value    string        `json:"value"`
	Version  uint64        `json:"version"`
	Node     string        `json:"node"`
	Acks     int           `json:"acks"`
	Error    string        `json:"error"`
	Location string        `json:"-"`
	Err      error         `json:"-"`
	Elapsed  time.Duration `json:"-"`
}

func (c *client) do(method, u string, body []byte) reply {
	start := time.Now()
	req, err := http.NewRequestWithContext(context.Background(), method, u, bytes.NewReader(body))
	if err != nil {
		return reply{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{Err: err, Elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r := reply{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Err: err}
	if len(raw) > 0 && err == nil {
		if jerr := json.Unmarshal(raw, &r); jerr != nil {
			r.Err = fmt.Errorf("status %d, body not JSON: %q", resp.StatusCode, raw)
		}
	}
	r.Elapsed = time.Since(start)
	return r
}

// answer completes ok, the reply to a call that started at start, from
// the call's error: an answer's status, text, acks and Location, or a
// transport failure in Err.
func answer(start time.Time, ok reply, err error) reply {
	elapsed := time.Since(start)
	if err == nil {
		ok.Elapsed = elapsed
		return ok
	}
	e, isAnswer := errors.AsType[*kvclient.Error](err)
	if !isAnswer {
		return reply{Err: err, Elapsed: elapsed}
	}
	r := reply{Status: e.Status, Error: e.Message, Acks: e.Acks, Location: e.Location, Elapsed: elapsed}
	if e.Code == kvclient.CodeBadResponse {
		r.Err = err
	}
	return r
}

// set writes through base with ?w=w (0: the node's W).
func (c *client) set(base, key, value string, w int) reply {
	start := time.Now()
	res, err := c.kv.Set(context.Background(), key, value, kvclient.At(base), kvclient.WithW(w))
	return answer(start, reply{Status: http.StatusCreated, Key: res.Key, Version: res.Version, Node: res.Node, Acks: res.Acks}, err)
}

// get reads through base with ?r=r (0: the node's R).
func (c *client) get(base, key string, r int) reply {
	start := time.Now()
	res, err := c.kv.Get(context.Background(), key, kvclient.At(base), kvclient.WithR(r))
	return answer(start, reply{Status: http.StatusOK, Key: res.Key, Value: res.Value, Version: res.Version, Node: res.Node}, err)
}

func (c *client) localRead(base, key string) reply {
	start := time.Now()
	res, err := c.kv.LocalRead(context.Background(), key, kvclient.At(base))
	return answer(start, reply{Status: http.StatusOK, Key: res.Key, Value: res.Value, Version: res.Version, Node: res.Node}, err)
}

// opKind names one kind of request of a load phase.
type opKind struct {
	Op string // "set" or "get"
	Q  int    // ?w= or ?r= override, 0 for the node's default
}

func (k opKind) String() string {
	switch {
	case k.Q == 0:
		return k.Op
	case k.Op == "set":
		return fmt.Sprintf("set?w=%d", k.Q)
	default:
		return fmt.Sprintf("get?r=%d", k.Q)
	}
}

// result is one request of a load phase.
type result struct {
	Kind opKind
	Node string
	Key  string
	reply
}

// outcome is "201", "503", "error: ..." and so on.
func (r result) outcome() string {
	if r.Err != nil {
		return "transport-error"
	}
	return fmt.Sprint(r.Status)
}

// ack is the newest acknowledged write of a key.
type ack struct {
	Value   string
	Version uint64
	Phase   string
}

// workload is the bounded client load a fault test runs: writes of unique
// keys plus overwrites of a few hot keys, and reads of acknowledged keys,
// each sent to a node chosen from the phase's targets.
type workload struct {
	c       *cluster
	name    string
	seq     atomic.Int64
	mu      sync.Mutex
	acked   map[string]ack  // key -> newest acknowledged write
	written map[string]bool // every key a write was attempted on
	keys    []string        // acknowledged keys, for reads
}

func newWorkload(c *cluster) *workload {
	return &workload{c: c, name: c.id, acked: map[string]ack{}, written: map[string]bool{}}
}

// phase is one stretch of load.
type phase struct {
	Name     string
	Duration time.Duration // stop scheduling after this
	MaxOps   int           // and after this many requests
	Workers  int           // concurrent clients (default 4)
	Pace     time.Duration // pause between one worker's requests (default 10ms)
	// Writes are sent to WriteTo with these kinds, reads to ReadFrom.
	WriteTo  []*node
	ReadFrom []*node
	Writes   []opKind // chosen round robin; empty: no writes
	Reads    []opKind // empty: no reads
}

// phaseStats summarises one phase.
type phaseStats struct {
	Name    string
	Results []result
}

// run runs p to completion: every request bounded by the client timeout,
// the phase by Duration and MaxOps.
func (w *workload) run(p phase) *phaseStats {
	if p.Workers == 0 {
		p.Workers = 4
	}
	if p.Pace == 0 {
		p.Pace = 10 * time.Millisecond
	}
	cl := w.c.client
	st := &phaseStats{Name: p.Name}
	var mu sync.Mutex
	var n atomic.Int64
	deadline := time.Now().Add(p.Duration)
	var wg sync.WaitGroup
	for wi := range p.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(wi)))
			writes, reads := wi, wi // round robin over the kinds, offset per worker
			for i := 0; ; i++ {
				if time.Now().After(deadline) || n.Add(1) > int64(p.MaxOps) {
					return
				}
				var res result
				write := len(p.Writes) > 0 && (len(p.Reads) == 0 || i%2 == 0)
				if !write {
					var ok bool
					if res, ok = w.read(cl, p, rng, reads); ok {
						reads++
					} else {
						write = len(p.Writes) > 0 // nothing acknowledged to read yet
					}
				}
				if write {
					res = w.write(cl, p, rng, writes)
					writes++
				}
				if res.Kind.Op == "" {
					return
				}
				mu.Lock()
				st.Results = append(st.Results, res)
				mu.Unlock()
				time.Sleep(p.Pace)
			}
		}()
	}
	wg.Wait()
	w.c.t.Logf("phase %q: %s", p.Name, st.summary())
	return st
}

func (w *workload) write(cl *client, p phase, rng *rand.Rand, i int) result {
	kind := p.Writes[i%len(p.Writes)]
	nd := p.WriteTo[rng.IntN(len(p.WriteTo))]
	seq := w.seq.Add(1)
	key := fmt.Sprintf("%s-k%05d", w.name, seq)
	if rng.IntN(5) == 0 {
		key = fmt.Sprintf("%s-hot%d", w.name, rng.IntN(4)) // overwrites
	}
	value := fmt.Sprintf("v%d-%s", seq, p.Name)
	w.mu.Lock()
	w.written[key] = true
	w.mu.Unlock()
	r := cl.set(nd.URL, key, value, kind.Q)
	if r.Err == nil && r.Status == http.StatusCreated {
		w.mu.Lock()
		if a, ok := w.acked[key]; !ok || r.Version > a.Version {
			if !ok {
				w.keys = append(w.keys, key)
			}
			w.acked[key] = ack{Value: value, Version: r.Version, Phase: p.Name}
		}
		w.mu.Unlock()
	}
	return result{Kind: kind, Node: nd.ID, Key: key, reply: r}
}

func (w *workload) read(cl *client, p phase, rng *rand.Rand, i int) (result, bool) {
	if len(p.Reads) == 0 {
		return result{}, false
	}
	w.mu.Lock()
	if len(w.keys) == 0 {
		w.mu.Unlock()
		return result{}, false
	}
	key := w.keys[rng.IntN(len(w.keys))]
	w.mu.Unlock()
	kind := p.Reads[i%len(p.Reads)]
	nd := p.ReadFrom[rng.IntN(len(p.ReadFrom))]
	return result{Kind: kind, Node: nd.ID, Key: key, reply: cl.get(nd.URL, key, kind.Q)}, true
}

// byKind groups results by request kind.
func (s *phaseStats) byKind() map[string][]result {
	m := map[string][]result{}
	for _, r := range s.Results {
		m[r.Kind.String()] = append(m[r.Kind.String()], r)
	}
	return m
}

// summary is e.g. `set: n=120 {201:120} p50=3ms p99=9ms max=12ms; get: ...`.
func (s *phaseStats) summary() string {
	kinds := s.byKind()
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s: %s", k, describe(kinds[k])))
	}
	return strings.Join(parts, "; ")
}

// describe is `n=120 {201:118 503:2} p50=3ms p99=9ms max=12ms`.
func describe(rs []result) string {
	counts := map[string]int{}
	var lat []time.Duration
	for _, r := range rs {
		counts[r.outcome()]++
		lat = append(lat, r.Elapsed)
	}
	outs := make([]string, 0, len(counts))
	for o, n := range counts {
		outs = append(outs, fmt.Sprintf("%s:%d", o, n))
	}
	sort.Strings(outs)
	return fmt.Sprintf("n=%d {%s} p50=%v p99=%v max=%v", len(rs), strings.Join(outs, " "),
		pct(lat, 0.50), pct(lat, 0.99), pct(lat, 1))
}

// pct is the q-quantile of d (nearest rank), rounded for printing.
func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return s[i].Round(100 * time.Microsecond)
}

// expect checks that every result of kind has one of the wanted statuses
// and finished within maxLatency; it returns the results checked.
func (s *phaseStats) expect(t *testing.T, kind string, maxLatency time.Duration, statuses ...int) []result {
	t.Helper()
	rs := s.byKind()[kind]
	if len(rs) == 0 {
		t.Errorf("phase %q: no %s requests were sent", s.Name, kind)
	}
	bad := 0
	for _, r := range rs {
		ok := r.Err == nil && slices.Contains(statuses, r.Status)
		if !ok || r.Elapsed > maxLatency {
			if bad < 5 {
				t.Errorf("phase %q: %s %s on %s: status %d err %v error %q after %v (want status %v within %v)",
					s.Name, kind, r.Key, r.Node, r.Status, r.Err, r.Error, r.Elapsed, statuses, maxLatency)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("phase %q: %d of %d %s requests were off", s.Name, bad, len(rs), kind)
	}
	return rs
}

// checkAcked reads every acknowledged key from each of the nodes with a
// quorum read (R=r, 0 for the node's default): it must be found, at the
// acknowledged version or a newer one. It returns how many reads passed.
func (w *workload) checkAcked(t *testing.T, r int, nodes ...*node) (ok, total int) {
	t.Helper()
	w.mu.Lock()
	acked := make(map[string]ack, len(w.acked))
	for k, a := range w.acked {
		acked[k] = a
	}
	w.mu.Unlock()
	var mu sync.Mutex
	var failures []string
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, n := range nodes {
		for key, a := range acked {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				rep := w.c.client.get(n.URL, key, r)
				good := rep.Err == nil && rep.Status == http.StatusOK && rep.Version >= a.Version &&
					(rep.Version > a.Version || rep.Value == a.Value)
				mu.Lock()
				defer mu.Unlock()
				total++
				if good {
					ok++
				} else {
					failures = append(failures, fmt.Sprintf("%s on %s: status %d v%d %q err %v (acked v%d %q in %s)",
						key, n.ID, rep.Status, rep.Version, rep.Value, rep.Err, a.Version, a.Value, a.Phase))
				}
			}()
		}
	}
	wg.Wait()
	sort.Strings(failures)
	for i, f := range failures {
		if i == 10 {
			t.Errorf("... and %d more", len(failures)-10)
			break
		}
		t.Errorf("acknowledged write not readable: %s", f)
	}
	return ok, total
}

// heldBy counts the acknowledged keys n holds a copy of.
func (w *workload) heldBy(n *node) int {
	w.mu.Lock()
	keys := make([]string, 0, len(w.acked))
	for k := range w.acked {
		keys = append(keys, k)
	}
	w.mu.Unlock()
	held := 0
	for _, k := range keys {
		if r := w.c.client.localRead(n.URL, k); r.Err == nil && r.Status == http.StatusOK {
			held++
		}
	}
	return held
}

// ackedCount is the number of keys with an acknowledged write.
func (w *workload) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// awaitConvergence polls /local_read of every written key on the nodes
// until they all hold the same version (or all lack the key), within
// timeout, and fails the test if they do not. It returns how long that took.
func (w *workload) awaitConvergence(t *testing.T, timeout time.Duration, nodes ...*node) time.Duration {
	t.Helper()
	d, diverged, all := w.converge(timeout, nodes...)
	if len(diverged) == 0 {
		t.Logf("replicas %s converged on all %d written keys in %v", ids(nodes), all, d.Round(time.Millisecond))
		return d
	}
	for i, d := range diverged {
		if i == 10 {
			break
		}
		t.Errorf("not converged after %v: %s", timeout, d)
	}
	t.Fatalf("%d of %d keys still differ between %s after %v", len(diverged), all, ids(nodes), timeout)
	return d
}

// converge polls /local_read of every written key on the nodes until they
// all hold the same version (or all lack the key), or timeout passes. It
// returns how long it waited, the keys that still differ (none once
// converged) and how many keys it checked.
func (w *workload) converge(timeout time.Duration, nodes ...*node) (time.Duration, []divergence, int) {
	w.mu.Lock()
	keys := make([]string, 0, len(w.written))
	for k := range w.written {
		keys = append(keys, k)
	}
	w.mu.Unlock()
	sort.Strings(keys)
	all := len(keys)
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		diverged := w.diverged(keys, nodes)
		if len(diverged) == 0 || time.Now().After(deadline) {
			return time.Since(start), diverged, all
		}
		keys = keysOf(diverged)
		time.Sleep(200 * time.Millisecond)
	}
}

type divergence struct {
	key   string
	views []string
}

func (d divergence) String() string { return d.key + ": " + strings.Join(d.views, " ") }

func keysOf(ds []divergence) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.key
	}
	return out
}

// diverged returns the keys whose local copies differ between nodes. The
// keys that agree are final: replicas never go backwards, and no writes run
// while the tests check.
func (w *workload) diverged(keys []string, nodes []*node) []divergence {
	var mu sync.Mutex
	var out []divergence
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, key := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			views := make([]string, len(nodes))
			same := true
			for i, n := range nodes {
				r := w.c.client.localRead(n.URL, key)
				switch {
				case r.Err != nil:
					views[i] = n.ID + "=err"
				case r.Status == http.StatusOK:
					views[i] = fmt.Sprintf("%s=v%d", n.ID, r.Version)
				default:
					views[i] = fmt.Sprintf("%s=%d", n.ID, r.Status)
				}
				same = same && r.Err == nil && strings.SplitN(views[i], "=", 2)[1] == strings.SplitN(views[0], "=", 2)[1]
			}
			if !same {
				mu.Lock()
				out = append(out, divergence{key, views})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

func ids(nodes []*node) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.ID)
	}
	return strings.Join(s, ",")
}

// waitFor polls cond every 100ms until it is true or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}
