package bench

import (
	"fmt"
	"strings"

	"github.com/kvdb/kvdb/internal/bench/driver"
)

// Goal is one of issue 14's targets for kvdb over RESP, checked against a
// run's rows: kvdb-resp's ops/s over the reference system's at least
// MinOpsRatio, and its p99 at most MaxP99Ratio times the reference's.
type Goal struct {
	Workload string `json:"workload"`
	// Reference is the Redis system the workload is compared with: redis
	// for R=1 reads and W=1 writes (Redis replicates asynchronously),
	// redis-wait4 where kvdb waits for more than one copy.
	Reference   string  `json:"reference"`
	MinOpsRatio float64 `json:"min_ops_ratio,omitempty"`
	MaxP99Ratio float64 `json:"max_p99_ratio"`
	// Measured ratios (kvdb-resp / reference) and whether both rows were
	// there.
	OpsRatio float64 `json:"ops_ratio"`
	P99Ratio float64 `json:"p99_ratio"`
	Measured bool    `json:"measured"`
}

// Met reports whether the measured ratios reach the goal.
func (g Goal) Met() bool {
	return g.Measured && g.OpsRatio >= g.MinOpsRatio && g.P99Ratio <= g.MaxP99Ratio
}

// goalSpecs are the targets: throughput where the issue names one, p99
// ≤ 1.5× in every workload.
var goalSpecs = []Goal{
	{Workload: "read-r1", Reference: SystemRedis, MinOpsRatio: 1.0, MaxP99Ratio: 1.5},
	{Workload: "w5r1-50", Reference: SystemRedisWait4, MinOpsRatio: 1.0, MaxP99Ratio: 1.5},
	{Workload: "w3r3-50", Reference: SystemRedisWait4, MinOpsRatio: 0.5, MaxP99Ratio: 1.5},
	{Workload: "w1r5-90w", Reference: SystemRedis, MaxP99Ratio: 1.5},
	{Workload: "leaderless-w5r1-50", Reference: SystemRedisWait4, MaxP99Ratio: 1.5},
	{Workload: "w5r1-writes", Reference: SystemRedisWait4, MaxP99Ratio: 1.5},
}

// Goals checks the goals whose workload is in rows.
func Goals(rows []driver.Result) []Goal {
	t := index(mainRows(rows))
	var out []Goal
	for _, g := range goalSpecs {
		if _, ok := t.get(g.Workload, SystemKVDBRESP); !ok {
			continue
		}
		var ok1, ok2 bool
		g.OpsRatio, ok1 = t.ratioOf(g.Workload, SystemKVDBRESP, g.Reference, func(r driver.Result) float64 { return r.OpsPerSec })
		g.P99Ratio, ok2 = t.ratioOf(g.Workload, SystemKVDBRESP, g.Reference, func(r driver.Result) float64 { return r.P99Ms })
		g.Measured = ok1 && ok2
		out = append(out, g)
	}
	return out
}

// goalsMarkdown renders the goals as a table.
func goalsMarkdown(goals []Goal) string {
	if len(goals) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## kvdb over RESP against Redis (issue 14's goals)\n\n")
	b.WriteString("kvdb-resp's ops/s and p99 divided by the reference's (redis for R=1 reads and W=1 writes, redis-wait4 where kvdb waits for more copies).\n\n")
	writeRow(&b, []string{"workload", "reference", "ops/s ratio", "goal", "p99 ratio", "goal", "met"})
	writeRow(&b, []string{"---", "---", "---:", "---:", "---:", "---:", "---"})
	for _, g := range goals {
		opsGoal := "—"
		if g.MinOpsRatio > 0 {
			opsGoal = fmt.Sprintf("≥ %.1f", g.MinOpsRatio)
		}
		met := "no"
		switch {
		case !g.Measured:
			met = "not measured"
		case g.Met():
			met = "yes"
		}
		writeRow(&b, []string{g.Workload, g.Reference, fmtRatio(g.OpsRatio, g.Measured), opsGoal,
			fmtRatio(g.P99Ratio, g.Measured), fmt.Sprintf("≤ %.1f", g.MaxP99Ratio), met})
	}
	return b.String()
}
