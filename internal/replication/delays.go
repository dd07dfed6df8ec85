package replication

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Delays is a storage-delay profile. The paper profile reproduces the
// original assignment: the coordinator replicates to peers one after
// another, each peer sleeps Apply before acknowledging, the coordinator
// sleeps Gap after each message, and a peer answering a coordinator's read
// sleeps Read. Client reads served from the local copy never sleep.
type Delays struct {
	// Name is "paper", "none" or "custom"; it is what /health reports.
	Name string `json:"name"`
	// Sequential sends replication messages one peer at a time, in member
	// order; otherwise they fan out in parallel.
	Sequential bool `json:"sequential"`
	// Gap is the coordinator's sleep after each replication message.
	Gap time.Duration `json:"gap"`
	// Apply is a peer's sleep before applying and acknowledging an update.
	Apply time.Duration `json:"apply"`
	// Read is a peer's sleep before answering a coordinator's read.
	Read time.Duration `json:"read"`
}

// PaperDelays is the original assignment's profile.
func PaperDelays() Delays {
	return Delays{Name: "paper", Sequential: true, Gap: 200 * time.Millisecond, Apply: 100 * time.Millisecond, Read: 50 * time.Millisecond}
}

// NoDelays is the production profile: parallel fan-out, no sleeps.
func NoDelays() Delays { return Delays{Name: "none"} }

// ParseDelays reads a profile: "paper", "none", or a custom list such as
// "gap=200ms,apply=100ms,read=50ms,sequential=true" (missing fields are zero,
// sequential defaults to true when any delay is set). "paper*0.1" scales the
// paper profile by a factor, for tests and quick runs.
func ParseDelays(s string) (Delays, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "paper":
		return PaperDelays(), nil
	case s == "none" || s == "":
		return NoDelays(), nil
	case strings.HasPrefix(s, "paper*"):
		f, err := strconv.ParseFloat(strings.TrimPrefix(s, "paper*"), 64)
		if err != nil || !(f >= 0 && f <= 100) {
			return Delays{}, fmt.Errorf("delays %q: scale must be a number in 0..100", s)
		}
		return PaperDelays().Scale(f), nil
	}
	d := Delays{Name: "custom"}
	seqSet := false
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Delays{}, fmt.Errorf("delays %q: want paper, none, paper*F or gap=D,apply=D,read=D[,sequential=BOOL]", s)
		}
		if k == "sequential" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Delays{}, fmt.Errorf("delays: sequential=%q: %w", v, err)
			}
			d.Sequential, seqSet = b, true
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur < 0 {
			return Delays{}, fmt.Errorf("delays: %s=%q is not a non-negative duration", k, v)
		}
		switch k {
		case "gap":
			d.Gap = dur
		case "apply":
			d.Apply = dur
		case "read":
			d.Read = dur
		default:
			return Delays{}, fmt.Errorf("delays: unknown field %q (want gap, apply, read, sequential)", k)
		}
	}
	if !seqSet {
		d.Sequential = d.Gap > 0 || d.Apply > 0 || d.Read > 0
	}
	return d, nil
}

// Scale returns the profile with every duration multiplied by f.
func (d Delays) Scale(f float64) Delays {
	if f == 1 {
		return d
	}
	mul := func(x time.Duration) time.Duration { return time.Duration(float64(x) * f) }
	d.Gap, d.Apply, d.Read = mul(d.Gap), mul(d.Apply), mul(d.Read)
	if d.Name == "paper" {
		d.Name = "paper*" + strconv.FormatFloat(f, 'g', -1, 64)
	}
	return d
}

// String describes the profile in the syntax ParseDelays accepts.
func (d Delays) String() string {
	if d.Name == "paper" || d.Name == "none" || strings.HasPrefix(d.Name, "paper*") {
		return d.Name
	}
	return fmt.Sprintf("gap=%s,apply=%s,read=%s,sequential=%t", d.Gap, d.Apply, d.Read, d.Sequential)
}

// WriteFloor is the least time a write waiting for w copies takes under this
// profile: w-1 replication steps of Apply+Gap when sequential, one Apply
// when parallel.
func (d Delays) WriteFloor(w int) time.Duration {
	if w <= 1 {
		return 0
	}
	if d.Sequential {
		return time.Duration(w-1) * (d.Apply + d.Gap)
	}
	return d.Apply
}

// ReadFloor is the least time a read of r replicas takes (peers are read in
// parallel, the local copy has no delay).
func (d Delays) ReadFloor(r int) time.Duration {
	if r <= 1 {
		return 0
	}
	return d.Read
}
