package pbs

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

// grid returns t = 0, step, 2*step, ... up to and including until.
func grid(step, until time.Duration) []time.Duration {
	var ts []time.Duration
	for t := time.Duration(0); t <= until; t += step {
		ts = append(ts, t)
	}
	return ts
}

// expo is an exponential distribution with the given mean.
func expo(mean time.Duration) Dist {
	return Func(func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * float64(mean)) })
}

func mustPredict(t *testing.T, m Model, ts []time.Duration, trials int, seed uint64) []float64 {
	t.Helper()
	p, err := m.Predict(ts, trials, seed)
	if err != nil {
		t.Fatalf("Predict(%+v): %v", m, err)
	}
	return p
}

func TestAllZeroDelaysAlwaysFresh(t *testing.T) {
	zero := Constant(0)
	for _, seq := range []bool{false, true} {
		for w := 1; w <= 5; w++ {
			for r := 1; r <= 5; r++ {
				for _, rc := range []float64{0, 0.2, 1} {
					m := Model{N: 5, W: w, R: r, Sequential: seq, Write: zero, Ack: zero, ReadReq: zero, ReadResp: zero, ReadAtCoordinator: rc}
					for i, p := range mustPredict(t, m, grid(ms, 10*ms), 2000, 1) {
						if p != 1 {
							t.Errorf("seq=%v W%dR%d rc=%v: P(t=%dms) = %v, want 1", seq, w, r, rc, i, p)
						}
					}
				}
			}
		}
	}
}

func TestWEqualsNAlwaysFresh(t *testing.T) {
	for _, seq := range []bool{false, true} {
		for r := 1; r <= 5; r++ {
			m := Model{N: 5, W: 5, R: r, Sequential: seq, Gap: 3 * ms,
				Write: expo(10 * ms), Ack: expo(5 * ms), ReadReq: expo(2 * ms), ReadResp: expo(2 * ms)}
			for i, p := range mustPredict(t, m, grid(ms, 20*ms), 5000, 2) {
				if p != 1 {
					t.Errorf("seq=%v W5R%d: P(t=%dms) = %v, want 1", seq, r, i, p)
				}
			}
		}
	}
}

func TestRFullAlwaysFresh(t *testing.T) {
	for _, seq := range []bool{false, true} {
		for w := 1; w <= 5; w++ {
			for _, rc := range []float64{0, 0.2, 1} {
				m := Model{N: 5, W: w, R: 5, Sequential: seq, Gap: 3 * ms, ReadAtCoordinator: rc,
					Write: expo(10 * ms), Ack: expo(5 * ms), ReadReq: expo(2 * ms), ReadResp: expo(2 * ms)}
				for i, p := range mustPredict(t, m, grid(ms, 20*ms), 5000, 3) {
					if p != 1 {
						t.Errorf("seq=%v W%dR5 rc=%v: P(t=%dms) = %v, want 1", seq, w, rc, i, p)
					}
				}
			}
		}
	}
}

// A fixed write delay d with W=1, R=1 and reads at a peer: stale exactly
// before d, fresh from d on.
func TestFixedDelayStaleExactlyBeforeD(t *testing.T) {
	const d = 7 * ms
	m := Model{N: 5, W: 1, R: 1, Write: Constant(d), Ack: Constant(0)}
	ts := []time.Duration{-ms, 0, ms, d - time.Nanosecond, d, d + time.Nanosecond, 2 * d}
	want := []float64{0, 0, 0, 0, 1, 1, 1}
	if got := mustPredict(t, m, ts, 1000, 4); !slices.Equal(got, want) {
		t.Errorf("P at %v = %v, want %v", ts, got, want)
	}
	// Read at the coordinator: fresh from the start.
	m.ReadAtCoordinator = 1
	if got := mustPredict(t, m, ts[1:], 1000, 4); slices.ContainsFunc(got, func(p float64) bool { return p != 1 }) {
		t.Errorf("read at the coordinator: P = %v, want 1 everywhere", got)
	}
}

// The paper profile, N=5, W=1, peer k visible at 100 + (k-1)*300 ms: a
// read at a uniform peer at t is fresh with probability (peers visible by
// t)/4.
func TestSequentialPaperFloors(t *testing.T) {
	m := Model{N: 5, W: 1, R: 1, Sequential: true, Gap: 200 * ms, Write: Constant(100 * ms), Ack: Constant(0)}
	ts := []time.Duration{0, 99 * ms, 100 * ms, 399 * ms, 400 * ms, 699 * ms, 700 * ms, 999 * ms, 1000 * ms, 2000 * ms}
	want := []float64{0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1}
	got := mustPredict(t, m, ts, 100_000, 5)
	for i := range ts {
		if math.Abs(got[i]-want[i]) > 0.01 {
			t.Errorf("P(%v) = %.4f, want %.2f", ts[i], got[i], want[i])
		}
	}
	// Exactly 0 and 1 where no peer, or every peer, is visible.
	if got[1] != 0 || got[len(got)-1] != 1 {
		t.Errorf("P(99ms) = %v, P(2s) = %v, want exactly 0 and 1", got[1], got[len(got)-1])
	}
}

