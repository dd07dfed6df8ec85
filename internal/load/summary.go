package load

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kvdb/kvdb/internal/check"
	"github.com/kvdb/kvdb/internal/history"
)

// Files a run writes into its output directory.
const (
	HistoryFile      = "history.ndjson"
	SummaryFile      = "summary.json"
	ReadHDRFile      = "read.hdr"
	WriteHDRFile     = "write.hdr"
	ReadServiceFile  = "read-service.hdr"
	WriteServiceFile = "write-service.hdr"
	IntervalHDRFile  = "write-read-interval.hdr"
	PercentilesFile  = "latency-percentiles.txt"
	VizFile          = "linearizability.html"
)

// SchemaVersion is the version of summary.json's layout.
const SchemaVersion = 1

// Summary is summary.json: a run's figures, derived from its history. The
// report generator reads it back with ReadSummary. Latencies are in
// milliseconds, measured from each request's intended start time (open
// loop, no coordinated omission), over successful operations only.
//
// The embedded check.Result contributes the top-level keys "stale_reads",
// "inversions", "reads_checked", "stale_examples", "inversion_examples",
// "linearizable" (true, false, or null when not decided),
// "linearizability" (details) and "write_read_interval".
type Summary struct {
	SchemaVersion int    `json:"schema_version"`
	RunID         string `json:"run_id"`
	// Started is t0, the intended time of request 0.
	Started time.Time `json:"started"`
	// WindowS is the sending window in seconds: the configured duration,
	// or less if the run was interrupted.
	WindowS float64 `json:"window_s"`
	// Interrupted is true when the run was cancelled before its schedule
	// ended.
	Interrupted bool `json:"interrupted"`
	// TargetQPS is the configured rate; AchievedQPS the requests actually
	// sent per second of the window; ThroughputQPS the successful
	// responses per second from t0 to the last response.
	TargetQPS     float64 `json:"target_qps"`
	AchievedQPS   float64 `json:"achieved_qps"`
	ThroughputQPS float64 `json:"throughput_qps"`
	// Scheduled requests = Sent + Dropped (dropped: the in-flight cap was
	// reached). Late counts requests sent more than LateThresholdMs after
	// their intended time.
	Scheduled       int     `json:"scheduled"`
	Sent            int     `json:"sent"`
	Dropped         int     `json:"dropped"`
	Late            int     `json:"late"`
	LateThresholdMs float64 `json:"late_threshold_ms"`
	// Read and Write are per-operation figures.
	Read  OpStats `json:"read"`
	Write OpStats `json:"write"`
	check.Result
	// Config echoes the run's settings; Cluster is the first node's
	// /health document at the start (W, R, N, mode, delays), if any.
	Config  ConfigEcho      `json:"config"`
	Cluster json.RawMessage `json:"cluster,omitempty"`
	// Files names the run's files, relative to the summary's directory.
	Files map[string]string `json:"files"`
}

// OpStats describes one kind of operation. The embedded Percentiles
// (p50_ms ... max_ms, mean_ms) are latencies from the intended start;
// Service has the same figures measured from the actual send.
type OpStats struct {
	// Count is the number sent; OK the successful ones (a read answered
	// 200 or 404, a write 201); Errors the rest. NotFound counts reads
	// answered 404.
	Count    int `json:"count"`
	OK       int `json:"ok"`
	Errors   int `json:"errors"`
	NotFound int `json:"not_found,omitempty"`
	// ErrorsByStatus counts errors by class: an HTTP status ("503",
	// "307"), "timeout", "network" or "bad_response".
	ErrorsByStatus map[string]int `json:"errors_by_status"`
	// Dropped and Late count this kind's dropped and late requests.
	Dropped int `json:"dropped"`
	Late    int `json:"late"`
	check.Percentiles
	Service check.Percentiles `json:"service"`
	// Latency and ServiceTime are the full distributions (microseconds).
	Latency     *hdrhistogram.Histogram `json:"-"`
	ServiceTime *hdrhistogram.Histogram `json:"-"`
}

// ConfigEcho is the run configuration as recorded in summary.json.
type ConfigEcho struct {
	Mode            string    `json:"mode"`
	Nodes           []string  `json:"nodes"`
	ReadFrom        string    `json:"read_from"`
	FollowLeader    bool      `json:"follow_leader,omitempty"`
	WriteRatio      float64   `json:"write_ratio"`
	DeleteRatio     float64   `json:"delete_ratio,omitempty"`
	DurationS       float64   `json:"duration_s"`
	QPS             float64   `json:"qps"`
	Keys            KeyConfig `json:"keys"`
	MaxInFlight     int       `json:"max_inflight"`
	Seed            uint64    `json:"seed"`
	TimeoutMs       float64   `json:"timeout_ms"`
	LateThresholdMs float64   `json:"late_threshold_ms"`
	Check           bool      `json:"check"`
	CheckTimeoutS   float64   `json:"check_timeout_s"`
}

