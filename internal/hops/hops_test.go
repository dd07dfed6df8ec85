package hops

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSplitAndSamples(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := New(0, reg)
	t0 := time.Unix(100, 0)
	r.Split(Write, Ack, t0, t0.Add(30*time.Millisecond), t0.Add(31*time.Millisecond))
	if got := r.Samples(Write); len(got) != 1 || got[0] != 30*time.Millisecond {
		t.Fatalf("write samples %v", got)
	}
	if got := r.Samples(Ack); len(got) != 1 || got[0] != time.Millisecond {
		t.Fatalf("ack samples %v", got)
	}
	// A stamp from a clock ahead of ours: the negative hop counts as zero.
	r.Split(Read, Response, t0, t0.Add(-time.Millisecond), t0.Add(time.Millisecond))
	if got := r.Samples(Read); got[0] != 0 {
		t.Fatalf("negative hop recorded as %v", got[0])
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "kvdb_hop_seconds" || len(mfs[0].GetMetric()) != 4 {
		t.Fatalf("gathered %v, %v; want kvdb_hop_seconds with 4 series", mfs, err)
	}
}

// The reservoir keeps at most its capacity, and a uniform sample: the
// mean of what it keeps is near the mean of what it saw.
func TestReservoir(t *testing.T) {
	r := New(1000, nil)
	for i := range 100_000 {
		r.Observe(Write, time.Duration(i))
	}
	s := r.Samples(Write)
	if len(s) != 1000 || r.Count(Write) != 100_000 {
		t.Fatalf("kept %d of %d", len(s), r.Count(Write))
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	if mean := float64(sum) / 1000; mean < 45_000 || mean > 55_000 {
		t.Fatalf("mean of the kept samples %.0f, want about 50000", mean)
	}
}

func TestNilRecorder(t *testing.T) {
	var r *Recorder
	r.Observe(Write, time.Second)
	r.Split(Write, Ack, time.Now(), time.Now(), time.Now())
	if r.Samples(Write) != nil || r.Count(Write) != 0 {
		t.Fatal("a nil recorder kept something")
	}
}
