package ticker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestEveryTicksUntilCancelled: f runs at each tick and Every returns when
// its context ends.
func TestEveryTicksUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		Every(ctx, time.Millisecond, func(time.Time) {
			if n.Add(1) == 3 {
				cancel()
			}
		})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	if n.Load() < 3 {
		t.Errorf("f ran %d times before the cancel, want 3", n.Load())
	}
}
