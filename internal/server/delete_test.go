package server

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/kvdb/kvdb/internal/replication"
)

// DELETE /delete/{key} and /delete?key= answer 200 with the tombstone's
// version; reads of the key then answer 404; errors are a set's.
func TestDeleteEndpoint(t *testing.T) {
	tests := []struct {
		name       string
		mode       replication.Mode
		method     string
		target     string
		writeErr   error
		wantStatus int
		wantCode   string
		check      func(t *testing.T, body map[string]any)
	}{
		{name: "by path", mode: replication.LeaderFollower, method: "DELETE", target: "/delete/a%2F%2Fb", wantStatus: 200,
			check: func(t *testing.T, b map[string]any) {
				if b["key"] != "a//b" || b["node"] != "n1" || b["version"] == nil || b["coordinator"] != nil {
					t.Errorf("body %v", b)
				}
			}},
		{name: "by query, leaderless names the coordinator", mode: replication.Leaderless, method: "DELETE", target: "/delete?key=k&w=2", wantStatus: 200,
			check: func(t *testing.T, b map[string]any) {
				if b["key"] != "k" || b["coordinator"] != "n1" || b["w"] != float64(2) {
					t.Errorf("body %v", b)
				}
			}},
		{name: "missing key is fine", mode: replication.LeaderFollower, method: "DELETE", target: "/delete/never", wantStatus: 200},
		{name: "empty key", mode: replication.LeaderFollower, method: "DELETE", target: "/delete/", wantStatus: 400, wantCode: "bad_request"},
		{name: "empty query key", mode: replication.LeaderFollower, method: "DELETE", target: "/delete?key=", wantStatus: 400, wantCode: "bad_request"},
		{name: "key too large", mode: replication.LeaderFollower, method: "DELETE", target: "/delete/" + fmt.Sprintf("%020d", 0), wantStatus: 413},
		{name: "bad w", mode: replication.LeaderFollower, method: "DELETE", target: "/delete/k?w=0", wantStatus: 400},
		{name: "wrong method", mode: replication.LeaderFollower, method: "GET", target: "/delete/k", wantStatus: 405},
		{name: "wrong method, query form", mode: replication.LeaderFollower, method: "POST", target: "/delete?key=k", wantStatus: 405},
		{name: "quorum", mode: replication.Leaderless, method: "DELETE", target: "/delete/k",
			writeErr:   &replication.QuorumError{Op: "delete", Acks: 1, Required: 5, N: 5},
			wantStatus: 503, wantCode: "quorum_not_reached",
			check: func(t *testing.T, b map[string]any) {
				if b["acks"] != float64(1) || b["required"] != float64(5) {
					t.Errorf("body %v", b)
				}
			}},
		{name: "follower redirects", mode: replication.LeaderFollower, method: "DELETE", target: "/delete/k?w=3",
			writeErr:   &replication.NotLeaderError{LeaderID: "n2", LeaderURL: "http://n2:8080"},
			wantStatus: http.StatusTemporaryRedirect, wantCode: "not_leader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := newFakeRep(tt.mode)
			rep.writeErr = tt.writeErr
			s := newTestServer(t, rep, nil)
			rec := do(s, request{method: tt.method, target: tt.target})
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			body := decode(t, rec)
			if tt.wantCode != "" && body["code"] != tt.wantCode {
				t.Errorf("code %v, want %s", body["code"], tt.wantCode)
			}
			if tt.wantStatus == http.StatusTemporaryRedirect && rec.Header().Get("Location") != "http://n2:8080/delete/k?w=3" {
				t.Errorf("Location %q", rec.Header().Get("Location"))
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

// After a delete every read form answers 404, and a later set brings the
// key back.
func TestReadsAfterDelete(t *testing.T) {
	rep := newFakeRep(replication.LeaderFollower)
	s := newTestServer(t, rep, nil)
	if rec := do(s, request{method: "POST", target: "/set", body: `{"key":"k","value":"v"}`}); rec.Code != 201 {
		t.Fatal(rec.Body)
	}
	if rec := do(s, request{method: "DELETE", target: "/delete/k"}); rec.Code != 200 {
		t.Fatal(rec.Body)
	}
	for _, target := range []string{"/get/k", "/get?key=k", "/local_read/k", "/local_read?key=k"} {
		if rec := do(s, request{method: "GET", target: target}); rec.Code != 404 || decode(t, rec)["code"] != "not_found" {
			t.Errorf("%s after delete: %d %s", target, rec.Code, rec.Body)
		}
	}
	if rec := do(s, request{method: "GET", target: "/health"}); decode(t, rec)["tombstones"] != float64(1) {
		t.Errorf("health after delete: %s", rec.Body)
	}
	if rec := do(s, request{method: "POST", target: "/set", body: `{"key":"k","value":"again"}`}); rec.Code != 201 {
		t.Fatal(rec.Body)
	}
	if rec := do(s, request{method: "GET", target: "/get/k"}); rec.Code != 200 || decode(t, rec)["value"] != "again" {
		t.Errorf("get after the later set: %d %s", rec.Code, rec.Body)
	}
}
