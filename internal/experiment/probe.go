package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/history"
	"github.com/kvdb/kvdb/internal/load"
	"github.com/kvdb/kvdb/internal/openloop"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/report"
)

// The staleness probe measures a config's staleness curve the way PBS's
// authors validated theirs against Cassandra: write a key, then read it at
// chosen times after the acknowledgement. The mixed workload's reads
// (steady runs) say how often a real workload reads stale data, but they
// are a poor instrument for the curve: most land within a few
// milliseconds of a write of their key (local in time), hot keys have
// several writes in flight (a read of any of them counts as fresh, which a
// model of one write cannot predict), and R>1 reads repair the replicas
// for the reads after them (WARS has no read repair). A probe has none of
// that:
//
//   - every probe writes a fresh key once, so no other write of the key is
//     in flight;
//   - it then reads the key ReadsPerWrite times, at offsets stratified
//     over the window (read j at (j+u)/k of it, u uniform in [0,1)), so
//     the buckets of t fill evenly, each read through a node drawn as the
//     workload draws them (w1r1: a follower; otherwise any node);
//   - a config whose reads repair (R>1) reads each probe once: a repairing
//     read would make the reads after it fresher than the model says.
//
// Probes run only for the configs whose quorums need not overlap
// (R+W<=N): in the others every read is fresh by construction, which the
// steady runs already show.
const (
	// ProbeDir holds one folder per probed config.
	ProbeDir = "staleness"
	// ProbeFile describes a probe run in its folder (beside its
	// history.ndjson and hops.json).
	ProbeFile = "probe.json"
)

// ProbeRecord is probe.json: the probe's settings and counts (the
// report's ProbeInfo, Dir and Hops filled in when collected) and the
// cluster it ran on.
type ProbeRecord struct {
	Config string `json:"config"`
	// Cluster is node1's /health document at the start.
	Cluster json.RawMessage `json:"cluster"`
	// StartedUS is t0 on the history's clock.
	StartedUS int64 `json:"started_us"`
	report.ProbeInfo
}

// probeSpec is how one config is probed.
type probeSpec struct {
	rate          float64 // probe writes per second
	readsPerWrite int
	duration      time.Duration
	window        time.Duration
}

// probeFor plans a config's probe. Where reads do not repair (R=1) it
// places cfg.ProbeReads reads: 100 probes a second with 12 reads each.
// Where they do (R>1) each probe is read once, at 300 probes a second, and
// it places half as many: such configs are fresh for most of the window
// (a quorum of two of five replicas reads a write's first two copies
// with probability 7/10 at once), so their buckets' binomial error is
// smaller at the same count, and twice the reads would double the run.
// The rates keep the cluster far from saturated — the paper profile's
// delays are sleeps, and at 600 probes a second a leaderless W=2 write's
// version query and replication (eight peer calls each) start to queue on
// two cores — so the hops the nodes measure are the profile's, not a
// queue's.
func (c *Config) probeFor(p cluster.Preset, n int) probeSpec {
	s := probeSpec{rate: 100, readsPerWrite: 12}
	reads := float64(c.ProbeReads)
	if p.R > 1 {
		s.rate, s.readsPerWrite = 300, 1
		reads /= 2
	}
	s.duration = time.Duration(reads / (s.rate * float64(s.readsPerWrite)) * float64(time.Second))
	s.duration = max(s.duration, time.Second)
	// The window: 1.25 times the delay profile's whole sequential
	// replication (1.5 s under the paper profile), by when the model
	// predicts every replica holds the write; at least 10 ms.
	s.window = max(c.Delays.WriteFloor(n)*5/4, 10*time.Millisecond)
	return s
}

// probed reports whether a config gets a staleness probe: its quorums
// need not overlap.
func probed(p cluster.Preset, n int) bool { return p.W+p.R <= n }

