package store

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
)

func TestNewRoundsShards(t *testing.T) {
	for _, tc := range []struct {
		in, want int
	}{
		{-1, DefaultShards},
		{0, DefaultShards},
		{1, 1},
		{2, 2},
		{3, 4},
		{100, 128},
		{256, 256},
	} {
		s := New(tc.in)
		if got := len(s.shards); got != tc.want {
			t.Errorf("New(%d): %d shards, want %d", tc.in, got, tc.want)
		}
		if s.mask != uint64(tc.want-1) {
			t.Errorf("New(%d): mask %d, want %d", tc.in, s.mask, tc.want-1)
		}
	}
}

func TestApplyGet(t *testing.T) {
	type op struct {
		key, value string
		version    uint64
		wantOK     bool  // applied
		wantHeld   Entry // entry returned by Apply
	}
	tests := []struct {
		name string
		ops  []op
		key  string
		want Entry
		ok   bool
	}{
		{
			name: "absent key",
			key:  "missing",
		},
		{
			name: "first write applies",
			ops:  []op{{"k", "v1", 1, true, Entry{Value: "v1", Version: 1}}},
			key:  "k", want: Entry{Value: "v1", Version: 1}, ok: true,
		},
		{
			name: "newer version applies",
			ops: []op{
				{"k", "v1", 1, true, Entry{Value: "v1", Version: 1}},
				{"k", "v5", 5, true, Entry{Value: "v5", Version: 5}},
			},
			key: "k", want: Entry{Value: "v5", Version: 5}, ok: true,
		},
		{
			name: "equal version refused",
			ops: []op{
				{"k", "v3", 3, true, Entry{Value: "v3", Version: 3}},
				{"k", "other", 3, false, Entry{Value: "v3", Version: 3}},
			},
			key: "k", want: Entry{Value: "v3", Version: 3}, ok: true,
		},
		{
			name: "older version refused",
			ops: []op{
				{"k", "v7", 7, true, Entry{Value: "v7", Version: 7}},
				{"k", "v2", 2, false, Entry{Value: "v7", Version: 7}},
			},
			key: "k", want: Entry{Value: "v7", Version: 7}, ok: true,
		},
		{
			name: "out of order arrival converges on newest",
			ops: []op{
				{"k", "v3", 3, true, Entry{Value: "v3", Version: 3}},
				{"k", "v1", 1, false, Entry{Value: "v3", Version: 3}},
				{"k", "v4", 4, true, Entry{Value: "v4", Version: 4}},
				{"k", "v2", 2, false, Entry{Value: "v4", Version: 4}},
			},
			key: "k", want: Entry{Value: "v4", Version: 4}, ok: true,
		},
		{
			name: "empty value is a value",
			ops:  []op{{"k", "", 1, true, Entry{Value: "", Version: 1}}},
			key:  "k", want: Entry{Value: "", Version: 1}, ok: true,
		},
		{
			name: "other keys are independent",
			ops: []op{
				{"a", "va", 9, true, Entry{Value: "va", Version: 9}},
				{"b", "vb", 1, true, Entry{Value: "vb", Version: 1}},
			},
			key: "b", want: Entry{Value: "vb", Version: 1}, ok: true,
		},
		{
			name: "empty key is an ordinary key",
			ops:  []op{{"", "x", 2, true, Entry{Value: "x", Version: 2}}},
			key:  "", want: Entry{Value: "x", Version: 2}, ok: true,
		},
		{
			name: "max version",
			ops:  []op{{"k", "max", ^uint64(0), true, Entry{Value: "max", Version: ^uint64(0)}}},
			key:  "k", want: Entry{Value: "max", Version: ^uint64(0)}, ok: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(4)
			for i, o := range tc.ops {
				held, ok := s.Apply(o.key, o.value, o.version)
				if ok != o.wantOK || held != o.wantHeld {
					t.Fatalf("op %d Apply(%q,%q,%d) = %+v,%v; want %+v,%v", i, o.key, o.value, o.version, held, ok, o.wantHeld, o.wantOK)
				}
			}
			got, ok := s.Get(tc.key)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("Get(%q) = %+v,%v; want %+v,%v", tc.key, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestLenMaxVersionRange(t *testing.T) {
	s := New(8)
	if s.Len() != 0 || s.MaxVersion() != 0 {
		t.Fatalf("empty store: Len=%d MaxVersion=%d", s.Len(), s.MaxVersion())
	}
	n := 0
	s.Range(func(string, Entry) bool { n++; return true })
	if n != 0 {
		t.Fatalf("Range over empty store visited %d keys", n)
	}

	want := map[string]Entry{}
	for i := range 100 {
		k := fmt.Sprintf("key-%03d", i)
		v := uint64(i*7%101 + 1)
		s.Apply(k, "first", v)
		// A refused and an applied update must not change Len.
		s.Apply(k, "stale", v)
		s.Apply(k, fmt.Sprint("v", i), v+1)
		want[k] = Entry{Value: fmt.Sprint("v", i), Version: v + 1}
	}
	if got := s.Len(); got != 100 {
		t.Errorf("Len = %d, want 100", got)
	}
	var max uint64
	for _, e := range want {
		max = maxU(max, e.Version)
	}
	if got := s.MaxVersion(); got != max {
		t.Errorf("MaxVersion = %d, want %d", got, max)
	}

	got := map[string]Entry{}
	s.Range(func(k string, e Entry) bool {
		if _, dup := got[k]; dup {
			t.Errorf("Range visited %q twice", k)
		}
		got[k] = e
		return true
	})
	if len(got) != len(want) {
		t.Fatalf("Range visited %d keys, want %d", len(got), len(want))
	}
	for k, e := range want {
		if got[k] != e {
			t.Errorf("Range %q = %+v, want %+v", k, got[k], e)
		}
	}

	for _, stop := range []int{1, 2, 50} {
		visited := 0
		s.Range(func(string, Entry) bool { visited++; return visited < stop })
		if visited != stop {
			t.Errorf("Range stopping after %d visited %d", stop, visited)
		}
	}
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// TestConcurrentApply has many goroutines apply random versions to a few
// keys while readers watch: the final version of every key is the highest
// issued, and no reader ever sees a key's version go down.
func TestConcurrentApply(t *testing.T) {
	const (
		writers    = 16
		readers    = 4
		keys       = 4
		perWriter  = 1000
		maxVersion = 1 << 20
	)
	s := New(0)
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprint("hot-", i)
	}
	var issued [keys]atomic.Uint64 // highest version issued per key
	var wgW, wgR sync.WaitGroup
	var stop atomic.Bool
	errs := make(chan error, readers)

	for r := range readers {
		wgR.Add(1)
		go func() {
			defer wgR.Done()
			last := make([]uint64, keys)
			for i := 0; !stop.Load(); i++ {
				k := (i + r) % keys
				e, ok := s.Get(names[k])
				if !ok {
					if last[k] != 0 {
						errs <- fmt.Errorf("key %s disappeared after version %d", names[k], last[k])
						return
					}
					continue
				}
				if e.Version < last[k] {
					errs <- fmt.Errorf("key %s went back from version %d to %d", names[k], last[k], e.Version)
					return
				}
				if want := fmt.Sprint("v", e.Version); e.Value != want {
					errs <- fmt.Errorf("key %s version %d holds value %q, want %q", names[k], e.Version, e.Value, want)
					return
				}
				last[k] = e.Version
			}
		}()
	}
	for w := range writers {
		wgW.Add(1)
		go func() {
			defer wgW.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for range perWriter {
				k := rng.IntN(keys)
				v := rng.Uint64N(maxVersion) + 1
				for {
					cur := issued[k].Load()
					if v <= cur || issued[k].CompareAndSwap(cur, v) {
						break
					}
				}
				held, applied := s.Apply(names[k], fmt.Sprint("v", v), v)
				if applied && held.Version != v {
					t.Errorf("applied version %d but holds %d", v, held.Version)
				}
				if held.Version < v {
					t.Errorf("Apply(%d) left version %d, lower than the update", v, held.Version)
				}
			}
		}()
	}
	wgW.Wait()
	stop.Store(true)
	wgR.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.Len(); got != keys {
		t.Errorf("Len = %d, want %d", got, keys)
	}
	var max uint64
	for k := range keys {
		e, ok := s.Get(names[k])
		if want := issued[k].Load(); !ok || e.Version != want {
			t.Errorf("key %s: final version %d (found %v), want the highest issued %d", names[k], e.Version, ok, want)
		}
		max = maxU(max, issued[k].Load())
	}
	if got := s.MaxVersion(); got != max {
		t.Errorf("MaxVersion = %d, want %d", got, max)
	}
}

// TestConcurrentNewKeys checks Len under concurrent first writes of the same
// keys: each key is counted once however many writers race to create it.
func TestConcurrentNewKeys(t *testing.T) {
	s := New(16)
	const keys, writers = 500, 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				s.Apply(fmt.Sprint("k", i), "v", uint64(w+1))
			}
		}()
	}
	wg.Wait()
	if got := s.Len(); got != keys {
		t.Fatalf("Len = %d, want %d", got, keys)
	}
	var seen []string
	s.Range(func(k string, e Entry) bool {
		if e.Version != writers {
			t.Errorf("%s holds version %d, want %d", k, e.Version, writers)
		}
		seen = append(seen, k)
		return true
	})
	sort.Strings(seen)
	if len(seen) != keys {
		t.Fatalf("Range saw %d keys, want %d", len(seen), keys)
	}
}