// With W=3 the commit is the end of step 2 (gap included): 2*(100+200) =
// 600 ms. Peers 1 and 2 are visible before it, peer 3 at 700 ms (t = 100),
// peer 4 at 1000 ms (t = 400).
func TestSequentialCommitIncludesGap(t *testing.T) {
	m := Model{N: 5, W: 3, R: 1, Sequential: true, Gap: 200 * ms, Write: Constant(100 * ms), Ack: Constant(0)}
	ts := []time.Duration{0, 99 * ms, 100 * ms, 399 * ms, 400 * ms}
	want := []float64{0.5, 0.5, 0.75, 0.75, 1}
	got := mustPredict(t, m, ts, 100_000, 6)
	for i := range ts {
		if math.Abs(got[i]-want[i]) > 0.01 {
			t.Errorf("P(%v) = %.4f, want %.2f", ts[i], got[i], want[i])
		}
	}
}

// Exact visibility and commit times of the sequential and parallel
// profiles with constant hops, against hand-computed values.
func TestWriteTimes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		name       string
		m          Model
		wantVis    []time.Duration
		wantCommit time.Duration
	}{
		{"paper W1", Model{N: 5, W: 1, Sequential: true, Gap: 200 * ms, Write: Constant(100 * ms), Ack: Constant(0)},
			[]time.Duration{0, 100 * ms, 400 * ms, 700 * ms, 1000 * ms}, 0},
		{"paper W5 with ack", Model{N: 5, W: 5, Sequential: true, Gap: 200 * ms, Write: Constant(100 * ms), Ack: Constant(10 * ms)},
			[]time.Duration{0, 100 * ms, 410 * ms, 720 * ms, 1030 * ms}, 1240 * ms},
		{"paper W3", Model{N: 5, W: 3, Sequential: true, Gap: 200 * ms, Write: Constant(100 * ms), Ack: Constant(0)},
			[]time.Duration{0, 100 * ms, 400 * ms, 700 * ms, 1000 * ms}, 600 * ms},
		{"parallel W3", Model{N: 5, W: 3, Write: Constant(100 * ms), Ack: Constant(10 * ms)},
			[]time.Duration{0, 100 * ms, 100 * ms, 100 * ms, 100 * ms}, 110 * ms},
		{"parallel W2 gap", Model{N: 3, W: 2, Gap: 5 * ms, Write: Constant(100 * ms), Ack: Constant(10 * ms)},
			[]time.Duration{0, 100 * ms, 100 * ms}, 115 * ms},
		{"single node", Model{N: 1, W: 1}, []time.Duration{0}, 0},
	} {
		vis := make([]time.Duration, tc.m.N)
		done := make([]time.Duration, tc.m.N-1)
		commit := tc.m.write(rng, vis, done)
		if !slices.Equal(vis, tc.wantVis) || commit != tc.wantCommit {
			t.Errorf("%s: visible %v commit %v, want %v and %v", tc.name, vis, commit, tc.wantVis, tc.wantCommit)
		}
	}
}

// Parallel W=2 with one slow peer: the read at a peer is fresh before the
// slow peer has the write only if it is one of the fast ones.
func TestParallelQuorumWrite(t *testing.T) {
	// N=3, W=2: write hops are 10 ms or 50 ms with equal probability. The
	// commit is the faster peer's (ack 0): 10 ms when at least one is fast.
	m := Model{N: 3, W: 2, R: 1, Ack: Constant(0),
		Write: Func(func(r *rand.Rand) time.Duration {
			if r.IntN(2) == 0 {
				return 10 * ms
			}
			return 50 * ms
		})}
	// Cases (each 1/4): both fast: fresh at 0. Both slow: commit 50, fresh
	// at 0. One fast, one slow (1/2): commit 10; a read at the fast peer
	// (1/2) fresh at 0, at the slow one from t = 40 ms.
	got := mustPredict(t, m, []time.Duration{0, 39 * ms, 40 * ms}, 200_000, 7)
	want := []float64{0.75, 0.75, 1}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 0.01 {
			t.Errorf("P = %v, want %v", got, want)
			break
		}
	}
}

