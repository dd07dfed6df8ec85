package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kvdb/kvdb/internal/replication"
)

// Peer messages that carry updates (/internal/replicate,
// /internal/replicate-batch and /internal/snapshot) use a compact binary
// framing instead of JSON. JSON escapes <, > and & to six bytes each (and
// control characters likewise), so a value the client API accepts could
// grow sixfold on the way to a peer and be refused there; here a key or
// value travels as its raw bytes, with no escaping and no inflation.
//
// A message (a batch) is
//
//	magic formatVersion count (version term flags keyLength key valueLength value)*count
//
// and a snapshot stream is
//
//	magic formatVersion (version flags keyLength key valueLength value)* 0x00 count
//
// flags is one byte: 0 for a value, flagDeleted for a delete (a tombstone,
// whose value must be empty), flagDeleted|flagPurge for the collection of a
// tombstone (messages only, never in a snapshot); any other byte is
// malformed.
//
// (a snapshot carries no term: it is a repair, never fenced; see
// replication.Update.Term). count, version, term and the lengths are unsigned varints (encoding/binary's
// uvarint, in their shortest form), key and value raw bytes. An update's
// version is never zero, so a zero where a version would start ends a
// snapshot stream; the count after it lets the reader tell a complete
// stream from one cut short at an update boundary.

// ContentTypeUpdates is the Content-Type of a message in this framing.
const ContentTypeUpdates = "application/x-kvdb-updates"

const (
	frameMagic   byte = 0xCB // first byte of every message and stream
	frameVersion byte = 3    // bumped if the framing changes (2: updates carry their term; 3: and their flags)
	headerLen         = 2
	// minUpdateLen is the smallest encoding of one update in a message: a
	// one-byte version, a one-byte term, the flags and two one-byte
	// lengths.
	minUpdateLen = 5

	// flagDeleted marks a delete (a tombstone: replication.Update.Deleted).
	flagDeleted byte = 1 << 0
	// flagPurge marks the collection of a tombstone (Update.Purge); it
	// comes with flagDeleted.
	flagPurge byte = 1 << 1
	// maxUvarintLen64 is the longest uvarint.
	maxUvarintLen64 = binary.MaxVarintLen64
)

// Errors of the decoder. Every error it returns wraps one of them.
var (
	// ErrMalformed: the input is not a well-formed message (bad header,
	// truncated, a non-minimal varint, trailing bytes...).
	ErrMalformed = errors.New("malformed update message")
	// ErrTooLarge: a length or count in the input exceeds the limits.
	ErrTooLarge = errors.New("update message over the limits")
)

// Limits bound what a peer message may carry. They derive from the client
// API's limits (server.Config's MaxKeyBytes and MaxValueBytes: a peer must
// accept every update a client could write) and from the sender's batch
// caps (replication.MaxBatchUpdates and replication.MaxBatchBytes).
type Limits struct {
	// MaxKeyBytes bounds one key.
	MaxKeyBytes int
	// MaxValueBytes bounds one value.
	MaxValueBytes int
}

// Validate reports limits that cannot be used.
func (l Limits) Validate() error {
	if l.MaxKeyBytes < 1 || l.MaxValueBytes < 0 {
		return fmt.Errorf("transport limits: max key bytes %d must be at least 1 and max value bytes %d not negative", l.MaxKeyBytes, l.MaxValueBytes)
	}
	return nil
}

// MaxUpdates bounds the updates in one message: the sender's batch cap.
func (l Limits) MaxUpdates() int { return replication.MaxBatchUpdates }

// MaxBodyBytes bounds the body of one message. The sender puts at most
// MaxBatchUpdates updates in a batch, each key within MaxKeyBytes, and adds
// an update to a non-empty batch only while the batch's values stay within
// MaxBatchBytes (an update with a larger value goes alone, and no value
// exceeds MaxValueBytes). So a message is at most
//
//	header + count varint                        2 + 10
//	+ MaxUpdates × (version varint + term varint + flags + key length varint + value length varint + MaxKeyBytes)
//	+ max(MaxBatchBytes, MaxValueBytes)          all values together
//
// With the defaults (1 KiB keys, 1 MiB values, 256 updates, 1 MiB of
// values per batch): 12 + 256 × (10 + 10 + 1 + 2 + 3 + 1024) + 1 MiB
// = 12 + 268,800 + 1,048,576 = 1,317,388 bytes, about 1.26 MiB.
func (l Limits) MaxBodyBytes() int64 {
	perUpdate := int64(2*maxUvarintLen64 + 1 + uvarintLen(uint64(l.MaxKeyBytes)) + uvarintLen(uint64(l.MaxValueBytes)) + l.MaxKeyBytes)
	values := int64(max(replication.MaxBatchBytes, l.MaxValueBytes))
	return headerLen + maxUvarintLen64 + int64(l.MaxUpdates())*perUpdate + values
}