// Echo returns the settings as recorded in summary.json.
func (c *Config) Echo() ConfigEcho {
	return ConfigEcho{
		Mode: c.Mode, Nodes: c.Nodes, ReadFrom: c.ReadFrom, FollowLeader: c.FollowLeader, WriteRatio: c.WriteRatio, DeleteRatio: c.DeleteRatio,
		DurationS: c.Duration.Seconds(), QPS: c.QPS, Keys: c.Keys, MaxInFlight: c.MaxInFlight,
		Seed: c.Seed, TimeoutMs: ms(c.Timeout), LateThresholdMs: ms(c.LateThreshold),
		Check: !c.Check.SkipLinearizability, CheckTimeoutS: c.Check.Timeout.Seconds(),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// RunInfo is what a summary needs besides the history.
type RunInfo struct {
	Config      *Config
	Started     time.Time
	Window      time.Duration
	Interrupted bool
	Cluster     json.RawMessage
}

// Summarize derives a run's summary from its history and check result.
func Summarize(ops []history.Op, res check.Result, info RunInfo) *Summary {
	cfg := info.Config
	s := &Summary{
		SchemaVersion: SchemaVersion, RunID: cfg.RunID, Started: info.Started,
		WindowS: info.Window.Seconds(), Interrupted: info.Interrupted,
		TargetQPS: cfg.QPS, LateThresholdMs: ms(cfg.LateThreshold),
		Result: res, Config: cfg.Echo(), Cluster: info.Cluster,
		Read: newOpStats(), Write: newOpStats(),
	}
	var lastDone int64
	for _, op := range ops {
		st := &s.Read
		if op.IsWrite() {
			st = &s.Write
		}
		st.add(op, cfg.LateThreshold)
		if !op.Dropped {
			lastDone = max(lastDone, op.DoneUS)
		}
	}
	for _, st := range []*OpStats{&s.Read, &s.Write} {
		st.Percentiles = check.PercentilesOf(st.Latency)
		st.Service = check.PercentilesOf(st.ServiceTime)
		s.Sent += st.Count
		s.Dropped += st.Dropped
		s.Late += st.Late
	}
	s.Scheduled = s.Sent + s.Dropped
	if info.Window > 0 {
		s.AchievedQPS = round3(float64(s.Sent) / info.Window.Seconds())
	}
	if span := lastDone - info.Started.UnixMicro(); span > 0 {
		s.ThroughputQPS = round3(float64(s.Read.OK+s.Write.OK) / (float64(span) / 1e6))
	}
	return s
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

func newOpStats() OpStats {
	return OpStats{ErrorsByStatus: map[string]int{}, Latency: check.NewHistogram(), ServiceTime: check.NewHistogram()}
}

func (st *OpStats) add(op history.Op, lateThreshold time.Duration) {
	if op.Dropped {
		st.Dropped++
		return
	}
	st.Count++
	if op.SendDelay() > lateThreshold {
		st.Late++
	}
	if !op.OK() {
		st.Errors++
		st.ErrorsByStatus[op.ErrorClass()]++
		return
	}
	st.OK++
	if op.IsRead() && !op.Found() {
		st.NotFound++
	}
	check.RecordUS(st.Latency, int64(op.Latency()/time.Microsecond))
	check.RecordUS(st.ServiceTime, int64(op.ServiceTime()/time.Microsecond))
}

// WriteFiles writes summary.json, the HDR histograms (base64 V2
// compressed, microseconds) and a percentile text table into dir.
func (s *Summary) WriteFiles(dir string) error {
	hists := map[string]*hdrhistogram.Histogram{
		ReadHDRFile: s.Read.Latency, WriteHDRFile: s.Write.Latency,
		ReadServiceFile: s.Read.ServiceTime, WriteServiceFile: s.Write.ServiceTime,
		IntervalHDRFile: s.WriteRead.Histogram,
	}
	s.Files = map[string]string{"history": HistoryFile, "percentiles": PercentilesFile}
	for name, h := range hists {
		if h == nil {
			continue
		}
		if err := writeHistogram(filepath.Join(dir, name), h); err != nil {
			return err
		}
		s.Files[strings.TrimSuffix(strings.ReplaceAll(name, "-", "_"), ".hdr")+"_hdr"] = name
	}
	if v := s.Linearizability.Visualization; v != "" {
		s.Files["linearizability_viz"] = relTo(dir, v)
	}
	if err := s.writePercentiles(filepath.Join(dir, PercentilesFile)); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, SummaryFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	return nil
}

func relTo(dir, path string) string {
	if r, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

func writeHistogram(path string, h *hdrhistogram.Histogram) error {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return fmt.Errorf("histogram %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("histogram: %w", err)
	}
	return nil
}

// writePercentiles writes HdrHistogram's percentile distribution text of
// each latency, in milliseconds.
func (s *Summary) writePercentiles(path string) error {
	var buf bytes.Buffer
	for _, x := range []struct {
		name string
		h    *hdrhistogram.Histogram
	}{
		{"read latency (ms, from intended start)", s.Read.Latency},
		{"write latency (ms, from intended start)", s.Write.Latency},
		{"read service time (ms)", s.Read.ServiceTime},
		{"write service time (ms)", s.Write.ServiceTime},
	} {
		if x.h == nil || x.h.TotalCount() == 0 {
			continue
		}
		fmt.Fprintf(&buf, "# %s\n", x.name)
		if _, err := x.h.PercentilesPrint(&buf, 5, 1000); err != nil {
			return fmt.Errorf("percentiles: %w", err)
		}
		buf.WriteString("\n")
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("percentiles: %w", err)
	}
	return nil
}

// ReadSummary reads a summary.json (path may also be its directory),
// with the histograms saved beside it when present.
func ReadSummary(path string) (*Summary, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, SummaryFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("summary %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for _, x := range []struct {
		p    **hdrhistogram.Histogram
		file string
	}{
		{&s.Read.Latency, ReadHDRFile}, {&s.Write.Latency, WriteHDRFile},
		{&s.Read.ServiceTime, ReadServiceFile}, {&s.Write.ServiceTime, WriteServiceFile},
		{&s.WriteRead.Histogram, IntervalHDRFile},
	} {
		h, err := ReadHistogram(filepath.Join(dir, x.file))
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		*x.p = h
	}
	return &s, nil
}

// ReadHistogram reads an HDR histogram file written by WriteFiles.
func ReadHistogram(path string) (*hdrhistogram.Histogram, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h, err := hdrhistogram.Decode(bytes.TrimSpace(b))
	if err != nil {
		return nil, fmt.Errorf("histogram %s: %w", path, err)
	}
	return h, nil
}

// WriteTable prints the summary as a readable table.
func (s *Summary) WriteTable(w io.Writer) {
	c := s.Config
	fmt.Fprintf(w, "\nkvdb load: %s mode, %d nodes, reads from %s, %.0f%% writes, %d keys\n",
		c.Mode, len(c.Nodes), c.ReadFrom, c.WriteRatio*100, c.Keys.Keys)
	interrupted := ""
	if s.Interrupted {
		interrupted = " (interrupted)"
	}
	fmt.Fprintf(w, "requests: %d scheduled in %.1fs, target %.1f QPS, achieved %.1f QPS, throughput %.1f ok/s; late %d (>%gms), dropped %d%s\n\n",
		s.Scheduled, s.WindowS, s.TargetQPS, s.AchievedQPS, s.ThroughputQPS, s.Late, s.LateThresholdMs, s.Dropped, interrupted)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\terrors\tp50\tp90\tp95\tp99\tp99.9\tmax\tservice p50\tservice p99\t")
	for _, x := range []struct {
		name string
		st   OpStats
	}{{"read", s.Read}, {"write", s.Write}} {
		p := x.st.Percentiles
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", x.name, x.st.Count, x.st.Errors,
			fmtMs(p.P50Ms), fmtMs(p.P90Ms), fmtMs(p.P95Ms), fmtMs(p.P99Ms), fmtMs(p.P999Ms), fmtMs(p.MaxMs),
			fmtMs(x.st.Service.P50Ms), fmtMs(x.st.Service.P99Ms))
	}
	tw.Flush()
	fmt.Fprintln(w, "(latency in ms from the intended start time; service time from the actual send)")
	for _, x := range []struct {
		name string
		st   OpStats
	}{{"read", s.Read}, {"write", s.Write}} {
		if len(x.st.ErrorsByStatus) > 0 {
			fmt.Fprintf(w, "%s errors: %s\n", x.name, formatCounts(x.st.ErrorsByStatus))
		}
	}
	iv := s.WriteRead
	fmt.Fprintf(w, "\nwrite->read interval (same key): %d reads, p50 %s p90 %s p99 %s ms; %d during the write, %d of unwritten keys\n",
		iv.Count, fmtMs(iv.P50Ms), fmtMs(iv.P90Ms), fmtMs(iv.P99Ms), iv.ReadsDuringWrite, iv.ReadsWithoutWrite)
	fmt.Fprintf(w, "stale reads: %d of %d   inversions: %d   linearizable: %s\n",
		s.StaleReads, s.Reads, s.Inversions, s.Linearizability)
}

func fmtMs(v float64) string { return fmt.Sprintf("%.1f", v) }

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s x%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
