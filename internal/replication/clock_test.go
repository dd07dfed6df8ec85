package replication

import (
	"sync"
	"testing"
)

func TestLeaderClockCounts(t *testing.T) {
	c := newClock(false, 3) // the index plays no part in leader-follower mode
	for want := uint64(1); want <= 3; want++ {
		if got := c.Next(); got != want {
			t.Fatalf("Next = %d, want %d", got, want)
		}
	}
	c.Observe(10)
	if got := c.Next(); got != 11 {
		t.Fatalf("after Observe(10): Next = %d, want 11", got)
	}
	c.Observe(5) // older: no effect
	if got := c.Next(); got != 12 {
		t.Fatalf("after Observe(5): Next = %d, want 12", got)
	}
}

func TestLeaderlessClockTieBreak(t *testing.T) {
	a, b := newClock(true, 0), newClock(true, 1)
	seen := map[uint64]string{}
	for i := range 1000 {
		va, vb := a.Next(), b.Next()
		if va == vb {
			t.Fatalf("step %d: both clocks issued %d", i, va)
		}
		if va&(MaxNodes-1) != 0 || vb&(MaxNodes-1) != 1 {
			t.Fatalf("step %d: versions %d, %d do not carry their node index", i, va, vb)
		}
		// Same counter: the index breaks the tie, counters order first.
		if va>>nodeBits != vb>>nodeBits || va >= vb {
			t.Fatalf("step %d: va=%d vb=%d, want same counter and va < vb", i, va, vb)
		}
		for v, who := range map[uint64]string{va: "a", vb: "b"} {
			if prev, dup := seen[v]; dup {
				t.Fatalf("version %d issued by %s and %s", v, prev, who)
			}
			seen[v] = who
		}
	}
}

func TestLeaderlessClockObserve(t *testing.T) {
	a, b := newClock(true, 0), newClock(true, 7)
	for range 5 {
		a.Next()
	}
	va := a.Next() // counter 6 at index 0
	b.Observe(va)
	vb := b.Next()
	if vb <= va {
		t.Fatalf("after observing %d, b issued %d: must be newer", va, vb)
	}
	if vb&(MaxNodes-1) != 7 {
		t.Fatalf("b's version %d lost its index", vb)
	}
	// Observing a version from the same counter but a higher index still
	// moves past it.
	c := newClock(true, 0)
	c.Observe(vb)
	if vc := c.Next(); vc <= vb {
		t.Fatalf("c issued %d after observing %d", vc, vb)
	}
	// Observing an older version never moves the clock back.
	before := a.Next()
	a.Observe(1)
	if after := a.Next(); after <= before {
		t.Fatalf("Observe(1) moved the clock back: %d then %d", before, after)
	}
}

func TestClockConcurrentNextUnique(t *testing.T) {
	for _, tc := range []struct {
		name       string
		leaderless bool
		index      int
	}{
		{"leader", false, 0},
		{"leaderless", true, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock(tc.leaderless, tc.index)
			const goroutines, each = 8, 500
			out := make([][]uint64, goroutines)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						v := c.Next()
						if i%50 == 0 {
							c.Observe(v) // concurrent observes of own versions are harmless
						}
						out[g] = append(out[g], v)
					}
				}()
			}
			wg.Wait()
			seen := make(map[uint64]bool, goroutines*each)
			for g, vs := range out {
				for i, v := range vs {
					if seen[v] {
						t.Fatalf("version %d issued twice", v)
					}
					seen[v] = true
					if i > 0 && v <= vs[i-1] {
						t.Fatalf("goroutine %d: version %d after %d", g, v, vs[i-1])
					}
					if tc.leaderless && v&(MaxNodes-1) != uint64(tc.index) {
						t.Fatalf("version %d lost the node index", v)
					}
				}
			}
		})
	}
}