// runProbe runs one config's staleness probe on c and writes its folder.
func runProbe(ctx context.Context, cfg *Config, c *cluster.Cluster) (ProbeRecord, error) {
	preset := c.Preset()
	spec := cfg.probeFor(preset, len(c.Nodes()))
	dir := filepath.Join(cfg.OutDir, ProbeDir, preset.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ProbeRecord{}, err
	}
	lc := load.NewClient(load.NewHTTPClient(1000))
	defer lc.CloseIdle()
	doc, _, err := lc.Health(ctx, c.URLs()[0])
	if err != nil {
		return ProbeRecord{}, fmt.Errorf("probe %s: %w", preset.Name, err)
	}
	rec := ProbeRecord{Config: preset.Name, Cluster: doc, ProbeInfo: report.ProbeInfo{ReadFrom: readFrom(preset), Rate: spec.rate,
		ReadsPerWrite: spec.readsPerWrite, WindowMs: durMs(spec.window), DurationS: spec.duration.Seconds()}}
	hw, err := history.Create(filepath.Join(dir, load.HistoryFile))
	if err != nil {
		return rec, err
	}
	mark := markHops(c)
	pr := &prober{cfg: cfg, c: c, lc: lc, spec: spec, hw: hw, prefix: "probe-" + preset.Name + "-",
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x70726f6265))}
	pr.run(ctx)
	if err := hw.Close(); err != nil {
		return rec, err
	}
	rec.StartedUS = pr.t0.UnixMicro()
	rec.Writes, rec.Reads, rec.WriteErrors, rec.ReadErrors = pr.writes, pr.reads, pr.writeErrs, pr.readErrs
	if err := writeJSON(filepath.Join(dir, HopsFile), collectHops(c, mark)); err != nil {
		return rec, err
	}
	return rec, writeJSON(filepath.Join(dir, ProbeFile), rec)
}

// prober runs the probes of one run.
type prober struct {
	cfg    *Config
	c      *cluster.Cluster
	lc     *load.Client
	spec   probeSpec
	prefix string
	t0     time.Time

	mu                   sync.Mutex // guards the fields below and hw
	hw                   *history.Writer
	rng                  *rand.Rand
	writes, reads        int
	writeErrs, readErrs  int
	leader               string // where writes go (leader-follower)
	reading              sync.WaitGroup
	readSeq, readClients int64
}

func (pr *prober) record(op history.Op) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if op.IsWrite() {
		pr.writes++
		if op.Status != http.StatusCreated {
			pr.writeErrs++
		}
	} else {
		pr.reads++
		if op.Status != http.StatusOK && op.Status != http.StatusNotFound {
			pr.readErrs++
		}
	}
	_ = pr.hw.Write(op) // a failed write surfaces at Close
}

// run writes the probes open loop and waits for every read.
func (pr *prober) run(ctx context.Context) {
	reqCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	total := int64(pr.spec.duration.Seconds() * pr.spec.rate)
	pr.readSeq = total
	pr.readClients = 1000 // write slots are 0..999
	pr.t0 = time.Now()
	ol := openloop.Scheduler[struct{}]{
		Start: pr.t0, Total: total, MaxInFlight: 1000,
		Offset: func(i int64) time.Duration { return time.Duration(float64(i) / pr.spec.rate * float64(time.Second)) },
		Send: func(slot int, seq int64, intended time.Time, _ struct{}) {
			pr.probe(reqCtx, slot, seq, intended)
		},
	}
	ol.Run(ctx)
	ol.Wait(pr.cfg.RequestTimeout+drainGrace, cancel)
	// Reads are planned up to a window after their write's
	// acknowledgement; wait for them, bounded.
	done := make(chan struct{})
	go func() { pr.reading.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(pr.spec.window + pr.cfg.RequestTimeout + drainGrace):
		cancel()
		<-done
	}
}

// drainGrace is how long, past the request timeout, a run waits for the
// requests still in flight before cancelling them.
const drainGrace = time.Second

