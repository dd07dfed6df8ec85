package load

import (
	"context"
	"testing"
	"time"

	"github.com/kvdb/kvdb/internal/history"
)

// With -delete-ratio, a share of the writes are deletes, recorded as "del"
// in the history (acknowledged by 200), and the checker judges the run
// with them: a linearizable store stays linearizable.
func TestDeletesInTheHistory(t *testing.T) {
	store := newFakeStore()
	nodes := []*fakeNode{newFakeNode(t, store, "leader", nil), newFakeNode(t, store, "follower", nil)}
	cfg := testConfig(t, urls(nodes...))
	cfg.Mode = ModeLeaderless
	cfg.Keys.Keys = 10
	cfg.WriteRatio, cfg.DeleteRatio = 0.6, 0.4
	sum := mustRun(t, context.Background(), cfg)
	if sum.StaleReads != 0 || sum.Linearizable == nil || !*sum.Linearizable {
		t.Fatalf("stale %d linearizable %v (%s)", sum.StaleReads, sum.Linearizable, sum.Linearizability)
	}
	if sum.Config.DeleteRatio != 0.4 || sum.Write.Errors != 0 {
		t.Fatalf("config %+v write %+v", sum.Config, sum.Write)
	}
	dels, sets, notFound := 0, 0, 0
	for _, op := range readHistory(t, cfg.OutDir) {
		switch {
		case op.Op == history.OpDel:
			dels++
			if op.Status != 200 || op.Value != "" || op.Version == 0 || op.Outcome() != history.WriteAcked {
				t.Fatalf("delete %+v", op)
			}
		case op.Op == history.OpSet:
			sets++
		case op.Status == 404:
			notFound++
		}
	}
	if dels == 0 || sets == 0 || notFound == 0 {
		t.Fatalf("%d deletes, %d sets, %d reads of absent keys: want some of each", dels, sets, notFound)
	}
}

func TestDeleteRatioValidated(t *testing.T) {
	for _, r := range []float64{-0.1, 1.5} {
		cfg := DefaultConfig()
		cfg.DeleteRatio = r
		cfg.SetDefaults(time.Now())
		if err := cfg.Validate(); err == nil {
			t.Errorf("delete ratio %v accepted", r)
		}
	}
}
