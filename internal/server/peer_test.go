package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

// updatesBody is a peer message carrying us.
func updatesBody(us ...replication.Update) string { return string(transport.EncodeUpdates(us)) }

// defaultLimits gives a test server the client API's default limits.
func defaultLimits(c *Config) { c.MaxKeyBytes, c.MaxValueBytes, c.MaxBodyBytes = 0, 0, 0 }

// The largest batch a sender may build is accepted: MaxBatchUpdates updates
// with keys at the limit, one of them with a value at the limit (of '<',
// which JSON made six times larger). One byte more in any of them, or a
// body over the limit, is refused with 413; a malformed one with 400.
func TestPeerLimitsAcceptLargestBatch(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	s := newTestServer(t, rep, defaultLimits)
	lim := s.cfg.PeerLimits()
	us := make([]replication.Update, replication.MaxBatchUpdates)
	for i := range us {
		us[i] = replication.Update{Key: fmt.Sprintf("%0*d", s.cfg.MaxKeyBytes, i), Version: ^uint64(0) - uint64(i)}
	}
	us[0].Value = strings.Repeat("<", s.cfg.MaxValueBytes)
	body := updatesBody(us...)
	t.Logf("largest batch: %d bytes, peer body limit %d", len(body), lim.MaxBodyBytes())
	if rec := do(s, request{method: "POST", target: transport.PathBatch, body: body}); rec.Code != http.StatusNoContent {
		t.Fatalf("largest batch: status %d (%s)", rec.Code, rec.Body.String())
	}
	if len(rep.applied) != len(us) {
		t.Fatalf("%d updates applied, want %d", len(rep.applied), len(us))
	}
	if e, _ := rep.LocalRead(us[0].Key); e.Value != us[0].Value {
		t.Fatalf("the large value arrived as %d bytes", len(e.Value))
	}

	over := func(mut func([]replication.Update) []replication.Update) string {
		cp := append([]replication.Update(nil), us...)
		return updatesBody(mut(cp)...)
	}
	for _, tt := range []struct {
		name string
		body string
		code int
	}{
		{"key one byte over", over(func(us []replication.Update) []replication.Update {
			us[1].Key += "k"
			return us
		}), 413},
		{"value one byte over", over(func(us []replication.Update) []replication.Update {
			us[0].Value += "<"
			return us
		}), 413},
		{"one update too many", over(func(us []replication.Update) []replication.Update {
			return append(us, replication.Update{Key: "k", Version: 1})
		}), 413},
		{"body over the limit", updatesBody(replication.Update{Key: "k", Value: strings.Repeat("v", int(lim.MaxBodyBytes())), Version: 1}), 413},
		{"truncated", body[:len(body)-1], 400},
		{"JSON", `[{"key":"k","value":"v","version":1}]`, 400},
		{"empty key", updatesBody(replication.Update{Value: "v", Version: 1}), 400},
		{"zero version", updatesBody(replication.Update{Key: "k", Value: "v"}), 400},
		{"invalid UTF-8", updatesBody(replication.Update{Key: "k", Value: "\xff", Version: 1}), 400},
	} {
		rec := do(s, request{method: "POST", target: transport.PathBatch, body: tt.body})
		wantError(t, rec, tt.code)
		t.Logf("%s: %d %s", tt.name, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// A body over the limit without a Content-Length is cut off while read.
	req := httptest.NewRequest("POST", transport.PathBatch, struct{ *strings.Reader }{strings.NewReader(strings.Repeat("x", int(lim.MaxBodyBytes())+1))})
	req.ContentLength = -1
	req.RemoteAddr = "127.0.0.1:40000" // a peer on loopback (protected mode: no token configured)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	wantError(t, rec, http.StatusRequestEntityTooLarge)

	// /internal/replicate carries exactly one update.
	rec = do(s, request{method: "POST", target: transport.PathReplicate, body: updatesBody(us[:2]...)})
	wantError(t, rec, http.StatusBadRequest)
}

// The HTTP peer and the handlers speak the same framing: every value the
// client API accepts travels, through replicate, batches and snapshots.
func TestHTTPPeerRoundTrip(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	s := newTestServer(t, rep, defaultLimits)
	ts := httptest.NewServer(s)
	defer ts.Close()
	p := transport.NewHTTPPeer("n2", ts.URL, "", ts.Client(), s.cfg.PeerLimits())
	ctx := context.Background()
	big := func(c string) string { return strings.Repeat(c, s.cfg.MaxValueBytes/len(c)) }
	sent := map[string]replication.Update{}
	if err := p.Replicate(ctx, replication.Update{Key: "lt", Value: big("<"), Version: 10}); err != nil {
		t.Fatalf("replicate 1 MiB of '<': %v", err)
	}
	sent["lt"] = replication.Update{Key: "lt", Value: big("<"), Version: 10}
	batch := []replication.Update{
		{Key: "ctl", Value: big("\u0001"), Version: 11},
		{Key: "amp", Value: "&<>\u2028\"\\", Version: 12},
		{Key: "empty", Value: "", Version: 13},
	}
	if err := p.ReplicateBatch(ctx, batch); err != nil {
		t.Fatalf("replicate batch: %v", err)
	}
	for _, u := range batch {
		sent[u.Key] = u
	}
	got := map[string]replication.Update{}
	if err := p.Snapshot(ctx, 0, func(u replication.Update) error { got[u.Key] = u; return nil }); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if len(got) != len(sent) {
		t.Fatalf("snapshot has %d entries, want %d", len(got), len(sent))
	}
	for k, u := range sent {
		if g := got[k]; g != u {
			t.Errorf("%s: snapshot has version %d and %d value bytes, want %d and %d", k, g.Version, len(g.Value), u.Version, len(u.Value))
		}
	}

	// A peer with smaller limits refuses permanently: the error says so.
	small := newTestServer(t, newFakeRep(replication.LeaderFollower), nil)
	ts2 := httptest.NewServer(small)
	defer ts2.Close()
	p2 := transport.NewHTTPPeer("n3", ts2.URL, "", ts2.Client(), s.cfg.PeerLimits())
	err := p2.Replicate(ctx, replication.Update{Key: "k", Value: big("v"), Version: 1})
	var se *transport.StatusError
	if !errors.Is(err, replication.ErrRefused) || !errors.As(err, &se) || se.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("over the peer's limits: %v, want a 413 matching ErrRefused", err)
	}
	// And a snapshot with values over this node's limits is refused.
	if err := p2.ReplicateBatch(ctx, []replication.Update{{Key: "k", Value: "0123456789", Version: 1}}); err != nil {
		t.Fatal(err)
	}
	tiny := transport.NewHTTPPeer("n3", ts2.URL, "", ts2.Client(), transport.Limits{MaxKeyBytes: 16, MaxValueBytes: 4})
	if err := tiny.Snapshot(ctx, 0, func(replication.Update) error { return nil }); !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("snapshot over the limits: %v, want ErrTooLarge", err)
	}
}

