// Package store is kvdb's versioned in-memory key-value store.
//
// Every key holds one value and the integer version that wrote it. An update
// is applied only when its version is newer than the one held, so a replica
// never goes backwards whatever order replication messages arrive in. A
// delete is an update too: a tombstone (Entry.Deleted) with its own version,
// which a newer set replaces and which replaces every older value; readers
// treat it as absent. Tombstones are dropped only by Purge (see package
// replication for when that is safe). The keys are split into shards, each
// behind its own RWMutex, so that readers and writers of different keys
// rarely contend.
//
// # Layout
//
// The store is laid out for memory per key, which is what bounds how much
// data a node holds. A key's state is one record, a single noscan byte
// allocation (the garbage collector never scans its contents):
//
//	[version u64 LE][flags u8, bit 0 = tombstone][klen uvarint][vlen uvarint][key][value]
//
// and each shard is an open-addressing hash table of its own: a power-of-two
// array of record pointers (8 B a slot) beside an array of one-byte tags
// (0 = empty, else 0x80 | 7 bits of the key's hash), probed linearly, so a
// lookup dereferences a record only when a tag matches. A table doubles
// (rehashing the keys held in the records) before its load would pass 3/4,
// starts at 8 slots, and loses entries by backward-shift deletion, so there
// are no deleted-slot markers and lookups never degrade. One maphash of the
// key per operation picks the shard (low bits), the home slot (the bits
// above those) and the tag (the top 7 bits, apart from the slot bits in any
// table below 2^(57-log2 shards) slots).
//
// The Go map this replaced (map[string]Entry per shard) cost a 48-byte slot
// at a load of 0.45-0.55, plus separate key and value string allocations: for
// 1 M keys of 11 bytes with 100-byte values its heap was 245 B/key (222 B at
// 5 M), above Redis's used_memory for the same data (186 and 196 B/key). A
// record of that data is 122 bytes (the 128-byte size class) and a slot 9
// bytes at a load of 3/8-3/4 (12-24 B/key): 147 B/key at 1 M and 143 B/key
// at 5 M keys (kvdb bench --memory).
//
// The costs: an update allocates and copies its record (the map kept the
// caller's strings), built before the shard lock is taken, so that an update
// refused as stale discards one; and a table's growth rehashes its keys
// under the shard's write lock (a few hundred microseconds to a few
// milliseconds for a shard of 2^14 slots, once per doubling), where the Go
// map grew in steps of 1024 slots. Tables never shrink, like Go maps.
//
// # Immutability
//
// A record is never written after it is published in a table: an update
// allocates a new record and swaps the slot's pointer, a purge clears the
// slot. That invariant is what makes it safe to hand out strings that alias
// a record (Entry.Value from Get, keys and values passed to Range and
// Snapshot) without copying, to decode a record after releasing the shard's
// lock, and for such a string to stay valid (it keeps its record alive)
// after the key is overwritten or purged. Nothing in this file may break it.
package store

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Entry is one stored value and the version that wrote it. A tombstone
// (Deleted) records a delete at Version; its Value is empty.
type Entry struct {
	Value   string
	Version uint64
	Deleted bool
}

// DefaultShards is the shard count used when New is given zero.
const DefaultShards = 256

// Store is a sharded, versioned map. The zero value is not usable; call New.
type Store struct {
	seed   maphash.Seed
	shards []shard
	mask   uint64       // shard count - 1: a hash's low bits pick the shard
	shift  uint         // log2(shard count): the bits above pick the home slot
	keys   atomic.Int64 // live keys (tombstones not included)
	tombs  atomic.Int64 // tombstones
}

// table is one shard's state: an open-addressing hash table, linearly
// probed, whose slot i is empty when tags[i] == 0 and otherwise holds
// recs[i], a record whose key hashes to tag tags[i]. Every occupied slot is
// reachable from its key's home slot without crossing an empty one.
type table struct {
	mu   sync.RWMutex
	tags []uint8  // 0 = empty, else tagOf(hash); len is a power of two
	recs []record // len(recs) == len(tags)
	used int      // occupied slots (live keys and tombstones)
}

