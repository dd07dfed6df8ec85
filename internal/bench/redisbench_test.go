package bench

import (
	"strings"
	"testing"
)

// redis-benchmark 7.0's --csv output.
const redisBenchCSV = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","40322.58","0.870","0.168","0.831","1.279","2.159","5.383"
"GET","45871.56","0.723","0.120","0.647","1.175","4.135","6.095"
`

func TestParseRedisBenchmarkCSV(t *testing.T) {
	rows, err := ParseRedisBenchmarkCSV(redisBenchCSV)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	set, get := rows[0], rows[1]
	if set.Workload != "redis-benchmark-set" || set.Phase != PhaseRedisBenchmark || set.OpsPerSec != 40322.58 || set.MeanMs != 0.870 ||
		set.P50Ms != 0.831 || set.P99Ms != 2.159 || set.MaxMs != 5.383 || set.WriteRatio != 1 {
		t.Errorf("SET: %+v", set)
	}
	if get.Workload != "redis-benchmark-get" || get.OpsPerSec != 45871.56 || get.P99Ms != 4.135 || get.WriteRatio != 0 {
		t.Errorf("GET: %+v", get)
	}
	// Columns are found by name; missing latency columns stay zero.
	rows, err = ParseRedisBenchmarkCSV("\"rps\",\"test\"\n\"1000.5\",\"PING_INLINE\"\n")
	if err != nil || len(rows) != 1 || rows[0].OpsPerSec != 1000.5 || rows[0].Workload != "redis-benchmark-ping_inline" || rows[0].P99Ms != 0 {
		t.Errorf("reordered columns: %+v %v", rows, err)
	}
}

func TestParseRedisBenchmarkCSVErrors(t *testing.T) {
	for name, text := range map[string]string{
		"empty":     "",
		"header":    "\"test\",\"rps\"\n",
		"no rps":    "\"test\",\"avg\"\n\"SET\",\"1\"\n",
		"no test":   "\"rps\"\n\"1\"\n",
		"bad value": "\"test\",\"rps\"\n\"SET\",\"fast\"\n",
	} {
		if _, err := ParseRedisBenchmarkCSV(text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRedisBenchmarkMarkdown(t *testing.T) {
	redis, _ := ParseRedisBenchmarkCSV(redisBenchCSV)
	kvdb, _ := ParseRedisBenchmarkCSV(strings.NewReplacer("40322.58", "20161.29", "45871.56", "45871.56").Replace(redisBenchCSV))
	for i := range redis {
		redis[i].System = SystemRedis
		kvdb[i].System = SystemKVDBRESP
	}
	md := redisBenchmarkMarkdown(append(kvdb, redis...))
	for _, want := range []string{"| SET | kvdb-resp | 20161 | 0.870 | 0.831 | 2.159 | 5.383 | 0.50 |", "| GET | kvdb-resp | 45872 |", "| 1.00 |", "| SET | redis | 40323 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("lacks %q:\n%s", want, md)
		}
	}
	if redisBenchmarkMarkdown(nil) != "" {
		t.Error("a section without rows")
	}
}
