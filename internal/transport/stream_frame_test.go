package transport

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/kvdb/kvdb/internal/errcode"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/store"
)

func TestStreamEntryRoundTrip(t *testing.T) {
	lim := Limits{MaxKeyBytes: 16, MaxValueBytes: 64}
	for _, tc := range []struct {
		e     store.Entry
		found bool
	}{
		{store.Entry{Value: "v", Version: 3}, true},
		{store.Entry{Value: "", Version: 1 << 40}, true},
		{store.Entry{Version: 9, Deleted: true}, true}, // a tombstone reads back as one
		{store.Entry{}, false},
	} {
		b := appendEntry(nil, 12345, tc.e, tc.found)
		ns, e, found, err := parseEntry(b, lim)
		if err != nil || ns != 12345 || e != tc.e || found != tc.found {
			t.Errorf("%+v found %v: got %+v found %v stamp %d err %v", tc.e, tc.found, e, found, ns, err)
		}
	}
}

func TestStreamFrameHeader(t *testing.T) {
	f := finishFrame(append(newFrame(frameRead, 3), "key"...), 77)
	fh, body, err := readFrame(bytes.NewReader(f), nil, 100)
	if err != nil || fh.typ != frameRead || fh.id != 77 || string(body) != "key" {
		t.Fatalf("got %+v %q %v", fh, body, err)
	}
	if _, _, err := readFrame(bytes.NewReader(f), nil, 7); !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, _, err := readFrame(bytes.NewReader([]byte{0, 0, 0, 2, 1, 0, 0, 0, 1}), nil, 100); !errors.Is(err, ErrFrame) {
		t.Fatalf("shorter than its header: %v", err)
	}
	if _, _, err := readFrame(bytes.NewReader(f[:len(f)-1]), nil, 100); err == nil {
		t.Fatal("a truncated frame read")
	}
}

// streamStatus answers every replication sentinel with the code and
// status the HTTP endpoints use, so a coordinator cannot tell the two
// transports apart.
func TestStreamStatusMatchesCodes(t *testing.T) {
	for _, code := range errcode.Codes() {
		sentinel := errcode.Sentinel(code)
		status, got := streamStatus(sentinel)
		if got != code {
			t.Errorf("%v: code %q, want %q", sentinel, got, code)
		}
		se := &StatusError{Code: status, ErrCode: got}
		if want := errors.Is(se, sentinel); slices.Contains(PeerStates, sentinel) && !want {
			t.Errorf("%v: the answer %d %s does not match it", sentinel, status, got)
		}
	}
	if status, _ := streamStatus(replication.ErrStaleTerm); !Refused(status) {
		t.Errorf("stale term: %d is not a refusal", status)
	}
	if status, code := streamStatus(errors.New("boom")); status != http.StatusInternalServerError || code != errcode.Internal {
		t.Errorf("an unknown error: %d %s", status, code)
	}
}
