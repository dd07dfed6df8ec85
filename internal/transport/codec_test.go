package transport

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/kvdb/kvdb/internal/replication"
)

// defaultLimits are the client API's defaults (server.Config).
var defaultLimits = Limits{MaxKeyBytes: 1 << 10, MaxValueBytes: 1 << 20}

// Values JSON inflates sixfold travel at their own size.
func TestEncodeDoesNotInflate(t *testing.T) {
	for _, v := range []string{"<", ">", "&", "\u0001", "\u2028", "\"", "\\"} {
		value := strings.Repeat(v, 1<<20/len(v))
		us := []replication.Update{{Key: "k", Value: value, Version: 7}}
		b := EncodeUpdates(us)
		if overhead := len(b) - len(value) - 1; overhead > 10 { // header 2, count 1, version 1, term 1, flags 1, lengths 1+3
			t.Errorf("%q: %d bytes of framing for a %d-byte value", v, overhead, len(value))
		}
		j, _ := json.Marshal(us)
		t.Logf("%q x %d: binary %d bytes, JSON %d", v, len(value)/len(v), len(b), len(j))
		got, err := DecodeUpdates(b, defaultLimits)
		if err != nil || !reflect.DeepEqual(got, us) {
			t.Fatalf("%q: round trip failed: %v", v, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, us := range [][]replication.Update{
		{},
		{{Key: "k", Value: "", Version: 1}},
		{{Key: "a", Value: "x", Version: 1 << 63}, {Key: "b/c d", Value: "\x00\xff<>&", Version: 300}},
		{{Key: "", Value: "", Version: 0}}, // framing only: the caller validates
		{{Key: strings.Repeat("k", 1<<10), Value: strings.Repeat("v", 1<<20), Version: ^uint64(0)}},
		{{Key: "gone", Version: 9, Deleted: true}, {Key: "k", Value: "v", Version: 10, Term: 3}},
		{{Key: "gone", Version: 9, Deleted: true, Purge: true}, {Key: "x", Version: 1 << 50, Term: 1, Deleted: true}},
	} {
		b := EncodeUpdates(us)
		if len(b) != EncodedLen(us) {
			t.Errorf("EncodedLen %d, encoded %d bytes", EncodedLen(us), len(b))
		}
		got, err := DecodeUpdates(b, defaultLimits)
		if err != nil {
			t.Fatalf("decode %d updates: %v", len(us), err)
		}
		if len(us) == 0 && len(got) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, us) {
			t.Fatalf("round trip of %d updates differs", len(us))
		}
	}
}

// uv is the uvarint encoding of x.
func uv(x uint64) []byte { return binary.AppendUvarint(nil, x) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// fl is a flags byte.
func fl(f byte) []byte { return []byte{f} }

var hdr = []byte{frameMagic, frameVersion}

func TestDecodeErrors(t *testing.T) {
	lim := Limits{MaxKeyBytes: 4, MaxValueBytes: 8}
	one := EncodeUpdates([]replication.Update{{Key: "k", Value: "v", Version: 1}})
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"JSON", []byte(`[{"key":"k","value":"v","version":1}]`), ErrMalformed},
		{"other framing version", []byte{frameMagic, 9, 0}, ErrMalformed},
		{"no count", hdr, ErrMalformed},
		{"truncated", one[:len(one)-1], ErrMalformed},
		{"trailing byte", append(append([]byte{}, one...), 0), ErrMalformed},
		{"non-minimal count", cat(hdr, []byte{0x81, 0x00}, []byte{1, 0, 0, 1, 'k', 1, 'v'}), ErrMalformed},
		{"count overflows", cat(hdr, bytes.Repeat([]byte{0xff}, 11)), ErrMalformed},
		{"count over the limit", cat(hdr, uv(uint64(lim.MaxUpdates())+1)), ErrTooLarge},
		{"count beyond the bytes", cat(hdr, uv(5), []byte{1, 0, 0, 1, 'k', 1, 'v'}), ErrMalformed},
		{"key over the limit", cat(hdr, uv(1), uv(1), uv(0), fl(0), uv(5), []byte("kkkkk"), uv(0)), ErrTooLarge},
		{"huge key length", cat(hdr, uv(1), uv(1), uv(0), fl(0), uv(1<<62), []byte("k")), ErrTooLarge},
		{"value over the limit", cat(hdr, uv(1), uv(1), uv(0), fl(0), uv(1), []byte("k"), uv(9), []byte("123456789")), ErrTooLarge},
		{"huge value length", cat(hdr, uv(1), uv(1), uv(0), fl(0), uv(1), []byte("k"), uv(^uint64(0))), ErrTooLarge},
		{"value beyond the bytes", cat(hdr, uv(1), uv(1), uv(0), fl(0), uv(1), []byte("k"), uv(8), []byte("1234")), ErrMalformed},
		{"non-minimal version", cat(hdr, uv(1), []byte{0x80, 0x00}, uv(0), fl(0), uv(1), []byte("k"), uv(0)), ErrMalformed},
		{"no flags", cat(hdr, uv(1), uv(1), uv(0)), ErrMalformed},
		{"unknown flag", cat(hdr, uv(1), uv(1), uv(0), fl(4), uv(1), []byte("k"), uv(0)), ErrMalformed},
		{"purge without delete", cat(hdr, uv(1), uv(1), uv(0), fl(flagPurge), uv(1), []byte("k"), uv(0)), ErrMalformed},
		{"delete with a value", cat(hdr, uv(1), uv(1), uv(0), fl(flagDeleted), uv(1), []byte("k"), uv(1), []byte("v")), ErrMalformed},
		{"previous framing version", cat([]byte{frameMagic, 2}, uv(1), uv(1), uv(0), uv(1), []byte("k"), uv(0)), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			us, err := DecodeUpdates(tt.in, lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeUpdates = %v, %v; want %v", us, err, tt.want)
			}
			t.Log(err)
		})
	}
}