// uvarintLen is the length of x as a uvarint.
func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// EncodedLen is the length of the message AppendUpdates makes of us.
func EncodedLen(us []replication.Update) int {
	n := headerLen + uvarintLen(uint64(len(us)))
	for _, u := range us {
		n += updateLen(u)
	}
	return n
}

func updateLen(u replication.Update) int {
	return uvarintLen(u.Version) + uvarintLen(u.Term) + 1 + uvarintLen(uint64(len(u.Key))) + len(u.Key) + uvarintLen(uint64(len(u.Value))) + len(u.Value)
}

// AppendUpdates appends the message carrying us to dst.
func AppendUpdates(dst []byte, us []replication.Update) []byte {
	dst = append(dst, frameMagic, frameVersion)
	dst = binary.AppendUvarint(dst, uint64(len(us)))
	for _, u := range us {
		dst = appendUpdate(dst, u)
	}
	return dst
}

// EncodeUpdates returns the message carrying us, in a buffer of exactly its
// length.
func EncodeUpdates(us []replication.Update) []byte {
	return AppendUpdates(make([]byte, 0, EncodedLen(us)), us)
}

func appendUpdate(dst []byte, u replication.Update) []byte {
	dst = binary.AppendUvarint(dst, u.Version)
	dst = binary.AppendUvarint(dst, u.Term)
	dst = append(dst, flagsOf(u))
	dst = binary.AppendUvarint(dst, uint64(len(u.Key)))
	dst = append(dst, u.Key...)
	dst = binary.AppendUvarint(dst, uint64(len(u.Value)))
	return append(dst, u.Value...)
}

// flagsOf is u's flags byte.
func flagsOf(u replication.Update) byte {
	var f byte
	if u.Deleted || u.Purge {
		f |= flagDeleted
	}
	if u.Purge {
		f |= flagPurge
	}
	return f
}

// setFlags sets u's Deleted and Purge from f, refusing a byte that is not
// one of the combinations allowed (purge only if allowed; only with
// deleted).
func setFlags(u *replication.Update, f byte, purgeAllowed bool) error {
	switch {
	case f == 0:
	case f == flagDeleted:
		u.Deleted = true
	case f == flagDeleted|flagPurge && purgeAllowed:
		u.Deleted, u.Purge = true, true
	default:
		return fmt.Errorf("%w: flags byte 0x%02x", ErrMalformed, f)
	}
	return nil
}

// DecodeUpdates decodes one message. Every count and length is checked
// against lim and against the bytes actually left before anything is
// allocated for it, so the memory it takes is bounded by len(b) plus one
// Update per update the input really holds. It checks framing only: an
// update with an empty key or a zero version decodes (the caller decides
// what is valid). Keys and values are copied out of b.
func DecodeUpdates(b []byte, lim Limits) ([]replication.Update, error) {
	if err := checkHeader(b); err != nil {
		return nil, err
	}
	off := headerLen
	n, off, err := sliceUvarint(b, off, "update count")
	if err != nil {
		return nil, err
	}
	if n > uint64(lim.MaxUpdates()) {
		return nil, fmt.Errorf("%w: %d updates in one message, limit %d", ErrTooLarge, n, lim.MaxUpdates())
	}
	if n > uint64(len(b)-off)/minUpdateLen {
		return nil, fmt.Errorf("%w: %d updates announced but only %d bytes follow", ErrMalformed, n, len(b)-off)
	}
	us := make([]replication.Update, n)
	for i := range us {
		if us[i], off, err = sliceUpdate(b, off, lim); err != nil {
			return nil, fmt.Errorf("update %d of %d: %w", i+1, n, err)
		}
	}
	if off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the last update", ErrMalformed, len(b)-off)
	}
	return us, nil
}

