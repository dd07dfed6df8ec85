package load

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kvdb/kvdb/internal/history"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestProgress(t *testing.T) {
	for _, terminal := range []bool{false, true} {
		var out lockedBuffer
		cfg := DefaultConfig()
		cfg.Progress, cfg.Terminal, cfg.ProgressInterval = &out, terminal, 5*time.Millisecond
		rec := &recorder{w: history.NewWriter(&bytes.Buffer{})}
		rec.record(history.Op{Op: history.OpGet, Key: "k", Status: 503})
		s := &scheduler{cfg: &cfg, rec: rec}
		s.scheduled.Store(3)
		stop := startProgress(&cfg, s, time.Now())
		waitFor(t, func() bool { return strings.Count(out.String(), "scheduled 3") >= 2 })
		stop()
		got := out.String()
		if !strings.Contains(got, "of 1m0s") || !strings.Contains(got, "errors 1") || !strings.HasSuffix(got, "\n") {
			t.Errorf("terminal=%v: progress %q", terminal, got)
		}
		if redraws := strings.Contains(got, "\r\x1b[K"); redraws != terminal {
			t.Errorf("terminal=%v: redraw codes present %v", terminal, redraws)
		}
	}
}

// Without a progress writer nothing runs: startProgress starts no
// goroutine (checked before stop, which would end one) and never looks at
// the scheduler (nil here: a printer would dereference it at its first
// tick, a millisecond in).
func TestNoProgressWriter(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ProgressInterval = time.Millisecond
	before := goleak.IgnoreCurrent()
	stop := startProgress(&cfg, nil, time.Now())
	goleak.VerifyNone(t, before)
	stop()
}
