package replication

import "sync/atomic"

// nodeBits is the number of low version bits that carry the coordinator's
// node index in leaderless mode; it bounds a cluster at 1<<nodeBits nodes.
const nodeBits = 10

// MaxNodes is the largest cluster the version encoding supports.
const MaxNodes = 1 << nodeBits

// Clock issues write versions.
//
// In leader-follower mode (shift 0) it is a plain counter: the leader
// assigns 1, 2, 3, ... In leaderless mode it is a Lamport clock whose
// versions are counter<<nodeBits | index, so two coordinators never issue the
// same version and versions still order by the counter first. Observe moves
// the counter past any version seen from another node.
type Clock struct {
	counter atomic.Uint64
	shift   uint
	index   uint64
}

func newClock(leaderless bool, index int) *Clock {
	c := &Clock{index: uint64(index)}
	if leaderless {
		c.shift = nodeBits
	}
	return c
}

// Next returns a version greater than every version issued or observed.
func (c *Clock) Next() uint64 {
	return c.counter.Add(1)<<c.shift | (c.index & (1<<c.shift - 1))
}

// Observe records a version seen from elsewhere.
func (c *Clock) Observe(v uint64) {
	n := v >> c.shift
	for {
		cur := c.counter.Load()
		if n <= cur || c.counter.CompareAndSwap(cur, n) {
			return
		}
	}
}

// Raise moves the counter up to at least v, so the next version is above
// it (a new leader starts its term's versions at term<<termShift).
func (c *Clock) Raise(v uint64) { c.Observe(v << c.shift) }
