package bench

import (
	"strings"
	"testing"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

func TestGoals(t *testing.T) {
	row := func(w, s string, ops, p99 float64) driver.Result {
		return driver.Result{Workload: w, System: s, OpsPerSec: ops, P99Ms: p99}
	}
	rows := []driver.Result{
		row("read-r1", SystemKVDBRESP, 50000, 3), row("read-r1", SystemRedis, 45000, 2.5), row("read-r1", SystemRedisWait4, 1, 1),
		row("w5r1-50", SystemKVDBRESP, 20000, 9), row("w5r1-50", SystemRedisWait4, 30000, 4),
		row("w3r3-50", SystemKVDBRESP, 16000, 5), row("w3r3-50", SystemRedisWait4, 30000, 4),
		row("w1r5-90w", SystemKVDB, 1, 1), // no kvdb-resp row: no goal
		// A sweep step of kvdb-resp does not make a goal.
		{Workload: "leaderless-w5r1-50", System: SystemKVDBRESP, Phase: PhaseSweep, OpsPerSec: 1, P99Ms: 1},
	}
	gs := Goals(rows)
	if len(gs) != 3 {
		t.Fatalf("%d goals: %+v", len(gs), gs)
	}
	want := []struct {
		ref  string
		ops  float64
		p99  float64
		met  bool
		name string
	}{
		{SystemRedis, 50000.0 / 45000, 3 / 2.5, true, "read-r1"},
		{SystemRedisWait4, 20000.0 / 30000, 9.0 / 4, false, "w5r1-50"},
		{SystemRedisWait4, 16000.0 / 30000, 5.0 / 4, true, "w3r3-50"},
	}
	for i, w := range want {
		g := gs[i]
		if g.Workload != w.name || g.Reference != w.ref || g.OpsRatio != w.ops || g.P99Ratio != w.p99 || g.Met() != w.met || !g.Measured {
			t.Errorf("goal %d: %+v, want %+v", i, g, w)
		}
	}
	md := goalsMarkdown(gs)
	for _, s := range []string{"| read-r1 | redis | 1.11 | ≥ 1.0 | 1.20 | ≤ 1.5 | yes |", "| w5r1-50 | redis-wait4 | 0.67 | ≥ 1.0 | 2.25 | ≤ 1.5 | no |"} {
		if !strings.Contains(md, s) {
			t.Errorf("lacks %q:\n%s", s, md)
		}
	}
	// A reference that did not run: not measured, not met.
	gs = Goals([]driver.Result{row("read-r1", SystemKVDBRESP, 1, 1)})
	if len(gs) != 1 || gs[0].Measured || gs[0].Met() || !strings.Contains(goalsMarkdown(gs), "not measured") {
		t.Errorf("%+v", gs)
	}
}
