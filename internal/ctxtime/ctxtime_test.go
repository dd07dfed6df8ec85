package ctxtime

import (
	"context"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !Sleep(ctx, 0) || !Sleep(ctx, -time.Second) {
		t.Error("Sleep with no duration on a live context must report true")
	}
	if !Sleep(ctx, time.Millisecond) {
		t.Error("Sleep(1ms) on a live context must report true")
	}
	cancel()
	if Sleep(ctx, 0) {
		t.Error("Sleep on a cancelled context must report false")
	}
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep(1h) on a cancelled context must return false at once")
	}
}