// A snapshot streams every entry and ends with the end mark, without
// which a reader refuses the copy.
func TestSnapshotStream(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	for i := range 3 {
		rep.ApplyReplica(context.Background(), replication.Update{Key: fmt.Sprint("k", i), Value: "v", Version: uint64(i + 1)})
	}
	s := newTestServer(t, rep, nil)
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	p := transport.NewHTTPPeer("n2", ts.URL, "", ts.Client(), s.cfg.PeerLimits())
	n := 0
	err := p.Snapshot(ctx, 0, func(replication.Update) error { n++; return nil })
	cancel()
	if err != nil || n != 3 {
		t.Fatalf("snapshot: %d entries, %v", n, err)
	}
	// The stream as the handler writes it ends with the end mark.
	rec := do(s, request{method: "GET", target: transport.PathSnapshot})
	if ct := rec.Header().Get("Content-Type"); ct != transport.ContentTypeUpdates {
		t.Fatalf("Content-Type %q", ct)
	}
	b := rec.Body.Bytes()
	if err := transport.ReadStream(bytes.NewReader(b), s.cfg.PeerLimits(), func(replication.Update) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := transport.ReadStream(bytes.NewReader(b[:len(b)-2]), s.cfg.PeerLimits(), func(replication.Update) error { return nil }); err == nil {
		t.Fatal("a stream without its end mark was accepted")
	}
}
