package transport_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/errcode"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/store"
	"github.com/kvdb/kvdb/internal/transport"
)

// fakeReplica is a node's replica side: a map, a ready flag and an
// optional hook that runs inside every apply (to hold a call open).
type fakeReplica struct {
	mu      sync.Mutex
	m       map[string]store.Entry
	ready   bool
	w, r    int
	onApply func(ctx context.Context) error
}

func newFake() *fakeReplica { return &fakeReplica{m: map[string]store.Entry{}, ready: true} }

func (f *fakeReplica) ApplyReplica(ctx context.Context, u replication.Update) error {
	return f.ApplyReplicas(ctx, []replication.Update{u})
}

func (f *fakeReplica) ApplyReplicas(ctx context.Context, us []replication.Update) error {
	f.mu.Lock()
	hook := f.onApply
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range us {
		if u.Version > 1<<60 {
			return fmt.Errorf("%w: version %d", replication.ErrInvalid, u.Version)
		}
		if e, ok := f.m[u.Key]; !ok || e.Version < u.Version {
			f.m[u.Key] = store.Entry{Value: u.Value, Version: u.Version}
		}
	}
	return nil
}

func (f *fakeReplica) ReadReplica(ctx context.Context, key string) (store.Entry, bool, error) {
	if !f.Ready() {
		return store.Entry{}, false, replication.ErrNotReady
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[key]
	return e, ok, nil
}

func (f *fakeReplica) SetQuorum(w, r int) error {
	if w < 1 || r < 1 {
		return fmt.Errorf("%w: w=%d r=%d", replication.ErrInvalid, w, r)
	}
	f.mu.Lock()
	f.w, f.r = w, r
	f.mu.Unlock()
	return nil
}

func (f *fakeReplica) Snapshot(_ uint64, fn func(replication.Update) error) error {
	f.mu.Lock()
	var us []replication.Update
	for k, e := range f.m {
		us = append(us, replication.Update{Key: k, Value: e.Value, Version: e.Version})
	}
	f.mu.Unlock()
	for _, u := range us {
		if err := fn(u); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeReplica) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

// setOnApply sets the apply hook while calls may be running.
func (f *fakeReplica) setOnApply(fn func(ctx context.Context) error) {
	f.mu.Lock()
	f.onApply = fn
	f.mu.Unlock()
}

// quorum returns the W and R last set.
func (f *fakeReplica) quorum() (w, r int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w, f.r
}

func (f *fakeReplica) setReady(b bool) {
	f.mu.Lock()
	f.ready = b
	f.mu.Unlock()
}

var members = []replication.Member{{ID: "a"}, {ID: "b"}, {ID: "c"}}

// network registers a fake replica for every member.
func network(t *testing.T) (*transport.InmemNetwork, map[string]*fakeReplica) {
	t.Helper()
	n := transport.NewInmemNetwork(1)
	reps := map[string]*fakeReplica{}
	for _, m := range members {
		reps[m.ID] = newFake()
		n.Register(m.ID, reps[m.ID])
	}
	return n, reps
}

func TestInmemPeers(t *testing.T) {
	n, _ := network(t)
	peers, err := n.Peers("b", members)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range peers {
		ids = append(ids, p.ID())
	}
	if fmt.Sprint(ids) != "[a c]" {
		t.Fatalf("peers of b: %v, want [a c]", ids)
	}
	if _, err := n.Peers("z", members); err == nil {
		t.Fatal("Peers of a node that is not a member: no error")
	}
}

// Every call reaches the target's replica side and carries its answer back.
func TestInmemCalls(t *testing.T) {
	n, reps := network(t)
	ctx := context.Background()
	p := n.Peer("a", "b")
	if err := p.Replicate(ctx, replication.Update{Key: "k", Value: "v1", Version: 1}); err != nil {
		t.Fatal(err)
	}
	us := []replication.Update{{Key: "k", Value: "v2", Version: 2}, {Key: "j", Value: "", Version: 3}}
	if err := p.ReplicateBatch(ctx, us); err != nil {
		t.Fatal(err)
	}
	us[0].Value = "changed by the sender afterwards"
	e, ok, err := p.Read(ctx, "k")
	if err != nil || !ok || e.Value != "v2" || e.Version != 2 {
		t.Fatalf("read k: %+v %v %v, want v2 at version 2", e, ok, err)
	}
	if _, ok, err := p.Read(ctx, "missing"); err != nil || ok {
		t.Fatalf("read of a missing key: found=%v err=%v", ok, err)
	}
	if err := p.SetQuorum(ctx, 2, 2); err != nil || reps["b"].w != 2 {
		t.Fatalf("set quorum: %v (w=%d)", err, reps["b"].w)
	}
	got := map[string]string{}
	if err := p.Snapshot(ctx, 0, func(u replication.Update) error { got[u.Key] = u.Value; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["k"] != "v2" || got["j"] != "" {
		t.Fatalf("snapshot: %v", got)
	}
	if err := p.Probe(ctx); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if e, _, _ := n.Peer("c", "a").Read(ctx, "k"); e.Version != 0 {
		t.Fatalf("node a got b's update: %+v", e)
	}
}

// Errors match what the HTTP peer's errors match: the peer states
// (ErrNotReady for a node catching up, ErrStorage), ErrRefused for what the
// target refuses (a 4xx over HTTP), and never a sentinel about the request
// such as ErrInvalid.
func TestInmemRemoteErrors(t *testing.T) {
	n, reps := network(t)
	ctx := context.Background()
	p := n.Peer("a", "b")
	reps["b"].setReady(false)
	for what, err := range map[string]error{
		"probe":    p.Probe(ctx),
		"snapshot": p.Snapshot(ctx, 0, func(replication.Update) error { return nil }),
		"read":     func() error { _, _, err := p.Read(ctx, "k"); return err }(),
	} {
		if !errors.Is(err, replication.ErrNotReady) {
			t.Errorf("%s of a node catching up: %v, want ErrNotReady", what, err)
		}
	}
	reps["b"].setReady(true)
	for what, tc := range map[string]struct {
		err error
	}{
		"version over the target's limit": {p.Replicate(ctx, replication.Update{Key: "k", Version: 1 << 61})},
		"invalid quorum":                  {p.SetQuorum(ctx, 0, 1)},
		"no version":                      {p.Replicate(ctx, replication.Update{Key: "k"})},
		"no key":                          {p.ReplicateBatch(ctx, []replication.Update{{Version: 1}})},
		"invalid UTF-8":                   {p.Replicate(ctx, replication.Update{Key: "k", Value: "\xff", Version: 1})},
	} {
		err := tc.err
		if !errors.Is(err, replication.ErrRefused) || errors.Is(err, replication.ErrInvalid) {
			t.Errorf("%s: %v, want a refusal that is not ErrInvalid", what, err)
		}
		if errors.Is(err, replication.ErrNotReady) || errors.Is(err, replication.ErrStorage) {
			t.Errorf("%s: %v matches a sentinel it is not", what, err)
		}
		if _, ok := errors.AsType[*transport.RemoteError](err); !ok {
			t.Errorf("%s: %T, want *RemoteError", what, err)
		}
	}
	// A storage failure matches ErrStorage, as its storage_failure code
	// does over HTTP, and is no refusal: the coordinator retries it.
	reps["b"].onApply = func(context.Context) error { return fmt.Errorf("%w: disk full", replication.ErrStorage) }
	if err := p.Replicate(ctx, replication.Update{Key: "s", Version: 1}); !errors.Is(err, replication.ErrStorage) || errors.Is(err, replication.ErrRefused) {
		t.Errorf("storage failure: %v, want ErrStorage and no refusal", err)
	}
	reps["b"].onApply = nil
	// An error the snapshot's consumer returns comes back as it is.
	mine := errors.New("consumer stops")
	if err := p.Snapshot(ctx, 0, func(replication.Update) error { return mine }); err != nil {
		t.Fatalf("snapshot of an empty node: %v", err)
	}
	_ = p.Replicate(ctx, replication.Update{Key: "k", Version: 1})
	if err := p.Snapshot(ctx, 0, func(replication.Update) error { return mine }); err != mine {
		t.Fatalf("snapshot whose consumer fails: %v, want the consumer's error itself", err)
	}
}

// Links are directed: Disconnect and Connect act on one direction,
// Partition on both, Isolate on every link of a node, DisconnectAll on
// every link from one, Heal on all.
func TestInmemFaults(t *testing.T) {
	n, _ := network(t)
	ctx := context.Background()
	reach := func(from, to string) bool {
		err := n.Peer(from, to).Probe(ctx)
		if err != nil && !errors.Is(err, transport.ErrDropped) {
			t.Fatalf("%s -> %s: %v, want nil or ErrDropped", from, to, err)
		}
		return err == nil
	}
	check := func(what string, want map[[2]string]bool) {
		t.Helper()
		for _, a := range members {
			for _, b := range members {
				if a == b {
					continue
				}
				link := [2]string{a.ID, b.ID}
				if got := reach(a.ID, b.ID); got == want[link] {
					t.Errorf("%s: %s -> %s reachable=%v, want %v", what, a.ID, b.ID, got, !got)
				}
			}
		}
	}
	// check takes the set of cut links.
	check("healthy", nil)
	n.Disconnect("a", "b")
	check("disconnect a->b", map[[2]string]bool{{"a", "b"}: true})
	n.Connect("a", "b")
	check("connect a->b", nil)
	n.Partition("a", "c")
	check("partition a|c", map[[2]string]bool{{"a", "c"}: true, {"c", "a"}: true})
	n.Heal()
	n.Isolate("b")
	check("isolate b", map[[2]string]bool{{"a", "b"}: true, {"b", "a"}: true, {"b", "c"}: true, {"c", "b"}: true})
	n.Heal()
	n.DisconnectAll("c")
	check("disconnect all from c", map[[2]string]bool{{"c", "a"}: true, {"c", "b"}: true})
	n.Heal()
	n.Drop("a", 1)
	check("drop every call to a", map[[2]string]bool{{"b", "a"}: true, {"c", "a"}: true})
	n.Drop("a", 0)
	check("drop removed", nil)
}

// A delay holds each call to the node for its duration, unless the
// caller's context ends first.
func TestInmemDelay(t *testing.T) {
	n, _ := network(t)
	n.Delay("b", 30*time.Millisecond)
	start := time.Now()
	if err := n.Peer("a", "b").Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("delayed call answered after %v, want at least 30ms", d)
	}
	if err := n.Peer("b", "a").Probe(context.Background()); err != nil {
		t.Fatalf("calls from the delayed node: %v", err)
	}
	n.Delay("b", time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := n.Peer("a", "b").Probe(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call delayed past its deadline: %v, want DeadlineExceeded", err)
	}
	n.Heal()
	if err := n.Peer("a", "b").Probe(context.Background()); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

// An unregistered node is unreachable; a call it was serving when it went
// away fails (its context is cancelled) even if the replica side would
// have finished it; a new registration replaces the old.
func TestInmemUnregister(t *testing.T) {
	n, reps := network(t)
	ctx := context.Background()
	p := n.Peer("a", "b")
	entered := make(chan struct{})
	reps["b"].onApply = func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return nil // the replica side ignores the cancellation
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Replicate(ctx, replication.Update{Key: "k", Value: "v", Version: 1}) }()
	<-entered
	n.Unregister("b")
	if err := <-errc; !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("call in progress when the node went away: %v, want ErrUnreachable", err)
	}
	if err := p.Probe(ctx); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("call to an unregistered node: %v, want ErrUnreachable", err)
	}
	restarted := newFake()
	n.Register("b", restarted)
	if err := p.Replicate(ctx, replication.Update{Key: "k", Value: "w", Version: 2}); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := p.Read(ctx, "k"); e.Value != "w" {
		t.Fatalf("restarted node holds %+v", e)
	}
	if len(restarted.m) != 1 {
		t.Fatalf("the restarted node's replica side did not get the call: %v", restarted.m)
	}
}

// The caller's cancellation reaches the replica side, and the error says
// so.
func TestInmemCallerCancels(t *testing.T) {
	n, reps := network(t)
	ctx, cancel := context.WithCancel(context.Background())
	reps["c"].onApply = func(ctx context.Context) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	err := n.Peer("a", "c").Replicate(ctx, replication.Update{Key: "k", Version: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v, want context.Canceled", err)
	}
	if err := n.Peer("a", "c").Probe(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("call with a cancelled context: %v, want context.Canceled", err)
	}
}

var _ replication.Peer = (*transport.InmemPeer)(nil)

// A RemoteError matches exactly what the StatusError of the same answer
// over HTTP matches, for every error that has a machine code: the
// coordinator cannot tell the transports apart.
func TestInmemErrorsMatchHTTP(t *testing.T) {
	targets := []error{replication.ErrRefused}
	for _, code := range errcode.Codes() {
		targets = append(targets, errcode.Sentinel(code))
	}
	for _, code := range errcode.Codes() {
		sentinel := errcode.Sentinel(code)
		status := 503
		switch sentinel {
		case replication.ErrInvalid:
			status = 400
		case replication.ErrStaleTerm:
			status = 409
		}
		remote := &transport.RemoteError{Op: "read", Err: fmt.Errorf("wrapped: %w", sentinel)}
		wire := &transport.StatusError{Code: status, ErrCode: code, Msg: sentinel.Error()}
		for _, target := range targets {
			if got, want := errors.Is(remote, target), errors.Is(wire, target); got != want {
				t.Errorf("code %s: in memory matches %v: %v, over HTTP: %v", code, target, got, want)
			}
		}
	}
}