// probe writes one fresh key and plans its reads.
func (pr *prober) probe(ctx context.Context, slot int, seq int64, intended time.Time) {
	key := pr.prefix + strconv.FormatInt(seq, 10)
	op := history.Op{Client: slot, Seq: seq, Op: history.OpSet, Key: key, Value: key + "-v",
		IntendedUS: usOn(pr.t0, intended)}
	node := pr.writeNode()
	wctx, cancel := context.WithTimeout(ctx, pr.cfg.RequestTimeout)
	sent := time.Now()
	r, endpoint := pr.lc.SetFollow(wctx, node, key, op.Value)
	done := time.Now()
	cancel()
	op.Node, op.SentUS, op.DoneUS = node, usOn(pr.t0, sent), usOn(pr.t0, done)
	op.Status, op.Version, op.ServedBy, op.Error = r.Status, r.Version, r.Node, r.Err
	pr.mu.Lock()
	if r.Status == http.StatusCreated && endpoint != "" {
		pr.leader = endpoint
	}
	pr.mu.Unlock()
	pr.record(op)
	if r.Status != http.StatusCreated || ctx.Err() != nil {
		return
	}
	k := pr.spec.readsPerWrite
	for j := range k {
		pr.mu.Lock()
		u := pr.rng.Float64()
		rseq, client := pr.readSeq, pr.readClients
		pr.readSeq++
		pr.readClients++
		pr.mu.Unlock()
		at := done.Add(time.Duration((float64(j) + u) / float64(k) * float64(pr.spec.window)))
		pr.reading.Add(1)
		time.AfterFunc(time.Until(at), func() {
			defer pr.reading.Done()
			pr.read(ctx, int(client), rseq, key, at)
		})
	}
}

// read reads key once through a node drawn as the workload draws them.
func (pr *prober) read(ctx context.Context, client int, seq int64, key string, intended time.Time) {
	op := history.Op{Client: client, Seq: seq, Op: history.OpGet, Key: key, IntendedUS: usOn(pr.t0, intended)}
	if ctx.Err() != nil {
		op.Dropped, op.Error = true, "dropped: the probe run ended"
		pr.record(op)
		return
	}
	op.Node = pr.readNode()
	rctx, cancel := context.WithTimeout(ctx, pr.cfg.RequestTimeout)
	sent := time.Now()
	r := pr.lc.Get(rctx, op.Node, key)
	done := time.Now()
	cancel()
	op.SentUS, op.DoneUS = usOn(pr.t0, sent), usOn(pr.t0, done)
	op.Status, op.Version, op.ServedBy, op.Error, op.Value = r.Status, r.Version, r.Node, r.Err, r.Value
	pr.record(op)
}

// writeNode is where a probe's write goes: the leader (the node that last
// acknowledged one, at first the elected leader) or, leaderless, any node.
func (pr *prober) writeNode() string {
	urls := pr.c.URLs()
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.c.Preset().Mode == replication.Leaderless {
		return urls[pr.rng.IntN(len(urls))]
	}
	if pr.leader == "" {
		pr.leader = urls[max(pr.c.Leader(), 0)]
	}
	return pr.leader
}

// readNode draws a read's node: w1r1's reads go to the followers, the
// others' to any node (readFrom).
func (pr *prober) readNode() string {
	urls := pr.c.URLs()
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if readFrom(pr.c.Preset()) == load.ReadFollowers {
		followers := slices.DeleteFunc(slices.Clone(urls), func(u string) bool { return u == pr.leader })
		if len(followers) > 0 {
			return followers[pr.rng.IntN(len(followers))]
		}
	}
	return urls[pr.rng.IntN(len(urls))]
}

// readProbe reads a probe folder into a staleness run.
func readProbe(dir string) (ProbeRecord, *stalenessRun, error) {
	var rec ProbeRecord
	b, err := os.ReadFile(filepath.Join(dir, ProbeFile))
	if err != nil {
		return rec, nil, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, nil, fmt.Errorf("%s: %w", ProbeFile, err)
	}
	var h clusterHealth
	if err := json.Unmarshal(rec.Cluster, &h); err != nil || h.N == 0 {
		return rec, nil, errors.Join(errors.New("probe.json has no cluster description"), err)
	}
	ops, err := history.ReadFile(filepath.Join(dir, load.HistoryFile))
	if err != nil {
		return rec, nil, err
	}
	sr := newStalenessRun(ops, h, rec.ReadFrom, dir, false)
	sr.probe = true
	return rec, sr, nil
}
