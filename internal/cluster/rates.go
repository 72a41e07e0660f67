package cluster

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/stage/limits"
)

// CPSIdle is how long a CPS bucket outlives the moment it is full again,
// as slack for clock differences between nodes (and for tests that step
// time faster than it passes). A bucket that expires comes back full, which
// is what it is by then.
const CPSIdle = 10 * time.Second

// maxRate is the highest perSecond RedisRates tells apart: the GCRA works
// in whole microseconds, so above a million calls per second the emission
// interval stays at 1µs.
const maxRate = 1_000_000

// RedisRates is limits.Rates in Redis: the token bucket of limits.Rates,
// as a GCRA (one theoretical arrival time per key, in microseconds), shared
// by every node that uses the same Redis and prefix. Safe for concurrent
// use.
type RedisRates struct {
	client *redis.Client
	prefix string
	idleMs int64
}

// NewRedisRates returns a RedisRates on client whose keys start with prefix
// ("" means DefaultPrefix).
func NewRedisRates(client *redis.Client, prefix string) *RedisRates {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &RedisRates{client: client, prefix: prefix, idleMs: CPSIdle.Milliseconds()}
}

// Allow implements limits.Rates in one script: see allowScript.
func (r *RedisRates) Allow(ctx context.Context, k limits.Key, perSecond int, now time.Time) (bool, error) {
	if perSecond <= 0 {
		return true, nil
	}
	if !k.Kind.Valid() {
		return false, fmt.Errorf("cluster: check cps: %v: %w", k.Kind, limits.ErrInvalid)
	}
	interval := int64(time.Second/time.Microsecond) / int64(min(perSecond, maxRate))
	window := interval * int64(perSecond)
	key := r.prefix + "cps:" + k.Kind.String() + ":" + strconv.FormatInt(k.ID, 10)
	n, err := allowScript.Run(ctx, r.client, []string{key}, now.UnixMicro(), interval, window, r.idleMs).Int()
	if err != nil {
		return false, fmt.Errorf("cluster: check cps of %v: %w", k, err)
	}
	return n == 1, nil
}
