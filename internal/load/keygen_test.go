package load

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// opDistances simulates n operations at the given write ratio and returns,
// for each read of a key written before, how many operations ago the
// latest write of that key was, plus the number of reads.
func opDistances(t *testing.T, cfg KeyConfig, writeRatio float64, n int) (dist []int, reads int) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	g := NewKeyGen(cfg, rng)
	lastWrite := map[string]int{}
	for i := range n {
		if rng.Float64() < writeRatio {
			lastWrite[g.Write()] = i
			continue
		}
		reads++
		if w, ok := lastWrite[g.Read()]; ok {
			dist = append(dist, i-w)
		}
	}
	return dist, reads
}

func TestKeyGenLocality(t *testing.T) {
	cfg := DefaultKeyConfig()
	cfg.Keys = 1_000_000
	dist, reads := opDistances(t, cfg, 0.5, 20000)
	if hit := float64(len(dist)) / float64(reads); hit < 0.85 {
		t.Errorf("only %.2f of reads hit a written key; want >= 0.85 (HotRead 0.9)", hit)
	}
	slices.Sort(dist)
	if p50, p90 := dist[len(dist)/2], dist[len(dist)*9/10]; p50 > 4 || p90 > 20 {
		t.Errorf("write->read distance p50 %d p90 %d operations; want concentrated (<= 4, <= 20)", p50, p90)
	}
}

func TestKeyGenUniformWhenNotHot(t *testing.T) {
	cfg := DefaultKeyConfig()
	cfg.Keys = 1_000_000
	cfg.HotRead, cfg.HotWrite = 0, 0
	dist, reads := opDistances(t, cfg, 0.5, 20000)
	if hit := float64(len(dist)) / float64(reads); hit > 0.05 {
		t.Errorf("uniform reads hit written keys %.2f of the time; want ~0", hit)
	}
}

func TestKeyGenRecentSetBounded(t *testing.T) {
	cfg := DefaultKeyConfig()
	cfg.HotKeys, cfg.HotWrite = 3, 1
	g := NewKeyGen(cfg, rand.New(rand.NewPCG(3, 4)))
	for range 100 {
		g.Write()
		if len(g.recent) > 3 {
			t.Fatalf("recent set grew to %d", len(g.recent))
		}
		seen := map[int]bool{}
		for _, k := range g.recent {
			if seen[k] {
				t.Fatalf("duplicate key in recent set %v", g.recent)
			}
			seen[k] = true
		}
	}
}

func TestKeyGenRecencyOnePicksNewest(t *testing.T) {
	cfg := DefaultKeyConfig()
	cfg.Recency, cfg.HotRead, cfg.Prefix = 1, 1, "p-"
	g := NewKeyGen(cfg, rand.New(rand.NewPCG(5, 6)))
	for range 50 {
		w := g.Write()
		if r := g.Read(); r != w {
			t.Fatalf("read %q after writing %q with recency 1", r, w)
		}
	}
}

func TestKeyConfigValidate(t *testing.T) {
	bad := []KeyConfig{
		{Keys: 0, HotKeys: 1, Recency: 0.5},
		{Keys: 1, HotKeys: 0, Recency: 0.5},
		{Keys: 1, HotKeys: 1, Recency: 0},
		{Keys: 1, HotKeys: 1, Recency: 1.5},
		{Keys: 1, HotKeys: 1, Recency: 0.5, HotRead: -0.1},
		{Keys: 1, HotKeys: 1, Recency: 0.5, HotWrite: 2},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	good := DefaultKeyConfig()
	if err := good.Validate(); err != nil {
		t.Error(err)
	}
}
