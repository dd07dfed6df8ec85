package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// maxFindings bounds the findings that open the report.
const maxFindings = 6

// Findings returns the report's opening findings: at most six sentences,
// each with its number, generated from res by rules over the data, most
// important first. A finding whose data is missing (no fault runs, no
// final read of the copies, no R+W<=N config, ...) is left out.
func Findings(res *Results) []string {
	rules := []func(*Results) (string, bool){
		func(r *Results) (string, bool) { return writabilityFinding(r, "kill-leader") },
		func(r *Results) (string, bool) { return writabilityFinding(r, "kill-follower") },
		lostWritesFinding,
		stalenessFinding,
		latencyPriceFinding,
		func(r *Results) (string, bool) { return writabilityFinding(r, "partition") },
		func(r *Results) (string, bool) { return writabilityFinding(r, "pause") },
		linearizabilityFinding,
	}
	var out []string
	for _, rule := range rules {
		if len(out) == maxFindings {
			break
		}
		if s, ok := rule(res); ok {
			out = append(out, s)
		}
	}
	return out
}

// windowOf is a fault run's write-unavailability window in words, marked
// when writes never came back.
func windowOf(r *Run) string {
	s := dur(*r.WriteUnavailableMs)
	if r.Fault != nil && !r.Fault.Recovered {
		s += " (never recovered in the run)"
	}
	return s
}

// writabilityFinding says, for one fault scenario, which configs kept
// acknowledging writes and for how long each of the others did not.
func writabilityFinding(res *Results, scenario string) (string, bool) {
	var stayed, stopped []*Run
	for _, r := range scenarioRuns(res, scenario) {
		if r.WriteUnavailableMs == nil {
			continue
		}
		if stayedWritable(r) {
			stayed = append(stayed, r)
		} else {
			stopped = append(stopped, r)
		}
	}
	if len(stayed)+len(stopped) == 0 {
		return "", false
	}
	byWindow := func(a, b *Run) int { return cmp.Compare(*b.WriteUnavailableMs, *a.WriteUnavailableMs) }
	slices.SortStableFunc(stopped, byWindow)
	slices.SortStableFunc(stayed, func(a, b *Run) int { return -byWindow(a, b) })
	names := func(rs []*Run) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Config)
		}
		return out
	}
	windows := func(rs []*Run) string {
		var out []string
		for _, r := range rs {
			out = append(out, windowOf(r)+" in "+r.Config)
		}
		return list(out)
	}
	faultLen := 0.0
	for _, r := range append(slices.Clone(stayed), stopped...) {
		faultLen = max(faultLen, faultLenMs(r))
	}
	tail := ""
	if faultLen > 0 {
		tail = fmt.Sprintf(" (the fault lasted %s)", dur(faultLen))
	}
	when := "When " + scenarioPhrase(scenario)
	switch {
	case len(stopped) == 0:
		return fmt.Sprintf("%s, every config kept acknowledging writes: the first write sent after the fault was acknowledged after %s%s.",
			when, windows(stayed), tail), true
	case len(stayed) == 0:
		return fmt.Sprintf("%s, every config stopped acknowledging writes, for %s%s.", when, windows(stopped), tail), true
	}
	again := "writable again after " + windowOf(stayed[0])
	if len(stayed) > 1 {
		again = fmt.Sprintf("writable again after %s to %s", windowOf(stayed[0]), windowOf(stayed[len(stayed)-1]))
	}
	only := "only "
	if len(stayed) > len(stopped) {
		only = ""
	}
	return fmt.Sprintf("%s, %s%s kept acknowledging writes (%s, one write's latency), while writes were unavailable for %s%s.",
		when, only, list(names(stayed)), again, windows(stopped), tail), true
}

