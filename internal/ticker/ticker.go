// Package ticker runs a function at a fixed interval until a context ends.
// sipward's background loops — renewing channel holds, reaping a dead
// node's, pinging Redis, the nodes' heartbeats, keepalives — share it, so
// each is only what it does at a tick.
package ticker

import (
	"context"
	"time"
)

// Every calls f with the time of each tick of an interval-d ticker (the
// first after d), until ctx ends. f runs on Every's goroutine: a slow f
// delays the next tick rather than overlapping it.
func Every(ctx context.Context, d time.Duration, f func(now time.Time)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f(now)
		}
	}
}
