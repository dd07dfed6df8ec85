package transport

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/kvdb/kvdb/internal/replication"
)

// FuzzDecodeUpdates feeds arbitrary bytes to the peer protocol's decoder.
// It must never panic; whatever it accepts is within the limits, takes no
// more memory than the input and its updates hold, and encodes back to
// exactly the input (the framing is canonical); what it refuses it
// refuses with ErrMalformed or ErrTooLarge.
func FuzzDecodeUpdates(f *testing.F) {
	lim := Limits{MaxKeyBytes: 16, MaxValueBytes: 64}
	valid := [][]replication.Update{
		{},
		{{Key: "k", Value: "v", Version: 1}},
		{{Key: "a", Value: "<<<&&&>>>", Version: 1 << 40}, {Key: "b", Value: "", Version: 2}, {Key: "\u0001", Value: "\x00\xff", Version: ^uint64(0)}},
		{{Key: strings.Repeat("k", 16), Value: strings.Repeat("v", 64), Version: 300}},
		{{Key: "gone", Version: 5, Deleted: true}, {Key: "gone", Version: 5, Deleted: true, Purge: true}, {Key: "t", Value: "v", Version: 6, Term: 2}},
	}
	for _, us := range valid {
		b := EncodeUpdates(us)
		f.Add(b)
		f.Add(b[:len(b)/2])              // truncated
		f.Add(b[:max(len(b)-1, 0)])      // one byte short
		f.Add(append(bytes.Clone(b), 0)) // trailing byte
	}
	f.Add(cat(hdr, uv(1<<62)))                                                                              // huge count
	f.Add(cat(hdr, uv(1), uv(1), uv(0), fl(0), uv(1<<62), []byte("k")))                                     // huge key length
	f.Add(cat(hdr, uv(1), uv(1), uv(0), fl(0), uv(1), []byte("k"), uv(^uint64(0))))                         // huge value length
	f.Add(cat(hdr, uv(1), uv(1), uv(0), fl(0), uv(17), []byte(strings.Repeat("k", 17)), uv(0)))             // key over the limit
	f.Add(cat(hdr, uv(2), uv(1), uv(0), fl(0), uv(1), []byte("k"), uv(0)))                                  // count beyond the updates
	f.Add(cat(hdr, uv(1), uv(1), uv(0), fl(7), uv(1), []byte("k"), uv(0)))                                  // unknown flags
	f.Add(cat(hdr, uv(1), uv(1), uv(0), fl(flagDeleted), uv(1), []byte("k"), uv(1), []byte("v")))           // delete with a value
	f.Add(cat(hdr, []byte{0x80, 0x00}))                                                                     // non-minimal count
	f.Add(cat(hdr, bytes.Repeat([]byte{0xff}, 10), []byte{0x01}))                                           // count overflows
	f.Add([]byte(`[{"key":"k","value":"v","version":1}]`))                                                  // JSON
	f.Add(cat([]byte{frameMagic, frameVersion + 1}, uv(1), uv(1), uv(0), fl(0), uv(1), []byte("k"), uv(0))) // other version
	f.Fuzz(func(t *testing.T, b []byte) {
		us, err := DecodeUpdates(b, lim)
		if err != nil {
			if us != nil {
				t.Fatalf("updates returned with an error: %v", err)
			}
			if !isCodecError(err) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		if len(us) > lim.MaxUpdates() {
			t.Fatalf("%d updates, limit %d", len(us), lim.MaxUpdates())
		}
		if cap(us) != len(us) {
			t.Fatalf("%d updates held in a slice of capacity %d", len(us), cap(us))
		}
		held := int(unsafe.Sizeof(replication.Update{})) * len(us)
		for _, u := range us {
			if len(u.Key) > lim.MaxKeyBytes || len(u.Value) > lim.MaxValueBytes {
				t.Fatalf("update over the limits: key %d bytes, value %d", len(u.Key), len(u.Value))
			}
			if (u.Deleted && u.Value != "") || (u.Purge && !u.Deleted) {
				t.Fatalf("accepted an inconsistent update: %+v", u)
			}
			held += len(u.Key) + len(u.Value)
		}
		if held > int(unsafe.Sizeof(replication.Update{}))*len(b)/minUpdateLen+len(b) {
			t.Fatalf("%d bytes held for a %d-byte input", held, len(b))
		}
		// With these limits every message within them is within the body
		// limit too (256 values of 64 bytes are under MaxBatchBytes).
		if int64(len(b)) > lim.MaxBodyBytes() {
			t.Fatalf("a %d-byte message decoded, body limit %d", len(b), lim.MaxBodyBytes())
		}
		again := EncodeUpdates(us)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs from the input:\n in  %x\n out %x", b, again)
		}
		back, err := DecodeUpdates(again, lim)
		if err != nil || !reflect.DeepEqual(back, us) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func isCodecError(err error) bool { return errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) }