// A batch the sender may build fits the body limit: MaxBatchUpdates updates
// with keys at the limit and one value at the limit (more than the sender
// ever puts together: its values share MaxBatchBytes).
func TestMaxBodyCoversLargestBatch(t *testing.T) {
	for _, lim := range []Limits{defaultLimits, {MaxKeyBytes: 16, MaxValueBytes: 64}, {MaxKeyBytes: 1 << 12, MaxValueBytes: 8 << 20}} {
		us := largestBatch(lim)
		b := EncodeUpdates(us)
		if int64(len(b)) > lim.MaxBodyBytes() {
			t.Fatalf("%+v: largest batch is %d bytes, body limit %d", lim, len(b), lim.MaxBodyBytes())
		}
		if _, err := DecodeUpdates(b, lim); err != nil {
			t.Fatalf("%+v: %v", lim, err)
		}
	}
	if got := defaultLimits.MaxBodyBytes(); got != 1_317_388 {
		t.Errorf("default body limit %d, the arithmetic in MaxBodyBytes's comment says 1,317,388", got)
	}
}

// largestBatch is MaxBatchUpdates updates with keys of the largest size,
// versions of the largest encoding, and values as large as each may be
// until they add up to max(MaxBatchBytes, MaxValueBytes): with the default
// limits, one value of the largest size.
func largestBatch(lim Limits) []replication.Update {
	us := make([]replication.Update, lim.MaxUpdates())
	budget := max(replication.MaxBatchBytes, lim.MaxValueBytes)
	for i := range us {
		key := fmt.Sprintf("%0*d", lim.MaxKeyBytes, i)
		n := min(lim.MaxValueBytes, budget)
		budget -= n
		us[i] = replication.Update{Key: key, Value: strings.Repeat("<", n), Version: ^uint64(0)}
	}
	return us
}

