package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/ticker"
)

// Health follows whether Redis answers, so that the live state degrades to
// node-local instead of failing calls (FallbackChannels, FallbackRates),
// and is reconciled when Redis comes back.
//
// Redis is "down" from the first failed operation (Fail) or failed ping
// until a ping answers again; Run pings it every PingEvery. While it is
// down the fallbacks do not try Redis at all, so a call does not wait for
// a timeout. When a ping answers after an outage, every OnUp function runs
// (in Run's goroutine) before Redis is used again.
type Health struct {
	client *redis.Client
	down   atomic.Bool
	since  atomic.Int64 // unix nanos: start of the current outage, or end of the last one
	mu     sync.Mutex
	onUp   []func(context.Context, time.Time) error
}

// PingEvery is how often Health pings Redis.
const PingEvery = 500 * time.Millisecond

// NewHealth returns a Health of client, up until something fails.
func NewHealth(client *redis.Client) *Health { return &Health{client: client} }

// Up reports whether Redis is in use (not known down).
func (h *Health) Up() bool { return !h.down.Load() }

// Fail records that an operation on Redis failed at now: Redis is down
// until a ping answers.
func (h *Health) Fail(now time.Time) {
	if h.down.CompareAndSwap(false, true) {
		h.since.Store(now.UnixNano())
	}
}

// Degraded reports whether the node runs on node-local state, or came back
// from that less than a minute before now (the metrics and the health
// page keep showing a short outage for a while).
func (h *Health) Degraded(now time.Time) bool {
	if h.down.Load() {
		return true
	}
	t := h.since.Load()
	return t != 0 && now.UnixNano()-t < int64(time.Minute)
}

// Since returns when the current outage started (zero when Redis is up).
func (h *Health) Since() time.Time {
	if !h.down.Load() {
		return time.Time{}
	}
	return time.Unix(0, h.since.Load())
}

// OnUp adds f to what runs when Redis answers again after an outage. An f
// that fails keeps Redis marked down; it is tried again at the next ping.
func (h *Health) OnUp(f func(context.Context, time.Time) error) {
	h.mu.Lock()
	h.onUp = append(h.onUp, f)
	h.mu.Unlock()
}

// Run pings Redis every PingEvery until ctx ends: a failed ping marks it
// down, an answer after an outage reconciles (OnUp) and marks it up.
func (h *Health) Run(ctx context.Context) {
	ticker.Every(ctx, PingEvery, func(now time.Time) { h.check(ctx, now) })
}

// check is one ping.
func (h *Health) check(ctx context.Context, now time.Time) {
	pctx, cancel := context.WithTimeout(ctx, CallTimeout)
	err := h.client.Ping(pctx).Err()
	cancel()
	if err != nil {
		h.Fail(now)
		return
	}
	if !h.down.Load() {
		return
	}
	h.mu.Lock()
	fs := h.onUp
	h.mu.Unlock()
	for _, f := range fs {
		if f(ctx, now) != nil {
			return // still down for the state it could not hand back
		}
	}
	h.since.Store(now.UnixNano())
	h.down.Store(false)
}
