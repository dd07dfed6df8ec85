// Package store is kvdb's versioned in-memory key-value store.
//
// Every key holds one value and the integer version that wrote it. An update
// is applied only when its version is newer than the one held, so a replica
// never goes backwards whatever order replication messages arrive in. A
// delete is an update too: a tombstone (Entry.Deleted) with its own version,
// which a newer set replaces and which replaces every older value; readers
// treat it as absent. Tombstones are dropped only by Purge (see package
// replication for when that is safe). The map
// is split into shards, each behind its own RWMutex, so that readers and
// writers of different keys rarely contend.
package store

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
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
	mask   uint64
	keys   atomic.Int64 // live keys (tombstones not included)
	tombs  atomic.Int64 // tombstones
}

type shard struct {
	mu sync.RWMutex
	m  map[string]Entry
	_  [40]byte // keep neighbouring shard locks on separate cache lines
}

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
	s := &Store{seed: maphash.MakeSeed(), shards: make([]shard, size), mask: uint64(size - 1)}
	for i := range s.shards {
		s.shards[i].m = make(map[string]Entry)
	}
	return s
}

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)&s.mask]
}

// Get returns the entry for key and whether it exists.
func (s *Store) Get(key string) (Entry, bool) {
	sh := s.shard(key)
	sh.mu.RLock()
	e, ok := sh.m[key]
	sh.mu.RUnlock()
	return e, ok
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
// not kept.
func (s *Store) ApplyEntry(key string, e Entry) (Entry, bool) {
	if e.Deleted {
		e.Value = ""
	}
	sh := s.shard(key)
	sh.mu.Lock()
	cur, ok := sh.m[key]
	if ok && cur.Version >= e.Version {
		sh.mu.Unlock()
		return cur, false
	}
	sh.m[key] = e
	sh.mu.Unlock()
	s.count(cur, ok, -1)
	s.count(e, true, 1)
	return e, true
}

// count adds d to the counter e belongs to (if present).
func (s *Store) count(e Entry, present bool, d int64) {
	switch {
	case !present:
	case e.Deleted:
		s.tombs.Add(d)
	default:
		s.keys.Add(d)
	}
}

// Purge removes key if the entry held is a tombstone or a value whose
// version is at most version, and reports whether it removed one: the
// garbage collection of a tombstone at version, which also drops any older
// copy a replica still held. An entry newer than version is kept.
func (s *Store) Purge(key string, version uint64) bool {
	sh := s.shard(key)
	sh.mu.Lock()
	cur, ok := sh.m[key]
	if !ok || cur.Version > version {
		sh.mu.Unlock()
		return false
	}
	delete(sh.m, key)
	sh.mu.Unlock()
	s.count(cur, true, -1)
	return true
}

// Len returns the number of live keys held (tombstones not included).
func (s *Store) Len() int { return int(s.keys.Load()) }

// Tombstones returns the number of tombstones held.
func (s *Store) Tombstones() int { return int(s.tombs.Load()) }

// MaxVersion returns the highest version held by any key (0 when empty).
func (s *Store) MaxVersion() uint64 {
	var max uint64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, e := range sh.m {
			if e.Version > max {
				max = e.Version
			}
		}
		sh.mu.RUnlock()
	}
	return max
}

// Range calls fn for every key until fn returns false. Each shard is read
// under its lock, so fn must not call back into the store.
func (s *Store) Range(fn func(key string, e Entry) bool) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for k, e := range sh.m {
			if !fn(k, e) {
				sh.mu.RUnlock()
				return
			}
		}
		sh.mu.RUnlock()
	}
}

// Snapshot calls fn for every entry, tombstones included. Each shard is copied under its read
// lock and fn runs outside it, so fn may block (write to a network) without
// stalling writers. Entries changed during the snapshot may or may not be
// included; replicas apply only newer versions, so a copy merged later is
// still correct.
func (s *Store) Snapshot(fn func(key string, e Entry) error) error {
	type kv struct {
		k string
		e Entry
	}
	var buf []kv
	for i := range s.shards {
		sh := &s.shards[i]
		buf = buf[:0]
		sh.mu.RLock()
		for k, e := range sh.m {
			buf = append(buf, kv{k, e})
		}
		sh.mu.RUnlock()
		for _, x := range buf {
			if err := fn(x.k, x.e); err != nil {
				return err
			}
		}
	}
	return nil
}