type shard struct {
	table
	// keep neighbouring shard locks on separate cache lines
	_ [(64 - unsafe.Sizeof(table{})%64) % 64]byte
}

const (
	minSlots = 8 // a new table's size
	// A table grows (doubles) when an insert would fill more than
	// maxLoadNum/maxLoadDen of its slots.
	maxLoadNum, maxLoadDen = 3, 4
)

// New returns an empty store with the given number of shards, rounded up to
// a power of two (DefaultShards when n <= 0).
func New(n int) *Store {
	if n <= 0 {
		n = DefaultShards
	}
	size := 1
	for size < n {
		size <<= 1
	}
	s := &Store{seed: maphash.MakeSeed(), shards: make([]shard, size), mask: uint64(size - 1),
		shift: uint(bits.TrailingZeros(uint(size)))}
	for i := range s.shards {
		s.shards[i].tags = make([]uint8, minSlots)
		s.shards[i].recs = make([]record, minSlots)
	}
	return s
}

// tagOf is the tag of a key whose hash is h: its top 7 bits, with the high
// bit set so that no tag is 0 (empty).
func tagOf(h uint64) uint8 { return 0x80 | uint8(h>>57) }

// locate returns the shard of a key whose hash is h, and the hash's bits
// for the slot (above the shard bits).
func (s *Store) locate(h uint64) (*shard, uint64) {
	return &s.shards[h&s.mask], h >> s.shift
}

// home returns the home slot of key in a table of mask+1 slots.
func (s *Store) home(key string, mask uint64) uint64 {
	return (maphash.String(s.seed, key) >> s.shift) & mask
}

// find returns the slot that holds key (found) or, if none does, the empty
// slot that ends its probe sequence. hi is the key's hash above the shard
// bits and tag its tag. The caller holds the lock.
//
// The probe reads one tag at a time, and a record only when its tag
// matches (by chance 1 time in 128 for another key). Slots are indexed
// without bounds checks: an index is masked by len(tags)-1, and
// len(recs) == len(tags). A scalar probe beats one that matches eight tags
// at a time with word operations here: the branch predictor guesses that
// the home slot holds the key, so the loads of its tag, its record pointer
// and its record overlap, where the word version must compute the index
// from the tags before it can load the pointer (measured: Get 15-30 %
// faster, in cache and out of it; tables are at most 3/4 full, so probe
// sequences are short).
func (t *table) find(key string, hi uint64, tag uint8) (slot int, found bool) {
	mask := uint64(len(t.tags) - 1)
	tags, recs := unsafe.Pointer(unsafe.SliceData(t.tags)), unsafe.Pointer(unsafe.SliceData(t.recs))
	for i := hi & mask; ; i = (i + 1) & mask {
		switch *(*uint8)(unsafe.Add(tags, i)) {
		case 0:
			return int(i), false
		case tag:
			if (*(*record)(unsafe.Add(recs, uintptr(i)*unsafe.Sizeof(record{})))).key() == key {
				return int(i), true
			}
		}
	}
}

// Get returns the entry for key and whether it exists.
func (s *Store) Get(key string) (Entry, bool) {
	h := maphash.String(s.seed, key)
	sh, hi := s.locate(h)
	sh.mu.RLock()
	i, ok := sh.find(key, hi, tagOf(h))
	var r record
	if ok {
		r = sh.recs[i]
	}
	sh.mu.RUnlock()
	if !ok {
		return Entry{}, false
	}
	return r.entry(), true // immutable: decoded outside the lock
}

// Apply stores value under key at version if version is newer than the
// version held (or the key is absent). It reports whether the update was
// applied and returns the entry held afterwards.
func (s *Store) Apply(key, value string, version uint64) (Entry, bool) {
	return s.ApplyEntry(key, Entry{Value: value, Version: version})
}

