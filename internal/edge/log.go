package edge

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rateLimiter allows one event per interval (floods must not become log floods).
type rateLimiter struct {
	mu    sync.Mutex
	every time.Duration
	last  time.Time
}

func (l *rateLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) < l.every {
		return false
	}
	l.last = now
	return true
}

// limitedHandler passes Warn and above at most once per interval, and
// never passes sipgo's Info/Debug chatter above our own level.
type limitedHandler struct {
	h   slog.Handler
	lim *rateLimiter
}

func (h *limitedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.h.Enabled(ctx, l)
}

func (h *limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.lim.allow(time.Now()) {
		return nil
	}
	// Never log whole packets: keep the message and drop attributes.
	nr := slog.NewRecord(r.Time, r.Level, "sipgo: "+r.Message, r.PC)
	return h.h.Handle(ctx, nr)
}

func (h *limitedHandler) WithAttrs(as []slog.Attr) slog.Handler { return h }
func (h *limitedHandler) WithGroup(string) slog.Handler         { return h }

// sipgoLogger routes sipgo's logs through a rate limit: sipgo logs parse
// failures of every UDP packet at Error level with the whole packet
// (SIPGO-NOTES pitfall 6).
func sipgoLogger(log *slog.Logger) *slog.Logger {
	return slog.New(&limitedHandler{h: log.Handler(), lim: &rateLimiter{every: 5 * time.Second}})
}
