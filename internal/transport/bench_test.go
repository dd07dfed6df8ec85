package transport

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kvdb/kvdb/internal/replication"
)

// benchBatch is a typical replication batch: 64 updates, 100-byte values.
func benchBatch() []replication.Update {
	us := make([]replication.Update, 64)
	for i := range us {
		us[i] = replication.Update{Key: fmt.Sprintf("user:%06d", i), Value: strings.Repeat("x", 100), Version: uint64(1_000_000 + i)}
	}
	return us
}

// BenchmarkCodec compares the binary framing with the JSON it replaced,
// encoding and decoding one batch.
func BenchmarkCodec(b *testing.B) {
	us := benchBatch()
	bin := EncodeUpdates(us)
	js, _ := json.Marshal(us)
	b.Run("encode/binary", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(bin)))
		for b.Loop() {
			_ = EncodeUpdates(us)
		}
	})
	b.Run("encode/json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(js)))
		for b.Loop() {
			if _, err := json.Marshal(us); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/binary", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(bin)))
		for b.Loop() {
			if _, err := DecodeUpdates(bin, defaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(js)))
		for b.Loop() {
			var out []replication.Update
			if err := json.Unmarshal(js, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