// ApplyEntry stores e (a value or a tombstone) under key if e.Version is
// newer than the version held (or the key is absent). It reports whether e
// was applied and returns the entry held afterwards. A tombstone's value is
// not kept. The store keeps copies of key and e.Value, never the caller's
// strings.
func (s *Store) ApplyEntry(key string, e Entry) (Entry, bool) {
	if e.Deleted {
		e.Value = ""
	}
	h := maphash.String(s.seed, key)
	sh, hi := s.locate(h)
	tag := tagOf(h)
	// The record is built before the lock is taken, so that the lock is not
	// held across an allocation and a copy; an update found to be stale
	// discards it.
	r := newRecord(key, e)
	sh.mu.Lock()
	i, found := sh.find(key, hi, tag)
	if found {
		cur := sh.recs[i]
		if cur.version() >= e.Version {
			sh.mu.Unlock()
			return cur.entry(), false
		}
		sh.recs[i] = r
		sh.mu.Unlock()
		s.count(cur.deleted(), -1)
		s.count(e.Deleted, 1)
		return e, true
	}
	if (sh.used+1)*maxLoadDen > len(sh.tags)*maxLoadNum {
		s.grow(&sh.table)
		i, _ = sh.find(key, hi, tag)
	}
	sh.tags[i], sh.recs[i] = tag, r
	sh.used++
	sh.mu.Unlock()
	s.count(e.Deleted, 1)
	return e, true
}

// grow doubles t, moving every record to its home slot in the new arrays
// (its key is hashed again). The caller holds t's write lock.
func (s *Store) grow(t *table) {
	n := 2 * len(t.tags)
	tags, recs := make([]uint8, n), make([]record, n)
	mask := uint64(n - 1)
	for j, r := range t.recs {
		if t.tags[j] == 0 {
			continue
		}
		i := s.home(r.key(), mask)
		for tags[i] != 0 {
			i = (i + 1) & mask
		}
		tags[i], recs[i] = t.tags[j], r
	}
	t.tags, t.recs = tags, recs
}

// count adds d to the counter of tombstones or of live keys.
func (s *Store) count(deleted bool, d int64) {
	if deleted {
		s.tombs.Add(d)
	} else {
		s.keys.Add(d)
	}
}

// Purge removes key if the entry held is a tombstone or a value whose
// version is at most version, and reports whether it removed one: the
// garbage collection of a tombstone at version, which also drops any older
// copy a replica still held. An entry newer than version is kept.
func (s *Store) Purge(key string, version uint64) bool {
	h := maphash.String(s.seed, key)
	sh, hi := s.locate(h)
	sh.mu.Lock()
	i, found := sh.find(key, hi, tagOf(h))
	if !found || sh.recs[i].version() > version {
		sh.mu.Unlock()
		return false
	}
	cur := sh.recs[i]
	s.remove(&sh.table, i)
	sh.mu.Unlock()
	s.count(cur.deleted(), -1)
	return true
}

// remove empties slot i of t by backward-shift deletion: each record after
// it in the same run of occupied slots moves back into the hole when the
// hole lies on its probe path (between its home slot and its slot), so that
// every key stays reachable from its home without deleted-slot markers. The
// caller holds t's write lock.
func (s *Store) remove(t *table, i int) {
	mask := len(t.tags) - 1
	hole := i
	for j := (i + 1) & mask; t.tags[j] != 0; j = (j + 1) & mask {
		home := int(s.home(t.recs[j].key(), uint64(mask)))
		// The record at j may move to the hole unless its home lies
		// cyclically in (hole, j]: then the hole is not on its path.
		if (j-home)&mask < (j-hole)&mask {
			continue
		}
		t.tags[hole], t.recs[hole] = t.tags[j], t.recs[j]
		hole = j
	}
	t.tags[hole], t.recs[hole] = 0, record{}
	t.used--
}

// Len returns the number of live keys held (tombstones not included).
func (s *Store) Len() int { return int(s.keys.Load()) }

// Tombstones returns the number of tombstones held.
func (s *Store) Tombstones() int { return int(s.tombs.Load()) }

// MaxVersion returns the highest version held by any key (0 when empty).
func (s *Store) MaxVersion() uint64 {
	var top uint64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for j, r := range sh.recs {
			if sh.tags[j] != 0 {
				top = max(top, r.version())
			}
		}
		sh.mu.RUnlock()
	}
	return top
}

