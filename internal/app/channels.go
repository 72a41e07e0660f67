package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipward/sipward/internal/b2bua"
	"github.com/sipward/sipward/internal/cluster"
	"github.com/sipward/sipward/internal/stage/limits"
	"github.com/sipward/sipward/internal/ticker"
)

// renewHolds refreshes the channel holds of the calls in progress every
// third of the lease, so that a call keeps its channels as long as it
// lives and a dead node's come back within one lease.
func renewHolds(ctx context.Context, calls *b2bua.B2BUA, ch limits.Channels, lease time.Duration, log *slog.Logger) {
	var ids []string
	ticker.Every(ctx, lease/3, func(now time.Time) {
		ids = calls.HoldIDs(ids[:0])
		if n := renew(ctx, ch, ids, now); n > 0 {
			log.Warn("limits: the shared state had lost the channels of calls in progress; recorded again", "calls", n)
		}
	})
}

// restorer is a Channels that can record again a hold of a live call
// that the shared state lost (cluster.FallbackChannels).
type restorer interface {
	Restore(ctx context.Context, callID string, now time.Time) (bool, error)
}

// manyRefresher is a Channels that renews many holds in one go
// (cluster.FallbackChannels: pipelined in Redis).
type manyRefresher interface {
	RefreshMany(ctx context.Context, ids []string, now time.Time) ([]bool, error)
}

// renew refreshes the holds of ids and restores those found lost; it
// returns how many it restored.
func renew(ctx context.Context, ch limits.Channels, ids []string, now time.Time) int {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ok []bool
	if m, is := ch.(manyRefresher); is {
		ok, _ = m.RefreshMany(rctx, ids, now)
	} else {
		ok = make([]bool, len(ids))
		for i, id := range ids {
			ok[i], _ = ch.Refresh(rctx, id, now)
		}
	}
	r, _ := ch.(restorer)
	restored := 0
	for i, id := range ids {
		if ok[i] || r == nil {
			continue
		}
		if done, _ := r.Restore(rctx, id, now); done {
			restored++
		}
	}
	return restored
}

// reap frees channels whose lease ran out (held by a node that died).
func reap(ctx context.Context, ch limits.Channels, every time.Duration, log *slog.Logger) {
	ticker.Every(ctx, every, func(now time.Time) {
		if n, err := ch.Reap(ctx, now); err != nil {
			log.Warn("limits: reap expired channels", "err", err)
		} else if n > 0 {
			log.Info("limits: freed channels of expired holds", "holds", n)
		}
	})
}

// redisMetrics exports whether the node runs on Redis or on node-local
// state.
func redisMetrics(reg *prometheus.Registry, h *cluster.Health) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipward_redis_up",
		Help: "1 while Redis answers; 0 while the node counts channels, CPS and nonces on its own (degraded)."},
		func() float64 {
			if h.Up() {
				return 1
			}
			return 0
		}))
}
