package registrar

import (
	"context"
	"time"
)

// Start runs the registrar's background loops — expiry, write-behind
// flushes, NAT pings, and with Location the publishing of bindings — until
// ctx ends or Close; s sends the pings and MESSAGEs.
func (g *Registrar) Start(ctx context.Context, s Sender) {
	g.mu.Lock()
	g.sender = s
	g.mu.Unlock()
	ctx, g.stop = context.WithCancel(ctx)
	go func() {
		defer close(g.done)
		var published chan struct{}
		if g.cfg.Location != nil {
			published = make(chan struct{})
			go func() { defer close(published); g.publish(ctx) }()
		}
		g.run(ctx, s)
		if published != nil {
			<-published
		}
	}()
}

// Close stops the loop and waits for it: what changed since the last flush
// is written to the store first. A registrar never started closes at once.
func (g *Registrar) Close() {
	if g.stop == nil {
		return
	}
	g.stop()
	<-g.done
}

// run expires bindings, flushes and sends NAT pings until ctx ends; s nil
// sends no pings.
func (g *Registrar) run(ctx context.Context, s Sender) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastPing, lastFlush := time.Time{}, time.Time{}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.queueLatest()
		_ = g.flush(fctx) // what changed since the last tick survives the shutdown
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := g.cfg.Now()
		g.expire(ctx, now)
		if now.Sub(lastFlush) >= g.cfg.FlushInterval {
			lastFlush = now
			_ = g.flush(ctx)
		}
		if s != nil && g.cfg.Ping != nil && now.Sub(lastPing) >= g.cfg.PingInterval {
			lastPing = now
			g.pingAll(ctx, s)
		}
	}
}
