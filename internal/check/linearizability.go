package check

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/kvdb/kvdb/internal/history"
)

// Verdict is the outcome of the linearizability check.
type Verdict string

// Verdicts.
const (
	Linearizable    Verdict = "ok"
	NotLinearizable Verdict = "illegal"
	Unknown         Verdict = "unknown"
	NotChecked      Verdict = "not_checked"
)

// Bool is true for ok, false for illegal, nil otherwise.
func (v Verdict) Bool() *bool {
	var b bool
	switch v {
	case Linearizable:
		b = true
	case NotLinearizable:
		b = false
	default:
		return nil
	}
	return &b
}

// Linearizability details the porcupine check.
type Linearizability struct {
	Verdict Verdict `json:"verdict"`
	// Reason explains an unknown verdict.
	Reason string `json:"reason,omitempty"`
	// Keys is the number of keys (partitions) in the history; KeysChecked
	// how many porcupine decided within the time budget.
	Keys        int `json:"keys"`
	KeysChecked int `json:"keys_checked"`
	// IllegalKeyCount is the number of keys found not linearizable;
	// IllegalKeys names the first few.
	IllegalKeyCount int      `json:"illegal_key_count"`
	IllegalKeys     []string `json:"illegal_keys,omitempty"`
	// Operations is the number of operations given to porcupine, of which
	// UnknownWrites had an unknown outcome (kept, returning at the end).
	Operations    int `json:"operations"`
	UnknownWrites int `json:"unknown_writes"`
	// ForeignReads counts reads of a value that no write in the history
	// wrote (e.g. left over from an earlier run); they make a key illegal.
	ForeignReads int     `json:"foreign_reads"`
	ElapsedMs    float64 `json:"elapsed_ms"`
	// Visualization is the path of the HTML visualization, if written.
	Visualization string `json:"visualization,omitempty"`
}

// String renders the verdict in one phrase for people.
func (l Linearizability) String() string {
	switch l.Verdict {
	case Linearizable:
		return fmt.Sprintf("yes (%d keys)", l.Keys)
	case NotLinearizable:
		s := fmt.Sprintf("NO (%d of %d keys violate", l.IllegalKeyCount, l.Keys)
		if l.Visualization != "" {
			s += "; see " + l.Visualization
		}
		return s + ")"
	case Unknown:
		return "unknown (" + l.Reason + ")"
	}
	return "not checked"
}

// regInput is a register operation; key is only used to partition. A
// delete is a write (set) of "absent" (del).
type regInput struct {
	key   string
	set   bool
	del   bool
	value string
}

// regState is a register's state (and a get's output).
type regState struct {
	present bool
	value   string
}

// setOutput is a set's output: whether its outcome is unknown.
type setOutput struct{ unknown bool }

// registerModel is a per-key register that starts absent.
func registerModel() porcupine.Model {
	return porcupine.Model{
		Partition: partitionByKey,
		Init:      func() any { return regState{} },
		Step: func(state, input, output any) (bool, any) {
			st, in := state.(regState), input.(regInput)
			switch {
			case in.del:
				return true, regState{}
			case in.set:
				return true, regState{present: true, value: in.value}
			}
			return output.(regState) == st, st
		},
		Hash: func(state any) uint64 {
			st := state.(regState)
			h := fnv.New64a()
			h.Write([]byte(strconv.FormatBool(st.present) + st.value))
			return h.Sum64()
		},
		DescribeOperation: describeOperation,
		DescribeState:     func(state any) string { return describeState(state.(regState)) },
		DescribeOperationMetadata: func(info any) string {
			if info == nil {
				return ""
			}
			return info.(string)
		},
	}
}

func describeState(st regState) string {
	if !st.present {
		return "absent"
	}
	return strconv.Quote(st.value)
}

func describeOperation(input, output any) string {
	in := input.(regInput)
	if in.set {
		s := "set(" + strconv.Quote(in.value) + ")"
		if in.del {
			s = "del()"
		}
		if out, ok := output.(setOutput); ok && out.unknown {
			s += " outcome unknown"
		}
		return s
	}
	return "get() -> " + describeState(output.(regState))
}