// A quorum read (R=2) at a peer uses the faster of the other answers; with
// R_k = 5 ms the peer's copy is read 5 ms after the read begins.
func TestQuorumReadUsesFirstAnswers(t *testing.T) {
	// N=3, W=1, parallel, write hop 20 ms. Reads at a peer (rc = 0). The
	// reader asks the coordinator (V = 0) and the other peer; the
	// coordinator answers first when its response is faster.
	coordFirst := Model{N: 3, W: 1, R: 2, Write: Constant(20 * ms), Ack: Constant(0),
		ReadReq: Constant(5 * ms), ReadResp: Constant(ms)}
	// Every answer arrives at 6 ms: ties go to node order, the coordinator
	// (node 0) first: always fresh.
	for _, p := range mustPredict(t, coordFirst, []time.Duration{0, 10 * ms}, 1000, 8) {
		if p != 1 {
			t.Errorf("ties to the coordinator: P = %v, want 1", p)
		}
	}
	// A read at the coordinator with R=2 reads its own copy: fresh.
	atCoord := coordFirst
	atCoord.ReadAtCoordinator = 1
	if p := mustPredict(t, atCoord, []time.Duration{0}, 1000, 8); p[0] != 1 {
		t.Errorf("read at coordinator: P = %v, want 1", p)
	}
	// Slow the coordinator's answers down by making the response time
	// random: half the time the coordinator answers first (fresh), half
	// the other peer does; that peer's copy is read at t+5 ms and visible
	// at 20 ms: fresh from t = 15 ms. The reader's own copy is visible
	// from t = 20 ms.
	race := coordFirst
	race.ReadResp = Func(func(r *rand.Rand) time.Duration { return time.Duration(1+r.IntN(1000)) * time.Microsecond })
	got := mustPredict(t, race, []time.Duration{0, 14 * ms, 15 * ms, 20 * ms}, 200_000, 9)
	want := []float64{0.5, 0.5, 1, 1}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 0.01 {
			t.Errorf("race: P = %v, want about %v", got, want)
			break
		}
	}
}

// The curve is a distribution function: non-decreasing in t, 0..1.
func TestMonotone(t *testing.T) {
	m := Model{N: 5, W: 2, R: 2, Sequential: true, Gap: 20 * ms, ReadAtCoordinator: 0.2,
		Write: expo(10 * ms), Ack: expo(5 * ms), ReadReq: expo(5 * ms), ReadResp: expo(2 * ms)}
	ts := grid(2*ms, 300*ms)
	p := mustPredict(t, m, ts, 20_000, 10)
	for i := range p {
		if p[i] < 0 || p[i] > 1 || (i > 0 && p[i] < p[i-1]) {
			t.Fatalf("not a distribution function at %v: %v", ts[i], p)
		}
	}
	if p[0] >= 1 || p[len(p)-1] < 0.999 {
		t.Errorf("P(0) = %v, P(300ms) = %v: want stale reads at 0 and almost none at 300 ms", p[0], p[len(p)-1])
	}
}

func TestDeterministicBySeed(t *testing.T) {
	m := Model{N: 5, W: 1, R: 2, ReadAtCoordinator: 0.2,
		Write: Empirical([]time.Duration{ms, 3 * ms, 20 * ms}), Ack: expo(ms), ReadReq: expo(2 * ms), ReadResp: expo(ms)}
	ts := grid(ms, 30*ms)
	a := mustPredict(t, m, ts, 5000, 42)
	b := mustPredict(t, m, ts, 5000, 42)
	c := mustPredict(t, m, ts, 5000, 43)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different curves:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("different seeds, identical curves: %v", a)
	}
	// Unsorted ts give the same values per t.
	rev := slices.Clone(ts)
	slices.Reverse(rev)
	d := mustPredict(t, m, rev, 5000, 42)
	slices.Reverse(d)
	if !slices.Equal(a, d) {
		t.Errorf("order of ts changed the values")
	}
}

func TestEmpirical(t *testing.T) {
	e := Empirical([]time.Duration{-5 * ms, 2 * ms})
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[time.Duration]int{}
	for range 1000 {
		seen[e.Sample(rng)]++
	}
	if len(seen) != 2 || seen[0] < 400 || seen[2*ms] < 400 {
		t.Errorf("samples %v: want 0 (the negative clamped) and 2ms about equally", seen)
	}
	if d := Empirical(nil).Sample(rng); d != 0 {
		t.Errorf("empty empirical drew %v, want 0", d)
	}
	// Empirical copies its input.
	in := []time.Duration{ms}
	e = Empirical(in)
	in[0] = time.Hour
	if d := e.Sample(rng); d != ms {
		t.Errorf("Empirical did not copy: drew %v", d)
	}
}

