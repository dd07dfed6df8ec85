package load

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
)

// KeyConfig configures the local-in-time key generator.
//
// Keys are drawn from a key space of Keys names. The generator remembers
// the HotKeys most recently written keys, newest first. A read draws from
// that recent set with probability HotRead, otherwise uniformly from the
// whole key space; a write rewrites a recent key with probability
// HotWrite, otherwise it picks a key uniformly. Within the recent set the
// i-th newest key (i = 0, 1, ...) is chosen with probability proportional
// to (1-Recency)^i, so with the default 0.5 half of the hot draws hit the
// key written last. Reads and writes of one key thus cluster in time
// (within a few operations of each other) however large the key space.
type KeyConfig struct {
	// Keys is the size of the key space (default 1000).
	Keys int `json:"keys"`
	// HotKeys is how many recently written keys are remembered (default 8).
	HotKeys int `json:"hot_keys"`
	// HotRead is the probability a read picks a recently written key
	// (default 0.9 in DefaultConfig; 0 makes reads uniform).
	HotRead float64 `json:"hot_read"`
	// HotWrite is the probability a write rewrites a recently written key
	// (default 0.5 in DefaultConfig).
	HotWrite float64 `json:"hot_write"`
	// Recency is the geometric decay over the recent set, in (0, 1]:
	// 1 always picks the newest key (default 0.5).
	Recency float64 `json:"recency"`
	// Prefix starts every key name (the run id and a dash by default), so
	// runs against one cluster do not read each other's keys.
	Prefix string `json:"prefix"`
}

// DefaultKeyConfig returns the documented defaults.
func DefaultKeyConfig() KeyConfig {
	return KeyConfig{Keys: 1000, HotKeys: 8, HotRead: 0.9, HotWrite: 0.5, Recency: 0.5}
}

// SetDefaults fills the zero fields whose zero value is invalid.
func (c *KeyConfig) SetDefaults() {
	d := DefaultKeyConfig()
	if c.Keys == 0 {
		c.Keys = d.Keys
	}
	if c.HotKeys == 0 {
		c.HotKeys = d.HotKeys
	}
	if c.Recency == 0 {
		c.Recency = d.Recency
	}
}

// Validate reports invalid settings.
func (c *KeyConfig) Validate() error {
	var errs []error
	if c.Keys < 1 {
		errs = append(errs, fmt.Errorf("keys %d: must be at least 1", c.Keys))
	}
	if c.HotKeys < 1 {
		errs = append(errs, fmt.Errorf("hot-keys %d: must be at least 1", c.HotKeys))
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"hot-read", c.HotRead}, {"hot-write", c.HotWrite}} {
		if !(p.v >= 0 && p.v <= 1) {
			errs = append(errs, fmt.Errorf("%s %v: must be a probability in [0, 1]", p.name, p.v))
		}
	}
	if !(c.Recency > 0 && c.Recency <= 1) {
		errs = append(errs, fmt.Errorf("recency %v: must be in (0, 1]", c.Recency))
	}
	if len(c.Prefix) > 200 {
		errs = append(errs, errors.New("key prefix longer than 200 bytes"))
	}
	return errors.Join(errs...)
}

// KeyGen generates keys local in time. It is not safe for concurrent use.
type KeyGen struct {
	cfg    KeyConfig
	rng    *rand.Rand
	recent []int // recently written key indexes, newest first
}

// NewKeyGen returns a generator drawing from rng. cfg must be valid.
func NewKeyGen(cfg KeyConfig, rng *rand.Rand) *KeyGen {
	return &KeyGen{cfg: cfg, rng: rng, recent: make([]int, 0, cfg.HotKeys)}
}

// Write returns the key of the next write and remembers it as recent.
func (g *KeyGen) Write() string {
	k := g.draw(g.cfg.HotWrite)
	if i := slices.Index(g.recent, k); i >= 0 {
		g.recent = slices.Delete(g.recent, i, i+1)
	} else if len(g.recent) == g.cfg.HotKeys {
		g.recent = g.recent[:len(g.recent)-1]
	}
	g.recent = slices.Insert(g.recent, 0, k)
	return g.name(k)
}

// Read returns the key of the next read.
func (g *KeyGen) Read() string { return g.name(g.draw(g.cfg.HotRead)) }

// draw picks a recent key with probability hot, else a uniform one.
func (g *KeyGen) draw(hot float64) int {
	if len(g.recent) > 0 && g.rng.Float64() < hot {
		i := 0
		for i < len(g.recent)-1 && g.rng.Float64() >= g.cfg.Recency {
			i++
		}
		return g.recent[i]
	}
	return g.rng.IntN(g.cfg.Keys)
}

func (g *KeyGen) name(k int) string { return g.cfg.Prefix + "k" + strconv.Itoa(k) }