// Range calls fn for every key until fn returns false. Each shard is read
// under its lock, so fn must not call back into the store. The strings
// passed to fn alias the store's immutable records: they stay valid after
// fn returns, and keep their record alive while held.
func (s *Store) Range(fn func(key string, e Entry) bool) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for j, r := range sh.recs {
			if sh.tags[j] != 0 && !fn(r.key(), r.entry()) {
				sh.mu.RUnlock()
				return
			}
		}
		sh.mu.RUnlock()
	}
}

// Snapshot calls fn for every entry, tombstones included. Each shard's
// record pointers are copied under its read lock and fn runs outside it, so
// fn may block (write to a network) without stalling writers. Entries
// changed during the snapshot may or may not be included; replicas apply
// only newer versions, so a copy merged later is still correct. The strings
// passed to fn alias immutable records, as with Range.
func (s *Store) Snapshot(fn func(key string, e Entry) error) error {
	var buf []record
	for i := range s.shards {
		sh := &s.shards[i]
		buf = buf[:0]
		sh.mu.RLock()
		for j, r := range sh.recs {
			if sh.tags[j] != 0 {
				buf = append(buf, r)
			}
		}
		sh.mu.RUnlock()
		for _, r := range buf {
			if err := fn(r.key(), r.entry()); err != nil {
				return err
			}
		}
	}
	return nil
}

// record points at the first byte of an immutable record (see the package
// comment for its layout); the zero record is no record.
type record struct{ p *byte }

// Record header: the version, the flags byte, then klen and vlen.
const (
	offFlags      = 8
	offLens       = 9
	flagTombstone = 1 << 0
)

// newRecord allocates the record of key holding e (whose Value is empty if
// e is a tombstone).
func newRecord(key string, e Entry) record {
	n := offLens + uvarintLen(uint64(len(key))) + uvarintLen(uint64(len(e.Value))) + len(key) + len(e.Value)
	b := make([]byte, n) // no pointers: a noscan allocation
	binary.LittleEndian.PutUint64(b, e.Version)
	if e.Deleted {
		b[offFlags] = flagTombstone
	}
	i := offLens
	i += binary.PutUvarint(b[i:], uint64(len(key)))
	i += binary.PutUvarint(b[i:], uint64(len(e.Value)))
	i += copy(b[i:], key)
	copy(b[i:], e.Value)
	return record{unsafe.SliceData(b)}
}

func uvarintLen(x uint64) int {
	return (bits.Len64(x|1) + 6) / 7
}

// at returns the byte at offset off of r.
func (r record) at(off int) byte {
	return *(*byte)(unsafe.Add(unsafe.Pointer(r.p), off))
}

// uvarint decodes the uvarint at offset off of r, returning it and the
// offset after it. Records are built by newRecord, so it is well formed.
func (r record) uvarint(off int) (int, int) {
	if b := r.at(off); b < 0x80 { // lengths below 128: one byte
		return int(b), off + 1
	}
	var x uint64
	for shift := uint(0); ; shift += 7 {
		b := r.at(off)
		off++
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return int(x), off
		}
	}
}

// str returns the n bytes of r at offset off as a string aliasing r.
func (r record) str(off, n int) string {
	if n == 0 {
		return "" // off may be r's end: never form a pointer past it
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(r.p), off)), n)
}

func (r record) version() uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice(r.p, 8))
}

func (r record) deleted() bool { return r.at(offFlags)&flagTombstone != 0 }

// key returns r's key.
func (r record) key() string {
	if l := binary.LittleEndian.Uint16(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(r.p), offLens)), 2)); l&0x8080 == 0 {
		return r.str(offLens+2, int(l&0xff)) // klen and vlen below 128
	}
	klen, off := r.uvarint(offLens)
	_, off = r.uvarint(off)
	return r.str(off, klen)
}

// entry returns r's entry, its Value aliasing r.
func (r record) entry() Entry {
	klen, off := r.uvarint(offLens)
	vlen, off := r.uvarint(off)
	return Entry{Value: r.str(off+klen, vlen), Version: r.version(), Deleted: r.deleted()}
}