// lostWritesFinding says which configs lost acknowledged writes, and how
// many, from the final read of every node's copies.
func lostWritesFinding(res *Results) (string, bool) {
	type cd struct {
		cfg string
		d   durability
	}
	var all []cd
	for _, cfg := range res.Configs() {
		if d := configDurability(res, cfg); d.runs > 0 {
			all = append(all, cd{cfg, d})
		}
	}
	if len(all) == 0 {
		return "", false
	}
	var losers []cd
	keptAcked, totalAcked, totalRuns := 0, 0, 0
	var partial []string
	for _, c := range all {
		totalAcked += c.d.acked
		totalRuns += c.d.runs
		if c.d.lost > 0 {
			losers = append(losers, c)
		} else {
			keptAcked += c.d.acked
		}
		if c.d.partial > 0 {
			partial = append(partial, fmt.Sprintf("%d in %s", c.d.partial, c.cfg))
		}
	}
	partialNote := ""
	if len(partial) > 0 {
		partialNote = fmt.Sprintf(" (though %s were held by some nodes only when the copies were read)", list(partial))
	}
	if len(losers) == 0 {
		return fmt.Sprintf("No config lost an acknowledged write: all %s acknowledged writes of %d runs were found on some node after the cluster settled%s.",
			thousands(totalAcked), totalRuns, partialNote), true
	}
	slices.SortStableFunc(losers, func(a, b cd) int { return cmp.Compare(b.d.lost, a.d.lost) })
	var parts, names []string
	for _, c := range losers {
		names = append(names, c.cfg)
		parts = append(parts, c.cfg+" "+strings.Join(c.d.lostIn, ", "))
	}
	if len(losers) == len(all) {
		return fmt.Sprintf("Every config lost acknowledged writes: %s%s.", list(parts), partialNote), true
	}
	detail := "— " + list(parts) + " —"
	if len(losers) == 1 {
		detail = "(" + strings.Join(losers[0].d.lostIn, ", ") + ")"
	}
	return fmt.Sprintf("Only %s lost acknowledged writes %s while the other %d configs lost none of their %s acknowledged writes%s.",
		list(names), detail, len(all)-len(losers), thousands(keptAcked), partialNote), true
}