func checkHeader(b []byte) error {
	if len(b) < headerLen || b[0] != frameMagic {
		return fmt.Errorf("%w: not a kvdb update message (peers must send %s from the same kvdb version)", ErrMalformed, ContentTypeUpdates)
	}
	if b[1] != frameVersion {
		return fmt.Errorf("%w: framing version %d, this node speaks %d", ErrMalformed, b[1], frameVersion)
	}
	return nil
}

// sliceUvarint reads a minimal uvarint at b[off:].
func sliceUvarint(b []byte, off int, what string) (uint64, int, error) {
	x, n := binary.Uvarint(b[off:])
	switch {
	case n == 0:
		return 0, off, fmt.Errorf("%w: truncated %s", ErrMalformed, what)
	case n < 0:
		return 0, off, fmt.Errorf("%w: %s overflows 64 bits", ErrMalformed, what)
	case n > 1 && b[off+n-1] == 0:
		return 0, off, fmt.Errorf("%w: %s is not in its shortest form", ErrMalformed, what)
	}
	return x, off + n, nil
}

// sliceLen reads a length (at most limit) at b[off:] and checks that as
// many bytes follow.
func sliceLen(b []byte, off int, limit int, what, whatLen string) (int, int, error) {
	n, off, err := sliceUvarint(b, off, whatLen)
	if err != nil {
		return 0, off, err
	}
	if n > uint64(limit) {
		return 0, off, fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, what, n, limit)
	}
	if n > uint64(len(b)-off) {
		return 0, off, fmt.Errorf("%w: %s of %d bytes but only %d follow", ErrMalformed, what, n, len(b)-off)
	}
	return int(n), off, nil
}

// sliceUpdate reads one update at b[off:]. Its key and value are copied
// out separately: a key shared with its value's memory would keep that
// value alive as long as the key (a map key outlives the values stored
// under it).
func sliceUpdate(b []byte, off int, lim Limits) (replication.Update, int, error) {
	var u replication.Update
	var err error
	if u.Version, off, err = sliceUvarint(b, off, "version"); err != nil {
		return u, off, err
	}
	if u.Term, off, err = sliceUvarint(b, off, "term"); err != nil {
		return u, off, err
	}
	if off >= len(b) {
		return u, off, fmt.Errorf("%w: truncated flags", ErrMalformed)
	}
	if err = setFlags(&u, b[off], true); err != nil {
		return u, off, err
	}
	off++
	klen, off, err := sliceLen(b, off, lim.MaxKeyBytes, "key", "key length")
	if err != nil {
		return u, off, err
	}
	key := b[off : off+klen]
	vlen, off, err := sliceLen(b, off+klen, lim.MaxValueBytes, "value", "value length")
	if err != nil {
		return u, off, err
	}
	if u.Deleted && vlen > 0 {
		return u, off, fmt.Errorf("%w: a delete carries a %d-byte value", ErrMalformed, vlen)
	}
	// Key and value share one allocation (half the allocations of a
	// decode): whoever keeps one keeps both, and the store copies them.
	var kv strings.Builder
	kv.Grow(klen + vlen)
	kv.Write(key)
	kv.Write(b[off : off+vlen])
	all := kv.String()
	u.Key, u.Value = all[:klen], all[klen:]
	return u, off + vlen, nil
}

// StreamWriter writes a snapshot stream: updates one after another, then
// an end mark with their count (Close).
type StreamWriter struct {
	w      *bufio.Writer
	n      uint64
	buf    []byte // scratch for an update's varints
	header bool
}

// NewStreamWriter returns a writer of a snapshot stream to w, buffered.
func NewStreamWriter(w io.Writer) *StreamWriter {
	return &StreamWriter{w: bufio.NewWriterSize(w, 64<<10), buf: make([]byte, 0, 3*maxUvarintLen64)}
}

func (s *StreamWriter) writeHeader() error {
	if s.header {
		return nil
	}
	s.header = true
	_, err := s.w.Write([]byte{frameMagic, frameVersion})
	return err
}