func partitionByKey(ops []porcupine.Operation) [][]porcupine.Operation {
	idx := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range ops {
		k := op.Input.(regInput).key
		i, ok := idx[k]
		if !ok {
			i = len(parts)
			idx[k] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}

// porcupineOps converts a history into porcupine operations per key
// (keys sorted), with times in microseconds since the history's start.
func porcupineOps(ops []history.Op) (keys []string, perKey map[string][]porcupine.Operation, unknown, foreign int) {
	var start, end int64 = -1, 0
	written := map[string]bool{}
	for _, op := range ops {
		if op.Dropped {
			continue
		}
		if start < 0 || op.SentUS < start {
			start = op.SentUS
		}
		end = max(end, op.DoneUS)
		if op.IsWrite() && !op.IsDelete() {
			written[op.Key+"\x00"+op.Value] = true
		}
	}
	perKey = map[string][]porcupine.Operation{}
	for _, op := range ops {
		pop, ok := toPorcupine(op, start, end+1)
		if !ok {
			continue
		}
		if op.IsWrite() && op.Outcome() == history.WriteUnknown {
			unknown++
		}
		if op.Found() && !written[op.Key+"\x00"+op.Value] {
			foreign++
		}
		perKey[op.Key] = append(perKey[op.Key], pop)
	}
	for k := range perKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, perKey, unknown, foreign
}

// toPorcupine converts one operation; ok is false for operations left out
// (dropped, failed reads, definitely failed writes).
func toPorcupine(op history.Op, start, end int64) (porcupine.Operation, bool) {
	if op.Dropped {
		return porcupine.Operation{}, false
	}
	meta := fmt.Sprintf("seq=%d node=%s served_by=%s version=%d status=%d", op.Seq, op.Node, op.ServedBy, op.Version, op.Status)
	if op.Error != "" {
		meta += " error=" + op.Error
	}
	pop := porcupine.Operation{ClientId: max(op.Client, 0), Call: op.SentUS - start, Return: op.DoneUS - start, Metadata: meta}
	if op.IsRead() {
		if !op.OK() {
			return porcupine.Operation{}, false
		}
		pop.Input = regInput{key: op.Key}
		pop.Output = regState{}
		if op.Found() {
			pop.Output = regState{present: true, value: op.Value}
		}
		return pop, true
	}
	pop.Input = regInput{key: op.Key, set: true, del: op.IsDelete(), value: op.Value}
	switch op.Outcome() {
	case history.WriteAcked:
		pop.Output = setOutput{}
	case history.WriteUnknown:
		pop.Output, pop.Return = setOutput{unknown: true}, end-start
	default:
		return porcupine.Operation{}, false
	}
	return pop, true
}

// keyResult is porcupine's answer for one key.
type keyResult struct {
	key string
	res porcupine.CheckResult // "" when skipped (out of time)
}

// CheckLinearizability runs porcupine on every key within cfg.Timeout and,
// when a violation is found and cfg.VizPath is set, writes the
// visualization of up to cfg.MaxVizKeys violating keys.
func CheckLinearizability(ctx context.Context, ops []history.Op, cfg Config) (Linearizability, error) {
	cfg.SetDefaults()
	began := time.Now()
	deadline := began.Add(cfg.Timeout)
	keys, perKey, unknown, foreign := porcupineOps(ops)
	lin := Linearizability{Keys: len(keys), UnknownWrites: unknown, ForeignReads: foreign}
	for _, k := range keys {
		lin.Operations += len(perKey[k])
	}
	results := checkKeys(ctx, keys, perKey, deadline, cfg.Workers)
	var illegal []string
	for _, r := range results {
		switch r.res {
		case porcupine.Ok:
			lin.KeysChecked++
		case porcupine.Illegal:
			lin.KeysChecked++
			illegal = append(illegal, r.key)
		}
	}
	lin.IllegalKeyCount = len(illegal)
	lin.IllegalKeys = illegal[:min(len(illegal), cfg.MaxExamples)]
	switch {
	case len(illegal) > 0:
		lin.Verdict = NotLinearizable
	case lin.KeysChecked == lin.Keys:
		lin.Verdict = Linearizable
	default:
		lin.Verdict = Unknown
		lin.Reason = fmt.Sprintf("%d of %d keys undecided within %v", lin.Keys-lin.KeysChecked, lin.Keys, cfg.Timeout)
		if ctx.Err() != nil {
			lin.Reason += " (cancelled)"
		}
	}
	var err error
	if len(illegal) > 0 && cfg.VizPath != "" {
		err = visualize(cfg.VizPath, illegal[:min(len(illegal), cfg.MaxVizKeys)], perKey, time.Until(deadline))
		if err == nil {
			lin.Visualization = cfg.VizPath
		}
	}
	lin.ElapsedMs = roundMs(float64(time.Since(began).Microseconds()))
	return lin, err
}

// checkKeys checks each key's history on a pool of workers until the
// deadline or ctx ends; keys not reached are returned with an empty result.
func checkKeys(ctx context.Context, keys []string, perKey map[string][]porcupine.Operation, deadline time.Time, workers int) []keyResult {
	model := registerModel()
	results := make([]keyResult, len(keys))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(keys)) {
		wg.Go(func() {
			for i := range jobs {
				results[i].key = keys[i]
				left := time.Until(deadline)
				if left <= 0 || ctx.Err() != nil {
					continue
				}
				results[i].res = porcupine.CheckOperationsTimeout(model, perKey[keys[i]], left)
			}
		})
	}
	for i := range keys {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return results
}

// visualize writes porcupine's HTML visualization of the given keys. It
// gets at least a few seconds even when the check used up its budget.
func visualize(path string, keys []string, perKey map[string][]porcupine.Operation, budget time.Duration) error {
	var ops []porcupine.Operation
	for _, k := range keys {
		ops = append(ops, perKey[k]...)
	}
	model := registerModel()
	_, info := porcupine.CheckOperationsVerbose(model, ops, max(budget, 5*time.Second))
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return fmt.Errorf("check: visualization: %w", err)
	}
	return nil
}
