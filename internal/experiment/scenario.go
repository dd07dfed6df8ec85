package experiment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kvdb/kvdb/internal/cluster"
	"github.com/kvdb/kvdb/internal/replication"
	"github.com/kvdb/kvdb/internal/transport"
)

// The scenarios. Every fault starts at a fixed offset into the load run
// (Config.FaultAt) and is healed at another (Config.HealAt) while the load
// keeps running; the run then goes on to show the recovery.
//
//   - steady: no fault.
//   - kill-follower: kill -9 of a follower (the last one in member order,
//     node5: the leader, node1, replicates to it last) — in leaderless mode
//     of a node, node5. Healed by restarting it with an empty store (as a
//     supervisor restarts a crashed container); it catches up from its
//     peers before it serves.
//   - kill-leader: kill -9 of the leader. Leaderless mode has none, and the
//     load spreads reads and writes uniformly over the nodes while each
//     coordinator replicates to its successors in member order, as a ring,
//     so every node is used alike: node1 is killed. (In leaderless mode
//     kill-leader and kill-follower are thus the same fault on two
//     different nodes.) Healed by a restart, as kill-follower.
//   - partition: the leader (leaderless: node1) is cut off from every
//     other node, raft's connections included (transport.Faults.Isolate),
//     while clients still reach it. Healed by removing the cut.
//   - pause: the leader (leaderless: node1) is frozen (Cluster.Pause: its
//     sockets stop moving, as docker pause) and resumed at the heal.
const (
	ScenarioSteady       = "steady"
	ScenarioKillFollower = "kill-follower"
	ScenarioKillLeader   = "kill-leader"
	ScenarioPartition    = "partition"
	ScenarioPause        = "pause"
)

// Scenarios lists every scenario in report order.
var Scenarios = []string{ScenarioSteady, ScenarioKillFollower, ScenarioKillLeader, ScenarioPartition, ScenarioPause}

// scenarioOrder is a scenario's position in Scenarios (unknown ones last).
func scenarioOrder(s string) int {
	if s == "" {
		return 0
	}
	if i := slices.Index(Scenarios, s); i >= 0 {
		return i
	}
	return len(Scenarios)
}

// ScenarioFile records what a fault run did, in the run's folder.
const ScenarioFile = "scenario.json"

// ScenarioRecord is scenario.json: the fault's target and window on the
// history's clock (microseconds since the Unix epoch, as history.Op's
// times).
type ScenarioRecord struct {
	Scenario string `json:"scenario"`
	// Target is the node the fault hit ("node1"), Role its role then
	// (leader, follower or node).
	Target string `json:"target,omitempty"`
	Role   string `json:"role,omitempty"`
	// Action says what was done, in words.
	Action string `json:"action,omitempty"`
	// StartUS is when the fault began (just before the kill, the cut or
	// the pause); EndUS when it was healed (just before the restart, the
	// heal or the resume); 0 if it never was (an interrupted run).
	StartUS int64 `json:"start_us,omitempty"`
	EndUS   int64 `json:"end_us,omitempty"`
	// Error reports a fault or heal that failed.
	Error string `json:"error,omitempty"`
	// ReadRepairOff records that the nodes ran with read repair off.
	ReadRepairOff bool `json:"read_repair_off,omitempty"`
}

// faultDriver injects one run's fault at t0+at and heals it at t0+heal.
type faultDriver struct {
	c        *cluster.Cluster
	faults   *transport.Faults
	scenario string
	at, heal time.Duration

	mu   sync.Mutex
	rec  ScenarioRecord
	stop chan struct{} // closed to heal at once (the run ended early)
	done chan struct{} // closed when healed
}

func newFaultDriver(c *cluster.Cluster, faults *transport.Faults, scenario string, at, heal time.Duration) *faultDriver {
	return &faultDriver{c: c, faults: faults, scenario: scenario, at: at, heal: heal,
		rec: ScenarioRecord{Scenario: scenario}, stop: make(chan struct{}), done: make(chan struct{})}
}

// start runs the fault in the background; the load calls it with t0.
func (d *faultDriver) start(t0 time.Time) {
	go func() {
		defer close(d.done)
		if !d.sleepUntil(t0.Add(d.at)) {
			return // the run ended before the fault was due
		}
		target, role := d.target()
		d.mu.Lock()
		d.rec.Target, d.rec.Role = d.c.Nodes()[target].ID(), role
		d.rec.StartUS = usOn(t0, time.Now())
		d.mu.Unlock()
		undo, action, err := d.inject(target)
		d.mu.Lock()
		d.rec.Action = action
		if err != nil {
			d.rec.Error = err.Error()
		}
		d.mu.Unlock()
		if err != nil {
			return
		}
		d.sleepUntil(t0.Add(d.heal))
		d.mu.Lock()
		d.rec.EndUS = usOn(t0, time.Now())
		d.mu.Unlock()
		if err := undo(); err != nil {
			d.mu.Lock()
			d.rec.Error = err.Error()
			d.mu.Unlock()
		}
	}()
}

// finish heals at once if the fault is still on (an interrupted run) and
// returns the record.
func (d *faultDriver) finish() ScenarioRecord {
	close(d.stop)
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rec
}

// sleepUntil waits until t; false if stopped first.
func (d *faultDriver) sleepUntil(t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-d.stop:
		return false
	}
}

// target picks the node the scenario hits, and names its role.
func (d *faultDriver) target() (int, string) {
	n := len(d.c.Nodes())
	if d.c.Preset().Mode == replication.Leaderless {
		if d.scenario == ScenarioKillFollower {
			return n - 1, "node"
		}
		return 0, "node"
	}
	leader := d.c.Leader()
	if leader < 0 {
		// An election under way (it should not be, 1 s or more into a
		// steady run): wait for it, bounded.
		leader, _ = d.c.WaitLeader(context.Background(), 5*time.Second)
	}
	if d.scenario != ScenarioKillFollower {
		if leader < 0 {
			return 0, "leader (none elected: node1)"
		}
		return leader, "leader"
	}
	for i := n - 1; i >= 0; i-- {
		if i != leader {
			return i, "follower"
		}
	}
	return n - 1, "follower"
}

// inject applies the fault to node i and returns how to heal it.
func (d *faultDriver) inject(i int) (undo func() error, action string, err error) {
	id := d.c.Nodes()[i].ID()
	switch d.scenario {
	case ScenarioKillFollower, ScenarioKillLeader:
		if err := d.c.Stop(i); err != nil {
			return nil, "kill " + id, err
		}
		return func() error { return d.c.Restart(context.Background(), i) },
			"killed " + id + " (kill -9), restarted it with an empty store at the heal", nil
	case ScenarioPartition:
		if d.faults == nil {
			return nil, "", errors.New("partition needs the cluster's fault injection")
		}
		d.faults.Isolate(d.c.Hosts()[i])
		return func() error { d.faults.Heal(); return nil },
			"cut " + id + " off from every other node (clients still reach it), then healed", nil
	case ScenarioPause:
		if err := d.c.Pause(i); err != nil {
			return nil, "pause " + id, err
		}
		return func() error { return d.c.Resume(i) }, "paused " + id + " (frozen: sockets stop), then resumed", nil
	}
	return nil, "", fmt.Errorf("unknown scenario %q", d.scenario)
}

// usOn is t on the history's clock of a run that started at t0: t0's wall
// time plus the monotonic time since (as the load tester stamps ops).
func usOn(t0, t time.Time) int64 { return t0.UnixMicro() + t.Sub(t0).Microseconds() }