// Write appends u to the stream. A zero version cannot be carried (zero
// ends a stream), nor a purge (a snapshot carries what a node holds), nor a
// delete with a value.
func (s *StreamWriter) Write(u replication.Update) error {
	switch {
	case u.Version == 0:
		return fmt.Errorf("snapshot stream: update %q has version 0", u.Key)
	case u.Purge:
		return fmt.Errorf("snapshot stream: update %q is a purge", u.Key)
	case u.Deleted && u.Value != "":
		return fmt.Errorf("snapshot stream: delete of %q carries a value", u.Key)
	}
	if err := s.writeHeader(); err != nil {
		return err
	}
	b := binary.AppendUvarint(s.buf[:0], u.Version)
	b = append(b, flagsOf(u))
	b = binary.AppendUvarint(b, uint64(len(u.Key)))
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	if _, err := s.w.WriteString(u.Key); err != nil {
		return err
	}
	if _, err := s.w.Write(binary.AppendUvarint(s.buf[:0], uint64(len(u.Value)))); err != nil {
		return err
	}
	if _, err := s.w.WriteString(u.Value); err != nil {
		return err
	}
	s.n++
	return nil
}

// Close writes the end mark and flushes; it does not close the underlying
// writer.
func (s *StreamWriter) Close() error {
	if err := s.writeHeader(); err != nil {
		return err
	}
	b := binary.AppendUvarint(append(s.buf[:0], 0), s.n)
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.w.Flush()
}

// ReadStream reads a snapshot stream from r and calls fn for each update
// as it arrives. It returns nil only for a complete stream: one that ends
// with its end mark, whose count matches, and nothing after it. Every
// length is checked against lim before its bytes are read, so it holds at
// most one key and one value in memory besides what fn keeps.
func ReadStream(r io.Reader, lim Limits, fn func(replication.Update) error) error {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	var hdr [headerLen]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return readErr("stream header", err)
	}
	if err := checkHeader(hdr[:]); err != nil {
		return err
	}
	var scratch []byte
	readString := func(limit int, what, whatLen string) (string, error) {
		n, err := readUvarint(br, whatLen)
		if err != nil {
			return "", err
		}
		if n > uint64(limit) {
			return "", fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, what, n, limit)
		}
		if uint64(cap(scratch)) < n {
			scratch = make([]byte, n)
		}
		b := scratch[:n]
		if _, err := io.ReadFull(br, b); err != nil {
			return "", readErr(what, err)
		}
		return string(b), nil
	}
	var count uint64
	for {
		v, err := readUvarint(br, "version")
		if err != nil {
			return fmt.Errorf("after %d updates: %w", count, err)
		}
		if v == 0 {
			break
		}
		u := replication.Update{Version: v}
		f, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("update %d: %w", count+1, readErr("flags", err))
		}
		if err := setFlags(&u, f, false); err != nil {
			return fmt.Errorf("update %d: %w", count+1, err)
		}
		if u.Key, err = readString(lim.MaxKeyBytes, "key", "key length"); err != nil {
			return fmt.Errorf("update %d: %w", count+1, err)
		}
		valueLimit := lim.MaxValueBytes
		if u.Deleted {
			valueLimit = 0
		}
		if u.Value, err = readString(valueLimit, "value", "value length"); err != nil {
			return fmt.Errorf("update %d: %w", count+1, err)
		}
		count++
		if err := fn(u); err != nil {
			return err
		}
	}
	n, err := readUvarint(br, "end count")
	if err != nil {
		return err
	}
	if n != count {
		return fmt.Errorf("%w: stream ends announcing %d updates, %d read", ErrMalformed, n, count)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		if err == nil {
			return fmt.Errorf("%w: data after the end of the stream", ErrMalformed)
		}
		return fmt.Errorf("%w: after the end of the stream: %v", ErrMalformed, err)
	}
	return nil
}

// readUvarint reads a minimal uvarint from r; running out of input is
// ErrMalformed (a stream ends only with its end mark).
func readUvarint(r io.ByteReader, what string) (uint64, error) {
	var x uint64
	for i := range maxUvarintLen64 {
		c, err := r.ReadByte()
		if err != nil {
			return 0, readErr(what, err)
		}
		if i == maxUvarintLen64-1 && c > 1 {
			return 0, fmt.Errorf("%w: %s overflows 64 bits", ErrMalformed, what)
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if i > 0 && c == 0 {
				return 0, fmt.Errorf("%w: %s is not in its shortest form", ErrMalformed, what)
			}
			return x, nil
		}
	}
	return 0, fmt.Errorf("%w: %s overflows 64 bits", ErrMalformed, what)
}

// readErr describes a failed read of what: running out of input is
// ErrMalformed (a stream ends only with its end mark); any other error
// (the connection broke, the context ended) is passed on as it is.
func readErr(what string, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: truncated %s", ErrMalformed, what)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}
