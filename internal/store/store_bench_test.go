package store

// The benchmarks use only the package's exported API, so that they also
// run against another implementation of it (copied into a scratch package)
// for a side-by-side comparison.

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
)

func benchKeys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("user:%08d", i)
	}
	return ks
}

// filled returns a store holding every key of keys with value. It stores
// copies of the keys, as a server does (each decoded from a request): the
// benchmarks' own key strings are never the stored ones, or comparing keys
// would stop at equal pointers.
func filled(keys []string, value string) *Store {
	s := New(0)
	for i, k := range keys {
		s.Apply(strings.Clone(k), value, uint64(i+1))
	}
	return s
}

// BenchmarkGet reads present keys in random order: a small key space (the
// tables stay in cache) and a large one (1 M keys, lookups miss the caches).
func BenchmarkGet(b *testing.B) {
	for _, n := range []int{1 << 12, 1 << 20} {
		b.Run(fmt.Sprint("keys=", n), func(b *testing.B) {
			keys := benchKeys(n)
			s := filled(keys, "value-of-moderate-length")
			rng := rand.New(rand.NewPCG(1, 2))
			order := make([]string, 1<<16)
			for i := range order {
				order[i] = keys[rng.IntN(n)]
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, ok := s.Get(order[i&(len(order)-1)]); !ok {
					b.Fatal("missing key")
				}
			}
		})
	}
}

// BenchmarkGetMissing reads absent keys.
func BenchmarkGetMissing(b *testing.B) {
	s := filled(benchKeys(1<<12), "value-of-moderate-length")
	missing := make([]string, 1<<12)
	for i := range missing {
		missing[i] = fmt.Sprintf("absent:%08d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := s.Get(missing[i&(len(missing)-1)]); ok {
			b.Fatal("found an absent key")
		}
	}
}

// BenchmarkGetParallel reads present keys from every P.
func BenchmarkGetParallel(b *testing.B) {
	keys := benchKeys(1 << 14)
	parallelOps(b, keys, filled(keys, "value-of-moderate-length"), func(s *Store, _ *rand.Rand, k string, _ func() uint64) {
		if _, ok := s.Get(k); !ok {
			b.Fatal("missing key")
		}
	})
}

// BenchmarkApply overwrites existing keys with newer versions.
func BenchmarkApply(b *testing.B) {
	keys := benchKeys(1 << 12)
	s := filled(keys, "value-of-moderate-length")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Apply(keys[i&(len(keys)-1)], "value-of-moderate-length", uint64(len(keys)+i+1))
	}
}

// BenchmarkApplyNew inserts keys into an empty store (growth included),
// 1 M keys per store.
func BenchmarkApplyNew(b *testing.B) {
	keys := benchKeys(1 << 20)
	value := "value-of-moderate-length"
	s := New(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		j := i & (len(keys) - 1)
		if j == 0 && i > 0 {
			b.StopTimer()
			s = New(0)
			b.StartTimer()
		}
		s.Apply(keys[j], value, uint64(i+1))
	}
}

// BenchmarkApplyStale applies updates older than the version held (refused).
func BenchmarkApplyStale(b *testing.B) {
	keys := benchKeys(1 << 12)
	s := New(0)
	for _, k := range keys {
		s.Apply(strings.Clone(k), "value-of-moderate-length", 1<<40)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Apply(keys[i&(len(keys)-1)], "value-of-moderate-length", 1)
	}
}

// BenchmarkApplyParallel overwrites keys from every P.
func BenchmarkApplyParallel(b *testing.B) {
	keys := benchKeys(1 << 14)
	parallelOps(b, keys, filled(keys, "value-of-moderate-length"), func(s *Store, _ *rand.Rand, k string, version func() uint64) {
		s.Apply(k, "value-of-moderate-length", version())
	})
}

// BenchmarkParallelGetSet mixes 90% reads and 10% writes over a key space
// shared by all goroutines.
func BenchmarkParallelGetSet(b *testing.B) {
	keys := benchKeys(1 << 14)
	parallelOps(b, keys, filled(keys, "v"), func(s *Store, rng *rand.Rand, k string, version func() uint64) {
		if rng.IntN(10) == 0 {
			s.Apply(k, "value-of-moderate-length", version())
		} else {
			s.Get(k)
		}
	})
}

// parallelOps runs op on random keys from every P, each goroutine with its
// own random source; version hands out versions above every stored one.
func parallelOps(b *testing.B, keys []string, s *Store, op func(s *Store, rng *rand.Rand, key string, version func() uint64)) {
	var v atomic.Uint64
	v.Store(uint64(len(keys)))
	version := func() uint64 { return v.Add(1) }
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 7))
		for pb.Next() {
			op(s, rng, keys[rng.IntN(len(keys))], version)
		}
	})
}
