package store

import (
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// model is the reference the store is checked against: a plain map with
// the store's documented semantics.
type model map[string]Entry

func (m model) apply(key string, e Entry) (Entry, bool) {
	if e.Deleted {
		e.Value = ""
	}
	if cur, ok := m[key]; ok && cur.Version >= e.Version {
		return cur, false
	}
	m[key] = e
	return e, true
}

func (m model) purge(key string, version uint64) bool {
	if cur, ok := m[key]; !ok || cur.Version > version {
		return false
	}
	delete(m, key)
	return true
}

// counts returns the model's live keys and tombstones.
func (m model) counts() (live, tombs int) {
	for _, e := range m {
		if e.Deleted {
			tombs++
		} else {
			live++
		}
	}
	return live, tombs
}

// counted adds to *live or *tombs the change from entry before (present
// or not) to the model's entry for key now.
func (m model) counted(key string, before Entry, present bool, live, tombs *int) {
	add := func(e Entry, d int) {
		if e.Deleted {
			*tombs += d
		} else {
			*live += d
		}
	}
	if present {
		add(before, -1)
	}
	if e, ok := m[key]; ok {
		add(e, 1)
	}
}

// checker runs operations on a store and its model side by side and fails
// the test at the first difference.
type checker struct {
	tb          testing.TB
	s           *Store
	m           model
	op          int // operations run
	live, tombs int // the model's counts
}

func newChecker(tb testing.TB, shards int) *checker {
	return &checker{tb: tb, s: New(shards), m: model{}}
}

// fatalf fails the test. (The checker's methods do not call tb.Helper: it
// costs more than the operation checked, and the message names the
// operation.)
func (c *checker) fatalf(format string, args ...any) {
	c.tb.Fatalf("op %d: %s", c.op, fmt.Sprintf(format, args...))
}

func (c *checker) applyEntry(key string, e Entry) {
	c.op++
	got, ok := c.s.ApplyEntry(key, e)
	before, present := c.m[key]
	want, wantOK := c.m.apply(key, e)
	c.m.counted(key, before, present, &c.live, &c.tombs)
	if got != want || ok != wantOK {
		c.fatalf("ApplyEntry(%s, %s) = %s, %v; want %s, %v", short(key), show(e), show(got), ok, show(want), wantOK)
	}
	c.get(key)
}

func (c *checker) apply(key, value string, version uint64) {
	c.op++
	got, ok := c.s.Apply(key, value, version)
	before, present := c.m[key]
	want, wantOK := c.m.apply(key, Entry{Value: value, Version: version})
	c.m.counted(key, before, present, &c.live, &c.tombs)
	if got != want || ok != wantOK {
		c.fatalf("Apply(%s, %s, %d) = %s, %v; want %s, %v", short(key), short(value), version, show(got), ok, show(want), wantOK)
	}
	c.get(key)
}

func (c *checker) purge(key string, version uint64) {
	c.op++
	before, present := c.m[key]
	if got, want := c.s.Purge(key, version), c.m.purge(key, version); got != want {
		c.fatalf("Purge(%s, %d) = %v, want %v", short(key), version, got, want)
	}
	c.m.counted(key, before, present, &c.live, &c.tombs)
	c.get(key)
}

// get checks Get(key) and the counters.
func (c *checker) get(key string) {
	got, ok := c.s.Get(key)
	want, wantOK := c.m[key]
	if got != want || ok != wantOK {
		c.fatalf("Get(%s) = %s, %v; want %s, %v", short(key), show(got), ok, show(want), wantOK)
	}
	if c.s.Len() != c.live || c.s.Tombstones() != c.tombs {
		c.fatalf("Len, Tombstones = %d, %d; want %d, %d", c.s.Len(), c.s.Tombstones(), c.live, c.tombs)
	}
}

// full checks every read path against the model, and the tables.
func (c *checker) full() {
	c.tb.Helper()
	ranged := model{}
	c.s.Range(func(k string, e Entry) bool {
		if _, dup := ranged[k]; dup {
			c.fatalf("Range visited %s twice", short(k))
		}
		ranged[k] = e
		return true
	})
	if !maps.Equal(ranged, c.m) {
		c.fatalf("Range saw %d entries, differing from the model's %d", len(ranged), len(c.m))
	}
	snap := model{}
	if err := c.s.Snapshot(func(k string, e Entry) error { snap[k] = e; return nil }); err != nil {
		c.fatalf("Snapshot: %v", err)
	}
	if !maps.Equal(snap, c.m) {
		c.fatalf("Snapshot saw %d entries, differing from the model's %d", len(snap), len(c.m))
	}
	var top uint64
	for k, e := range c.m {
		top = max(top, e.Version)
		if got, ok := c.s.Get(k); !ok || got != e {
			c.fatalf("Get(%s) = %s, %v; want %s", short(k), show(got), ok, show(e))
		}
	}
	if got := c.s.MaxVersion(); got != top {
		c.fatalf("MaxVersion = %d, want %d", got, top)
	}
	if live, tombs := c.m.counts(); live != c.live || tombs != c.tombs {
		c.fatalf("model counts %d, %d; kept counts %d, %d", live, tombs, c.live, c.tombs)
	}
	checkTables(c.tb, c.s)
}

// checkTables checks every shard's table invariants: sizes, the occupied
// count and load, every record in its shard with its tag, reachable from
// its home slot without crossing an empty slot, no key twice, and empty
// slots holding no record (a purged record must not stay reachable).
func checkTables(tb testing.TB, s *Store) {
	tb.Helper()
	seen := map[string]bool{}
	var live, tombs int
	for si := range s.shards {
		t := &s.shards[si].table
		t.mu.RLock()
		n := len(t.tags)
		if n < minSlots || n&(n-1) != 0 || len(t.recs) != n {
			tb.Fatalf("shard %d: %d tags, %d records; want a power of two >= %d, equal", si, n, len(t.recs), minSlots)
		}
		if t.used*maxLoadDen > n*maxLoadNum {
			tb.Fatalf("shard %d: %d of %d slots used, above the maximum load", si, t.used, n)
		}
		used := 0
		mask := uint64(n - 1)
		for j, tag := range t.tags {
			r := t.recs[j]
			if tag == 0 {
				if r.p != nil {
					tb.Fatalf("shard %d: empty slot %d holds a record", si, j)
				}
				continue
			}
			used++
			if r.p == nil {
				tb.Fatalf("shard %d: slot %d has tag %#x but no record", si, j, tag)
			}
			k := r.key()
			if seen[k] {
				tb.Fatalf("key %s held twice", short(k))
			}
			seen[k] = true
			if r.deleted() {
				tombs++
				if e := r.entry(); e.Value != "" {
					tb.Fatalf("tombstone %s keeps value %s", short(k), short(e.Value))
				}
			} else {
				live++
			}
			h := hashOf(s, k)
			if h&s.mask != uint64(si) || tagOf(h) != tag {
				tb.Fatalf("key %s in shard %d with tag %#x; its hash picks shard %d, tag %#x", short(k), si, tag, h&s.mask, tagOf(h))
			}
			for i := (h >> s.shift) & mask; i != uint64(j); i = (i + 1) & mask {
				if t.tags[i] == 0 {
					tb.Fatalf("shard %d: key %s in slot %d is cut off from its home slot %d by empty slot %d", si, short(k), j, (h>>s.shift)&mask, i)
				}
			}
		}
		if used != t.used {
			tb.Fatalf("shard %d: %d slots occupied, used = %d", si, used, t.used)
		}
		t.mu.RUnlock()
	}
	if live != s.Len() || tombs != s.Tombstones() {
		tb.Fatalf("tables hold %d live keys and %d tombstones; Len, Tombstones = %d, %d", live, tombs, s.Len(), s.Tombstones())
	}
}

func hashOf(s *Store, key string) uint64 { return maphash.String(s.seed, key) }

func short(s string) string {
	if len(s) > 24 {
		return fmt.Sprintf("%q...(%d bytes)", s[:24], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func show(e Entry) string {
	return fmt.Sprintf("{%s v%d deleted=%v}", short(e.Value), e.Version, e.Deleted)
}

// specialKeys are keys every key space includes: the empty key, bytes that
// are not ASCII (nor UTF-8), a key at the one-byte varint length limit and
// past it, and a 70 KiB key (a three-byte varint).
func specialKeys() []string {
	return []string{
		"", "\x00", "ключ", "\xff\xfe\x80", "键/值 ✓",
		strings.Repeat("k", 127), strings.Repeat("l", 128),
		strings.Repeat("long\xc3", 70<<10/5),
	}
}

// randomValue returns a value for op: mostly short and of random bytes,
// sometimes empty, at a varint length boundary, or 1 MiB long.
func randomValue(rng *rand.Rand, big string) string {
	switch n := rng.IntN(1000); {
	case n < 100:
		return ""
	case n < 110:
		return big[:127]
	case n < 120:
		return big[:128]
	case n < 122:
		return big[:16384]
	case n < 124: // 1 MiB, with a first byte of its own
		return string(rune('a'+rng.IntN(26))) + big[1:]
	default:
		b := make([]byte, rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return string(b)
	}
}

// TestModel runs random operations against the store and a map model,
// checking every result, over a small key space (few keys, many updates
// and collisions per key) and a large one (tables grow, shards fill).
func TestModel(t *testing.T) {
	big := strings.Repeat("v\xe2\x82\xac", 1<<20/4+1)[:1<<20]
	for _, tc := range []struct {
		name         string
		shards, keys int
		ops, every   int // operations; a full check every so many
		versions     uint64
	}{
		{"small", 2, 12, 20000, 97, 40},
		{"one shard", 1, 400, 20000, 997, 1000},
		{"large", 4, 5000, 60000, 9973, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.keys), 1))
			keys := specialKeys()
			for i := len(keys); i < tc.keys; i++ {
				keys = append(keys, fmt.Sprintf("key-%d-\xe2\x9c\x93", i))
			}
			c := newChecker(t, tc.shards)
			for i := range tc.ops {
				k := keys[rng.IntN(len(keys))]
				v := rng.Uint64N(tc.versions) + 1
				switch op := rng.IntN(10); {
				case op < 5:
					c.apply(k, randomValue(rng, big), v)
				case op < 7:
					c.applyEntry(k, Entry{Value: randomValue(rng, big), Version: v, Deleted: rng.IntN(3) > 0})
				case op < 9:
					c.purge(k, v)
				default:
					c.op++
					c.get(k)
				}
				if i%tc.every == 0 {
					c.full()
				}
			}
			c.full()
			// Purge everything: the tables empty out and stay consistent.
			for _, k := range keys {
				c.purge(k, ^uint64(0))
			}
			c.full()
			if c.s.Len() != 0 || c.s.Tombstones() != 0 {
				t.Fatalf("after purging every key: Len %d, Tombstones %d", c.s.Len(), c.s.Tombstones())
			}
		})
	}
}

// TestRecordLengths round-trips keys and values across the varint length
// boundaries (and the one-byte fast path of record.key).
func TestRecordLengths(t *testing.T) {
	c := newChecker(t, 1)
	lens := []int{0, 1, 127, 128, 129, 255, 256, 16383, 16384, 1 << 20}
	for i, kl := range lens[:len(lens)-1] {
		for j, vl := range lens {
			k := strings.Repeat(string(rune('a'+i)), kl)
			v := strings.Repeat(string(rune('A'+j)), vl)
			c.apply(k, v, uint64(j+1))
			c.applyEntry(k, Entry{Value: v, Version: uint64(j + 1), Deleted: true}) // refused: not newer
		}
	}
	c.full()
}

// TestBackwardShiftWrap fills one table so that a cluster of occupied slots
// wraps around the end of the slot array, then purges keys from the
// middle of clusters, in many orders: every remaining key must still be
// found, and the table stay consistent.
func TestBackwardShiftWrap(t *testing.T) {
	const size = 64 // the table size 25..48 keys grow to
	mask := uint64(size - 1)
	for round := range 40 {
		rng := rand.New(rand.NewPCG(uint64(round), 2))
		c := newChecker(t, 1)
		// Keys whose home slots are the last few and the first few: their
		// cluster wraps; and a few homed in the middle, a cluster apart.
		var keys []string
		var tail, head, mid int
		for i := 0; tail+head+mid < 40; i++ {
			k := fmt.Sprintf("r%d-%d", round, i)
			switch h := c.s.home(k, mask); {
			case h >= size-6 && tail < 18:
				tail++
			case h < 4 && head < 14:
				head++
			case h >= 30 && h < 33 && mid < 8:
				mid++
			default:
				continue
			}
			keys = append(keys, k)
		}
		rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for i, k := range keys {
			c.apply(k, "value of "+k, uint64(i+1))
		}
		tb := &c.s.shards[0].table
		if len(tb.tags) != size {
			t.Fatalf("table of %d slots, want %d", len(tb.tags), size)
		}
		wrapped := false
		for j := range size / 2 {
			if tb.tags[j] != 0 && c.s.home(tb.recs[j].key(), mask) >= size-8 {
				wrapped = true
			}
		}
		if !wrapped || tb.tags[size-1] == 0 {
			t.Fatalf("no cluster wraps around the end of the table: %v", tb.tags)
		}
		c.full()
		// Purge from the middle of the clusters first (slots whose
		// neighbours are both occupied), then the rest in random order.
		var order []string
		for _, j := range []int{size - 2, 0, 2, 31} {
			prev, next := (j-1)&int(mask), (j+1)&int(mask)
			if tb.tags[j] != 0 && tb.tags[prev] != 0 && tb.tags[next] != 0 {
				order = append(order, tb.recs[j].key())
			}
		}
		if len(order) == 0 {
			t.Fatalf("no slot in the middle of a cluster: %v", tb.tags)
		}
		for _, k := range keys {
			if !slices.Contains(order, k) {
				order = append(order, k)
			}
		}
		rng.Shuffle(len(order)-1, func(i, j int) { order[i+1], order[j+1] = order[j+1], order[i+1] })
		for n, k := range order {
			c.purge("absent-"+k, ^uint64(0)) // a miss walks the cluster
			c.purge(k, 0)                    // refused: the key is newer
			c.purge(k, ^uint64(0))
			for _, other := range order[n+1:] {
				if _, ok := c.s.Get(other); !ok {
					t.Fatalf("round %d: after purging %q, %q is not found", round, k, other)
				}
			}
			checkTables(t, c.s)
		}
		if tb.used != 0 || len(tb.tags) != size {
			t.Fatalf("emptied table: %d slots used of %d", tb.used, len(tb.tags))
		}
	}
}

// liveHeap returns the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestOverwriteFreesRecords overwrites the same keys many times (values,
// tombstones, values again): the live heap must not grow with the number
// of overwrites, so replaced records are freed.
func TestOverwriteFreesRecords(t *testing.T) {
	const keys, rounds, vsize = 2000, 100, 1024
	s := New(0)
	value := strings.Repeat("x", vsize)
	for i := range keys {
		s.Apply(fmt.Sprint("key-", i), value, 1)
	}
	before := liveHeap()
	for r := range rounds {
		for i := range keys {
			k := fmt.Sprint("key-", i)
			if r%10 == 5 {
				s.ApplyEntry(k, Entry{Version: uint64(r + 2), Deleted: true})
			} else {
				s.Apply(k, value, uint64(r+2))
			}
		}
	}
	after := liveHeap()
	runtime.KeepAlive(s)
	// rounds*keys*vsize (~200 MiB) were stored; the live set is ~2 MiB.
	const bound = 4 << 20
	if after > before+bound {
		t.Fatalf("live heap grew by %d bytes over %d overwrites of %d keys (bound %d): replaced records are kept",
			after-before, rounds, keys, bound)
	}
	if s.Len() != keys || s.Tombstones() != 0 {
		t.Fatalf("Len %d, Tombstones %d; want %d, 0", s.Len(), s.Tombstones(), keys)
	}
}

// TestStringsOutliveRecords checks that strings the store handed out (a
// Get value, Range and Snapshot keys and values) stay intact after the key
// is overwritten and purged and its memory could be reused.
func TestStringsOutliveRecords(t *testing.T) {
	s := New(1)
	want := "the original value, " + strings.Repeat("0123456789", 10)
	s.Apply("k", want, 1)
	got, _ := s.Get("k")
	var rangeKey, rangeValue, snapKey, snapValue string
	s.Range(func(k string, e Entry) bool { rangeKey, rangeValue = k, e.Value; return true })
	_ = s.Snapshot(func(k string, e Entry) error { snapKey, snapValue = k, e.Value; return nil })

	s.Apply("k", strings.Repeat("#", len(want)), 2)
	if !s.Purge("k", 2) {
		t.Fatal("Purge refused")
	}
	// Recycle freed memory of the record's size class with other bytes.
	for range 50 {
		junk := make([][]byte, 10000)
		for i := range junk {
			junk[i] = bytes128()
		}
		runtime.GC()
	}
	if got.Value != want || rangeValue != want || snapValue != want {
		t.Fatalf("values changed after overwrite and purge: Get %q, Range %q, Snapshot %q", got.Value, rangeValue, snapValue)
	}
	if rangeKey != "k" || snapKey != "k" {
		t.Fatalf("keys changed after overwrite and purge: Range %q, Snapshot %q", rangeKey, snapKey)
	}
}

//go:noinline
func bytes128() []byte {
	b := make([]byte, 128)
	for i := range b {
		b[i] = 0xff
	}
	return b
}

// TestCopiesCallerStrings checks that the store keeps its own copies of the
// key and value it is given, never the caller's memory.
func TestCopiesCallerStrings(t *testing.T) {
	s := New(1)
	kb, vb := []byte("caller-key"), []byte("caller-value")
	k, v := unsafe.String(&kb[0], len(kb)), unsafe.String(&vb[0], len(vb))
	s.Apply(k, v, 1)
	copy(kb, "XXXXXXXXXX")
	copy(vb, "YYYYYYYYYYYY")
	e, ok := s.Get("caller-key")
	if !ok || e.Value != "caller-value" {
		t.Fatalf("after the caller reused its buffers: Get = %+v, %v; want the value as applied", e, ok)
	}
	if _, ok := s.Get("XXXXXXXXXX"); ok {
		t.Fatal("the store holds the caller's key memory")
	}
}

// TestTableSizes checks that an empty store stays small and that tables
// grow by doubling within the load bound.
func TestTableSizes(t *testing.T) {
	s := New(0)
	for i := range s.shards {
		if n := len(s.shards[i].tags); n != minSlots {
			t.Fatalf("empty shard %d has %d slots, want %d", i, n, minSlots)
		}
	}
	s = New(1)
	tb := &s.shards[0].table
	for i := range 10000 {
		s.Apply(fmt.Sprint(i), "", 1)
		if n := len(tb.tags); (i+1)*maxLoadDen > n*maxLoadNum || (n > minSlots && (i+1)*maxLoadDen*2 <= n*maxLoadNum) {
			t.Fatalf("%d keys in a table of %d slots", i+1, n)
		}
	}
	checkTables(t, s)
}

// TestShardLayout checks that shards fill whole cache lines (so that
// neighbouring shards' locks never share one) and the hash bit split.
func TestShardLayout(t *testing.T) {
	if size := unsafe.Sizeof(shard{}); size%64 != 0 {
		t.Errorf("a shard is %d bytes, not a multiple of 64", size)
	}
	for _, n := range []int{1, 2, 256, 1000} {
		s := New(n)
		if 1<<s.shift != len(s.shards) || s.mask != uint64(len(s.shards)-1) {
			t.Errorf("New(%d): %d shards, shift %d, mask %#x", n, len(s.shards), s.shift, s.mask)
		}
	}
}

// TestConcurrentGrowPurge runs writers that insert new keys (tables grow),
// a purger that removes them (backward shifts) and readers of keys that
// are never purged, which must always be found with their value; under
// -race it also checks the locking of growth and removal.
func TestConcurrentGrowPurge(t *testing.T) {
	s := New(4)
	const stable = 200
	for i := range stable {
		s.Apply(fmt.Sprint("stable-", i), fmt.Sprint("value-", i), 1)
	}
	var wg sync.WaitGroup
	var stop, written atomic.Bool
	errs := make(chan error, 8)
	const news = 5000 // per writer; the purger removes the first half
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range news {
				s.Apply(fmt.Sprint("new-", w, "-", i), "v", uint64(i+1))
			}
		}()
	}
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		for done := false; !done; {
			done = written.Load() // one more pass after the writers finish
			for i := range news / 2 {
				for w := range 2 {
					s.Purge(fmt.Sprint("new-", w, "-", i), ^uint64(0))
				}
			}
		}
	}()
	var rwg sync.WaitGroup
	for r := range 2 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for i := r; !stop.Load(); i++ {
				k := i % stable
				e, ok := s.Get(fmt.Sprint("stable-", k))
				if want := fmt.Sprint("value-", k); !ok || e.Value != want {
					errs <- fmt.Errorf("stable-%d = %+v, %v; want %q", k, e, ok, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	written.Store(true)
	pwg.Wait()
	stop.Store(true)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if want := stable + 2*news/2; s.Len() != want {
		t.Fatalf("Len = %d, want %d", s.Len(), want)
	}
	checkTables(t, s)
}

// TestSnapshotError checks that Snapshot stops at fn's first error and
// returns it.
func TestSnapshotError(t *testing.T) {
	s := New(4)
	for i := range 100 {
		s.Apply(fmt.Sprint(i), "v", 1)
	}
	stop := errors.New("stop")
	n := 0
	err := s.Snapshot(func(string, Entry) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if err != stop || n != 10 {
		t.Fatalf("Snapshot = %v after %d calls; want %v after 10", err, n, stop)
	}
}

// FuzzStore decodes its input into operations on a store and checks each
// against the map model. Each operation takes four bytes: the operation
// (apply, tombstone, purge, get, or a burst of inserts that grows tables),
// the key (one of the special keys, or up to 7 bytes taken from the input),
// the version, and the value's length.
func FuzzStore(f *testing.F) {
	f.Add([]byte{0, 0x80, 1, 3, 1, 0x80, 2, 0, 2, 0x80, 2, 0, 3, 0x80, 0, 0})
	f.Add([]byte{4, 1, 1, 0, 2, 0x85, 9, 0, 4, 2, 3, 0, 2, 0x83, 1, 0, 3, 0x87, 0, 0})
	f.Add([]byte("\x00\x03abc\x05\x10\x01\x03abc\x06\x00\x02\x03abc\x07\x00"))
	fz := newFuzzer()
	f.Fuzz(func(t *testing.T, data []byte) { fz.run(t, data) })
}

// fuzzer runs FuzzStore's inputs.
type fuzzer struct {
	special []string
	big     string
	// One hash seed for every input this process runs: with a seed of
	// its own per store, probe sequences (and so coverage) would differ
	// from run to run of the same input.
	seed maphash.Seed
}

func newFuzzer() *fuzzer {
	return &fuzzer{special: specialKeys(), big: strings.Repeat("\xfe", 300), seed: maphash.MakeSeed()}
}

// run decodes data into operations (at most 500) and checks each.
func (fz *fuzzer) run(tb testing.TB, data []byte) {
	c := newChecker(tb, 2)
	c.s.seed = fz.seed
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	for n := 0; len(data) > 0 && n < 500; n++ {
		op, kb := next(), next()
		var key string
		if kb&0x80 != 0 {
			key = fz.special[int(kb&0x7f)%len(fz.special)]
		} else {
			kl := min(int(kb&7), len(data))
			key = string(data[:kl])
			data = data[kl:]
		}
		version := uint64(next())
		vl := int(next())
		if vl > 250 {
			vl = 128 + (vl-250)*34 // past the one-byte varint
		}
		value := fz.big[:vl]
		switch op % 5 {
		case 0:
			c.apply(key, value, version)
		case 1:
			c.applyEntry(key, Entry{Value: value, Version: version, Deleted: true})
		case 2:
			c.purge(key, version)
		case 3:
			c.op++
			c.get(key)
		case 4: // a burst of new keys: tables grow
			for i := range 8 + int(version%32) {
				c.apply("g"+strconv.Itoa(int(kb))+"-"+strconv.Itoa(i), value, version)
			}
		}
	}
	c.full()
}