func TestStreamRoundTrip(t *testing.T) {
	us := []replication.Update{
		{Key: "a", Value: strings.Repeat("<", 1<<20), Version: 3},
		{Key: "b", Value: "", Version: 1},
		{Key: "c", Value: "\u0001&", Version: 1 << 40},
		{Key: "gone", Version: 7, Deleted: true},
	}
	var buf bytes.Buffer
	sw := NewStreamWriter(&buf)
	for _, u := range us {
		if err := sw.Write(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	var got []replication.Update
	if err := ReadStream(bytes.NewReader(full), defaultLimits, func(u replication.Update) error {
		got = append(got, u)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, us) {
		t.Fatal("stream round trip differs")
	}
	// Every cut short stream fails, at an update boundary too.
	for _, n := range []int{0, 1, 2, 3, len(full) / 2, len(full) - 2, len(full) - 1} {
		err := ReadStream(bytes.NewReader(full[:n]), defaultLimits, func(replication.Update) error { return nil })
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("stream cut at %d of %d bytes: %v, want ErrMalformed", n, len(full), err)
		}
	}
	end := cat(hdr, uv(1), fl(0), uv(1), []byte("k"), uv(0))
	for name, in := range map[string][]byte{
		"wrong count":      cat(end, []byte{0}, uv(2)),
		"trailing data":    cat(end, []byte{0}, uv(1), []byte{0}),
		"value too big":    cat(hdr, uv(1), fl(0), uv(1), []byte("k"), uv(1<<21)),
		"unknown flag":     cat(hdr, uv(1), fl(8), uv(1), []byte("k"), uv(0), []byte{0}, uv(1)),
		"purge in a copy":  cat(hdr, uv(1), fl(flagDeleted|flagPurge), uv(1), []byte("k"), uv(0), []byte{0}, uv(1)),
		"delete, a value":  cat(hdr, uv(1), fl(flagDeleted), uv(1), []byte("k"), uv(1), []byte("v"), []byte{0}, uv(1)),
		"truncated flags":  cat(hdr, uv(1)),
		"previous framing": cat([]byte{frameMagic, 2}, uv(1), uv(1), []byte("k"), uv(0), []byte{0}, uv(1)),
	} {
		if err := ReadStream(bytes.NewReader(in), defaultLimits, func(replication.Update) error { return nil }); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// An empty stream is complete.
	buf.Reset()
	if err := NewStreamWriter(&buf).Close(); err != nil {
		t.Fatal(err)
	}
	if err := ReadStream(&buf, defaultLimits, func(replication.Update) error { t.Fatal("update in empty stream"); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, u := range []replication.Update{{Key: "k"}, {Key: "k", Version: 1, Deleted: true, Purge: true}, {Key: "k", Value: "v", Version: 1, Deleted: true}} {
		if err := NewStreamWriter(io.Discard).Write(u); err == nil {
			t.Fatalf("%+v was written to a stream", u)
		}
	}
}

// An error from fn ends the stream with that error.
func TestStreamStopsOnCallbackError(t *testing.T) {
	var buf bytes.Buffer
	sw := NewStreamWriter(&buf)
	_ = sw.Write(replication.Update{Key: "a", Version: 1})
	_ = sw.Write(replication.Update{Key: "b", Version: 2})
	_ = sw.Close()
	stop := errors.New("stop")
	calls := 0
	err := ReadStream(&buf, defaultLimits, func(replication.Update) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("ReadStream = %v after %d calls, want stop after 1", err, calls)
	}
}

func TestRefused(t *testing.T) {
	for code, want := range map[int]bool{400: true, 413: true, 422: true, 408: false, 429: false, 401: false,
		403: false, 404: false, 405: false, 500: false, 503: false, 200: false} {
		err := error(&StatusError{Code: code})
		if got := errors.Is(fmt.Errorf("wrapped: %w", err), replication.ErrRefused); got != want {
			t.Errorf("status %d: refused %t, want %t", code, got, want)
		}
	}
}