// stalenessFinding says how often each R+W<=N config read stale data and
// how closely PBS predicted it.
func stalenessFinding(res *Results) (string, bool) {
	type sc struct {
		cfg          string
		stale, reads int
		rmse         *float64
	}
	var weak []sc
	strongStale, strongReads, strong := 0, 0, 0
	for _, cfg := range res.Configs() {
		r := configRun(res, cfg)
		stale, reads, ok := staleTotals(res, cfg)
		if !ok {
			continue
		}
		if rwOverlap(r) {
			strong++
			strongStale += stale
			strongReads += reads
			continue
		}
		s := sc{cfg: cfg, stale: stale, reads: reads}
		if st := res.Staleness[cfg]; st != nil {
			s.rmse = st.RMSE
		}
		weak = append(weak, s)
	}
	if len(weak) == 0 {
		return "", false
	}
	slices.SortStableFunc(weak, func(a, b sc) int {
		return cmp.Compare(float64(b.stale)/float64(b.reads), float64(a.stale)/float64(a.reads))
	})
	var parts []string
	for i, s := range weak {
		pbs := "no PBS prediction"
		if s.rmse != nil {
			pbs = fmt.Sprintf("PBS predicted its staleness curve within %.1f points RMSE", *s.rmse)
		}
		if i == 0 {
			parts = append(parts, fmt.Sprintf("%s returned stale data to %s of its reads (%s of %s; %s)",
				s.cfg, percent(float64(s.stale)/float64(s.reads)), thousands(s.stale), thousands(s.reads), pbs))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s to %s (%s)", s.cfg, percent(float64(s.stale)/float64(s.reads)), pbs))
	}
	tail := ""
	switch {
	case strong > 0 && strongStale == 0:
		tail = fmt.Sprintf(", against none of %s reads in the R+W>N configs", thousands(strongReads))
	case strong > 0:
		tail = fmt.Sprintf(", against %s of %s reads in the R+W>N configs", thousands(strongStale), thousands(strongReads))
	}
	return fmt.Sprintf("Of the configs whose quorums need not overlap (R+W≤N), %s%s.", list(parts), tail), true
}

// latencyPriceFinding prices a large W against W=1 (writes) and a large R
// against R=1 (reads) at the write ratio nearest 50%.
func latencyPriceFinding(res *Results) (string, bool) {
	ratio, ok := midRatio(res)
	if !ok {
		return "", false
	}
	var runs []*Run
	for _, cfg := range res.Configs() {
		if r := steadyRun(res, cfg, ratio); r != nil && !isLeaderless(r) {
			runs = append(runs, r)
		}
	}
	if len(runs) == 0 { // leaderless only
		for _, cfg := range res.Configs() {
			if r := steadyRun(res, cfg, ratio); r != nil {
				runs = append(runs, r)
			}
		}
	}
	// extremes of a parameter among the runs with successful ops of a kind
	extremes := func(param func(*Run) int, stats func(*Run) Stats) (hi, lo *Run) {
		for _, r := range runs {
			s := stats(r)
			if okCount(s) <= 0 {
				continue
			}
			if hi == nil || param(r) > param(hi) || (param(r) == param(hi) && s.P50 > stats(hi).P50) {
				hi = r
			}
			if lo == nil || param(r) < param(lo) || (param(r) == param(lo) && s.P50 < stats(lo).P50) {
				lo = r
			}
		}
		if hi == nil || param(hi) == param(lo) {
			return nil, nil
		}
		return hi, lo
	}
	times := func(a, b float64) string {
		if b <= 0 {
			return ""
		}
		f := a / b
		switch {
		case f >= 10:
			return fmt.Sprintf(", %s times as long", thousands(int(f+0.5)))
		case f >= 1.1:
			return fmt.Sprintf(", %.1f times as long", f)
		}
		return ""
	}
	var parts []string
	if hi, lo := extremes(func(r *Run) int { return r.W }, func(r *Run) Stats { return r.Write }); hi != nil {
		parts = append(parts, fmt.Sprintf("waiting for W=%d copies made %s's median write take %s against %s with W=%d (%s)%s",
			hi.W, hi.Config, dur(hi.Write.P50), dur(lo.Write.P50), lo.W, lo.Config, times(hi.Write.P50, lo.Write.P50)))
	}
	if hi, lo := extremes(func(r *Run) int { return r.R }, func(r *Run) Stats { return r.Read }); hi != nil {
		parts = append(parts, fmt.Sprintf("reading R=%d copies made %s's median read take %s against %s with R=%d (%s)",
			hi.R, hi.Config, dur(hi.Read.P50), dur(lo.Read.P50), lo.R, lo.Config))
	}
	if len(parts) == 0 {
		return "", false
	}
	s := fmt.Sprintf("At %s writes, %s.", pct(ratio), strings.Join(parts, ", while "))
	return s, true
}

// linearizabilityFinding says which configs porcupine found linearizable
// in every checked run.
func linearizabilityFinding(res *Results) (string, bool) {
	var always, broke []string
	total := 0
	for _, cfg := range res.Configs() {
		checked, failed := linTotals(res, cfg)
		if checked == 0 {
			continue
		}
		total += checked
		if failed == 0 {
			always = append(always, cfg)
		} else {
			broke = append(broke, fmt.Sprintf("%s (%d of %d runs)", cfg, failed, checked))
		}
	}
	switch {
	case total == 0:
		return "", false
	case len(broke) == 0:
		return fmt.Sprintf("Every config was linearizable in all %d checked runs.", total), true
	case len(always) == 0:
		return fmt.Sprintf("No config was linearizable in every checked run: porcupine found violations in %s.", list(broke)), true
	}
	return fmt.Sprintf("Only %s %s linearizable in every checked run; porcupine found violations in %s.",
		list(always), map[bool]string{true: "was", false: "were"}[len(always) == 1], list(broke)), true
}
