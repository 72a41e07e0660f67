package b2bua

import (
	"context"
	"time"
)

// Drain waits until no call is active, polling every 100 ms; when ctx ends
// first it hangs up the calls left (BYE on both legs, channels freed) and
// gives the BYEs a moment to leave. New calls must be stopped before (the
// edge answers them 503 while draining).
func (b *B2BUA) Drain(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	defer b.unrelaying.Wait() // the relay's sessions of ended calls deleted (each bounded by releaseTimeout)
	for b.calls.count.Load() > 0 {
		select {
		case <-ctx.Done():
			for _, c := range b.calls.all() {
				b.end(c, true, true, "shutdown")
			}
			time.Sleep(200 * time.Millisecond) // let the BYEs leave
			return
		case <-t.C:
		}
	}
}
