// Package bench is `kvdb bench`: kvdb beside Redis and etcd on the same
// machine, with the same client concurrency and the same driver
// (internal/bench/driver), for the workloads of issue 7 — 100 % reads at R=1,
// 50/50 at W5R1, 50/50 at W3R3, 90 % writes at W1R5 and leaderless W5R1.
//
// kvdb runs one 5-node cluster per workload with the delays off, in a
// child process (or in this one, Config.KVDBExe empty), driven through the
// public client (github.com/kvdb/kvdb/client). Redis (a primary and 4 replicas) and etcd (5 members, data on tmpfs)
// are started by scripts/bench-peers.sh from Debian's packages, and driven
// by the kvdb-peerbench binary of the bench/ module (which holds the Redis
// and etcd client libraries, keeping them out of this module). Results go
// to bench.json (one row per workload and system) and bench.md (the table,
// with the ratio kvdb/peer per workload).
//
// The benchmark code is split three ways, one job each: this package
// (`kvdb bench`), internal/bench/driver (the loop every system is driven
// with) and the bench/ module (the Redis and etcd clients; a module of its
// own only to keep their libraries out of this module's go.mod).
package bench

import (
	"fmt"
	"slices"
	"strings"
)

// Workload is one benchmark scenario.
type Workload struct {
	// Name identifies it in flags and result rows.
	Name string
	// Preset is the kvdb cluster configuration it runs on.
	Preset string
	// WriteRatio is its fraction of writes.
	WriteRatio float64
	// Title describes it in the tables.
	Title string
	// Extra workloads run only when named in --workloads, not in "all".
	Extra bool
}

// Workloads are issue 7's scenarios, in table order.
var workloads = []Workload{
	{Name: "read-r1", Preset: "w5r1", WriteRatio: 0, Title: "100% reads, R=1"},
	{Name: "w5r1-50", Preset: "w5r1", WriteRatio: 0.5, Title: "50/50, W5R1"},
	{Name: "w3r3-50", Preset: "w3r3", WriteRatio: 0.5, Title: "50/50, W3R3"},
	{Name: "w1r5-90w", Preset: "w1r5", WriteRatio: 0.9, Title: "90% writes, W1R5"},
	{Name: "leaderless-w5r1-50", Preset: "leaderless", WriteRatio: 0.5, Title: "leaderless W5R1, 50/50"},
	// The target "kvdb W5R1 writes faster than etcd's puts",
	// measured head on.
	{Name: "w5r1-writes", Preset: "w5r1", WriteRatio: 1, Title: "100% writes, W5R1", Extra: true},
}

// Workloads returns the default workloads (all but the extra ones), in
// table order.
func Workloads() []Workload {
	var out []Workload
	for _, w := range workloads {
		if !w.Extra {
			out = append(out, w)
		}
	}
	return out
}

// WorkloadNames lists every workload name, extra ones included.
func WorkloadNames() []string {
	names := make([]string, len(workloads))
	for i, w := range workloads {
		names[i] = w.Name
	}
	return names
}

// Systems.
const (
	SystemKVDB       = "kvdb"
	SystemKVDBRESP   = "kvdb-resp"
	SystemRedis      = "redis"
	SystemRedisWait4 = "redis-wait4"
	SystemEtcd       = "etcd"
)

// Systems lists every system, in table order.
func Systems() []string {
	return []string{SystemKVDB, SystemKVDBRESP, SystemRedis, SystemRedisWait4, SystemEtcd}
}

// SelectWorkloads returns the named workloads in table order ("" or "all":
// the default ones).
func SelectWorkloads(list string) ([]Workload, error) {
	if l := strings.TrimSpace(list); l == "" || l == "all" {
		return Workloads(), nil
	}
	names, err := pick(list, WorkloadNames(), "workload")
	if err != nil {
		return nil, err
	}
	var out []Workload
	for _, w := range workloads {
		for _, n := range names {
			if n == w.Name {
				out = append(out, w)
			}
		}
	}
	return out, nil
}

// SelectSystems returns the named systems in table order ("" or "all":
// every one).
func SelectSystems(list string) ([]string, error) { return pick(list, Systems(), "system") }

// pick parses a comma-separated subset of known, keeping known's order.
func pick(list string, known []string, what string) ([]string, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "all" {
		return append([]string(nil), known...), nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		found := false
		for _, k := range known {
			found = found || k == n
		}
		if !found {
			return nil, fmt.Errorf("unknown %s %q: want some of %s", what, n, strings.Join(known, ","))
		}
		want[n] = true
	}
	var out []string
	for _, k := range known {
		if want[k] {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s selected", what)
	}
	return out, nil
}

// IsPeer reports whether the system runs on a peer server (Redis, etcd).
func IsPeer(system string) bool { return system != SystemKVDB && system != SystemKVDBRESP }

func isPeer(system string) bool { return IsPeer(system) }

// isKVDB reports whether the system is kvdb (over HTTP or RESP).
func isKVDB(system string) bool { return !isPeer(system) }

// needsPeerClient reports whether a system is driven by kvdb-peerbench
// (every one but kvdb over HTTP).
func needsPeerClient(systems []string) bool {
	return slices.ContainsFunc(systems, func(s string) bool { return s != SystemKVDB })
}