func TestValidate(t *testing.T) {
	c := Constant(ms)
	ok := Model{N: 5, W: 2, R: 2, Write: c, Ack: c, ReadReq: c, ReadResp: c}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid model: %v", err)
	}
	// Read hops are not needed with R=1, write hops not with N=1.
	if err := (Model{N: 5, W: 2, R: 1, Write: c, Ack: c}).Validate(); err != nil {
		t.Errorf("R=1 without read hops: %v", err)
	}
	if err := (Model{N: 1, W: 1, R: 1}).Validate(); err != nil {
		t.Errorf("N=1 without hops: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Model)
		want string
	}{
		{"N zero", func(m *Model) { m.N, m.W, m.R = 0, 1, 1 }, "N = 0"},
		{"W zero", func(m *Model) { m.W = 0 }, "W = 0"},
		{"W above N", func(m *Model) { m.W = 6 }, "W = 6"},
		{"R zero", func(m *Model) { m.R = 0 }, "R = 0"},
		{"R above N", func(m *Model) { m.R = 6 }, "R = 6"},
		{"negative gap", func(m *Model) { m.Gap = -ms }, "Gap"},
		{"probability above 1", func(m *Model) { m.ReadAtCoordinator = 1.5 }, "ReadAtCoordinator"},
		{"probability NaN", func(m *Model) { m.ReadAtCoordinator = math.NaN() }, "ReadAtCoordinator"},
		{"no write dist", func(m *Model) { m.Write = nil }, "Write distribution missing"},
		{"no ack dist", func(m *Model) { m.Ack = nil }, "Ack distribution missing"},
		{"no read dist", func(m *Model) { m.ReadReq = nil }, "ReadReq distribution missing"},
		{"empty response samples", func(m *Model) { m.ReadResp = Empirical(nil) }, "ReadResp"},
		{"negative constant", func(m *Model) { m.Ack = Constant(-ms) }, "Ack = -1ms"},
	} {
		m := ok
		tc.edit(&m)
		err := m.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error mentioning %q", tc.name, err, tc.want)
		}
		if _, perr := m.Predict([]time.Duration{0}, 10, 1); perr == nil {
			t.Errorf("%s: Predict accepted an invalid model", tc.name)
		}
	}
	m := ok
	m.Write = Empirical(nil)
	if err := m.Validate(); !errors.Is(err, ErrNoSamples) {
		t.Errorf("empty empirical: %v, want ErrNoSamples", err)
	}
	if _, err := ok.Predict(nil, 0, 1); err == nil {
		t.Error("Predict with 0 trials: no error")
	}
}

func TestRMSE(t *testing.T) {
	for _, tc := range []struct {
		a, b []float64
		want float64
	}{
		{[]float64{0.5, 1}, []float64{0.5, 1}, 0},
		{[]float64{0.5, 1}, []float64{0.6, 0.9}, 10},
		{[]float64{1, 1, 1, 1}, []float64{1, 1, 1, 0.8}, 10},
		{[]float64{0.5, math.NaN()}, []float64{0.52, 0}, 2},
	} {
		if got := RMSE(tc.a, tc.b); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("RMSE(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	for _, tc := range [][2][]float64{{{1}, {1, 1}}, {nil, nil}, {{math.NaN()}, {1}}} {
		if got := RMSE(tc[0], tc[1]); !math.IsNaN(got) {
			t.Errorf("RMSE(%v, %v) = %v, want NaN", tc[0], tc[1], got)
		}
	}
}

// BenchmarkPredict: 100,000 trials, 50 points, a leaderless W2R2-like
// model with empirical hops.
func BenchmarkPredict(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	samples := func(mean time.Duration) Dist {
		s := make([]time.Duration, 10_000)
		for i := range s {
			s[i] = time.Duration(rng.ExpFloat64() * float64(mean))
		}
		return Empirical(s)
	}
	ts := grid(10*ms, 490*ms)
	for _, bc := range []struct {
		name string
		m    Model
	}{
		{"parallel_W2R2", Model{N: 5, W: 2, R: 2, ReadAtCoordinator: 0.2,
			Write: samples(ms), Ack: samples(ms), ReadReq: samples(ms), ReadResp: samples(ms)}},
		{"sequential_W1R1", Model{N: 5, W: 1, R: 1, Sequential: true, Gap: 200 * ms, ReadAtCoordinator: 0.2,
			Write: samples(100 * ms), Ack: samples(ms)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.m.Predict(ts, 100_000, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
