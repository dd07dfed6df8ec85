package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/store"
)

// FuzzStreamFrames feeds arbitrary bytes to the stream's frame reader and
// to the decoder of every frame type, as both ends of a connection would:
// nothing may panic or allocate beyond the limits, every error is one of
// the stream's or the codec's, and what decodes re-encodes to the same
// bytes.
func FuzzStreamFrames(f *testing.F) {
	lim := Limits{MaxKeyBytes: 64, MaxValueBytes: 256}
	us := []replication.Update{{Key: "k", Value: "v", Version: 7, Term: 2}, {Key: "d", Version: 9, Deleted: true}}
	f.Add(finishFrame(AppendUpdates(newFrame(frameBatch, 0), us), 1))
	f.Add(finishFrame(AppendUpdates(newFrame(frameReplicate, 0), us[:1]), 2))
	f.Add(finishFrame(append(newFrame(frameRead, 0), "key"...), 3))
	f.Add(finishFrame(appendQuorum(newFrame(frameQuorum, 0), 3, 2), 4))
	f.Add(finishFrame(newFrame(frameProbe, 0), 5))
	f.Add(finishFrame(newFrame(frameCancel, 0), 6))
	f.Add(finishFrame(appendStamp(newFrame(frameOK, 0), 1234), 7))
	f.Add(finishFrame(appendEntry(newFrame(frameEntry, 0), 99, store.Entry{Value: "v", Version: 3}, true), 8))
	f.Add(finishFrame(appendEntry(newFrame(frameEntry, 0), 99, store.Entry{}, false), 9))
	f.Add(finishFrame(appendError(newFrame(frameError, 0), 409, "stale_term", "newer term"), 10))
	f.Add([]byte{0, 0, 0, 1, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1})

	srv := &StreamServer{cfg: StreamServerConfig{Limits: lim}}
	sc := &serverConn{s: srv}
	max := maxFrameLen(lim)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf []byte
		for {
			fh, body, err := readFrame(r, buf, max)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrame) && !errors.Is(err, errFrameTooLarge) {
					t.Fatalf("readFrame: unexpected error %v", err)
				}
				return
			}
			if int64(len(body)) > max {
				t.Fatalf("a body of %d bytes, limit %d", len(body), max)
			}
			buf = body[:0]
			checkFrame(t, sc, lim, fh, body)
		}
	})
}

func checkFrame(t *testing.T, sc *serverConn, lim Limits, fh frameHeader, body []byte) {
	t.Helper()
	switch fh.typ {
	case frameOK:
		if ns, err := parseOK(body); err == nil {
			if got := appendStamp(nil, ns); !bytes.Equal(got, body) {
				t.Fatalf("ok %x re-encodes to %x", body, got)
			}
		} else if !errors.Is(err, ErrFrame) {
			t.Fatal(err)
		}
	case frameEntry:
		ns, e, found, err := parseEntry(body, lim)
		if err != nil {
			if !errors.Is(err, ErrFrame) {
				t.Fatal(err)
			}
			return
		}
		if got := appendEntry(nil, ns, e, found); !bytes.Equal(got, body) && found {
			// A found entry's update message may carry a key or term the
			// answer drops; only its meaning must survive.
			ns2, e2, found2, err := parseEntry(got, lim)
			if err != nil || ns2 != ns || e2 != e || !found2 {
				t.Fatalf("entry %x re-encodes to %x (%v)", body, got, err)
			}
		}
	case frameError:
		se, err := parseError(body)
		if err != nil {
			if !errors.Is(err, ErrFrame) {
				t.Fatal(err)
			}
			return
		}
		if got := appendError(nil, se.Code, se.ErrCode, se.Msg); !bytes.Equal(got, body) {
			t.Fatalf("error %x re-encodes to %x", body, got)
		}
	default:
		req, err := sc.decode(fh, body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, errStreamBadRequest) {
				t.Fatalf("decode: unexpected error %v", err)
			}
			return
		}
		switch fh.typ {
		case frameReplicate, frameBatch:
			if got := AppendUpdates(nil, req.us); !bytes.Equal(got, body) {
				t.Fatalf("updates %x re-encode to %x", body, got)
			}
		case frameQuorum:
			if got := appendQuorum(nil, req.w, req.r); !bytes.Equal(got, body) {
				t.Fatalf("quorum %x re-encodes to %x", body, got)
			}
		case frameRead:
			if req.key != string(body) {
				t.Fatalf("read of %q decoded as %q", body, req.key)
			}
		}
	}
}
