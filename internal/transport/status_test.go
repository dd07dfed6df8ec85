package transport

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/kvdb/kvdb/internal/errcode"
	"github.com/kvdb/kvdb/internal/replication"
)

// A peer's error answer matches a sentinel by its machine code, never by
// the English text beside it.
func TestStatusErrorMatchesByCode(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   string
		want   error // the sentinel it must match
		not    error // a sentinel it must not match
	}{
		{"catching up", 503, `{"error":"whatever the words","code":"catching_up"}`, replication.ErrNotReady, replication.ErrStorage},
		{"health catching up", 503, `{"status":"catching-up","code":"catching_up","node":"n2"}`, replication.ErrNotReady, replication.ErrRefused},
		{"text says catching up, code does not", 503, `{"error":"node is catching up","code":"storage_failure"}`, replication.ErrStorage, replication.ErrNotReady},
		{"no code at all", 503, `{"error":"node is catching up"}`, nil, replication.ErrNotReady},
		{"not json", 503, `node is catching up`, nil, replication.ErrNotReady},
		{"shutting down", 503, `{"error":"x","code":"shutting_down"}`, replication.ErrClosed, replication.ErrNotReady},
		{"refused by status", 413, `{"error":"too large","code":"too_large"}`, replication.ErrRefused, replication.ErrNotReady},
		{"invalid version: refused, but not the caller's ErrInvalid", 400, `{"error":"bad","code":"invalid_argument"}`, replication.ErrRefused, replication.ErrInvalid},
		{"storage failure", 503, `{"error":"x","code":"storage_failure"}`, replication.ErrStorage, replication.ErrRefused},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer ts.Close()
			p := NewHTTPPeer("n2", ts.URL, "", ts.Client(), Limits{MaxKeyBytes: 1 << 10, MaxValueBytes: 1 << 20})
			for _, call := range []struct {
				op  string
				err error
			}{
				{"probe", p.Probe(context.Background())},
				{"read", func() error { _, _, err := p.Read(context.Background(), "k"); return err }()},
				{"replicate", p.Replicate(context.Background(), replication.Update{Key: "k", Value: "v", Version: 1})},
			} {
				var se *StatusError
				if !errors.As(call.err, &se) || se.Code != tt.status {
					t.Fatalf("%s: %v, want a *StatusError with status %d", call.op, call.err, tt.status)
				}
				if tt.want != nil && !errors.Is(call.err, tt.want) {
					t.Errorf("%s: %v (code %q) does not match %v", call.op, call.err, se.ErrCode, tt.want)
				}
				if errors.Is(call.err, tt.not) {
					t.Errorf("%s: %v (code %q) matches %v", call.op, call.err, se.ErrCode, tt.not)
				}
			}
		})
	}
}

// A code that stands for one of the peer states matches its sentinel;
// the codes about a request match none.
func TestSentinelCodes(t *testing.T) {
	for _, c := range errcode.Codes() {
		s := errcode.Sentinel(c)
		if s == nil {
			t.Fatalf("code %q lists no sentinel", c)
		}
		err := &StatusError{Code: 503, ErrCode: c}
		if want := slices.Contains(PeerStates, s); errors.Is(err, s) != want {
			t.Errorf("code %q: errors.Is(%v) = %v, want %v", c, s, !want, want)
		}
	}
	if errcode.Sentinel(errcode.BadRequest) != nil || errcode.Sentinel("") != nil {
		t.Error("codes of the HTTP layer itself stand for no replication sentinel")
	}
}
