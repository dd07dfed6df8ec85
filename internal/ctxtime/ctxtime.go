// Package ctxtime holds the one wait that every part of kvdb needs: sleep
// for a while unless a context ends first.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx is done, and reports whether it slept the
// whole time. A d of zero or less returns at once: true unless ctx is done.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
