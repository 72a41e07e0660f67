package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/stage/firewall"
)

var _ firewall.SharedCounts = (*RedisFailures)(nil)

// ErrSkipped is what a shared state answers instead of calling Redis in the
// RetryAfter that follows a failed call.
var ErrSkipped = errors.New("redis skipped after a recent failure")

// countSlack is added to a count's window for its Redis TTL: garbage
// collection, and room for node clocks that disagree a little.
const countSlack = 10 * time.Second

// addFailureScript counts one failure in a window anchored at the first
// failure (the firewall Detector's rule) and restarts the count when it
// reaches the threshold, so that exactly one caller sees the threshold.
//
//	KEYS[1] the count, a hash {s: window start µs, n: count}
//	ARGV[1] now µs, ARGV[2] window µs, ARGV[3] threshold, ARGV[4] TTL ms
//
// Returns the count, this failure included.
var addFailureScript = redis.NewScript(`
local now, win, thr = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local s = tonumber(redis.call('HGET', KEYS[1], 's'))
local n
if not s or now - s >= win or now < s - win then
  redis.call('HSET', KEYS[1], 's', now, 'n', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  n = 1
else
  n = redis.call('HINCRBY', KEYS[1], 'n', 1)
end
if n >= thr then redis.call('DEL', KEYS[1]) end
return n
`)

// RedisFailures is firewall.SharedCounts in Redis: the fraud detector's
// counts of failed authentications and unanswered challenges, shared by
// every node that uses the same Redis and prefix. Each (kind, source) count
// is the hash <prefix>fail:<kind>:<addr>, changed by one script a failure
// (one round trip), with a TTL of the window plus a little. A call waits
// at most CallTimeout; after a failure Redis is skipped for RetryAfter and
// the detector counts alone (Degraded says so). Safe for concurrent use.
type RedisFailures struct {
	client *redis.Client
	prefix string
	fb     fallback
}

// NewRedisFailures returns failure counts on client whose keys start with
// prefix ("" means DefaultPrefix).
func NewRedisFailures(client *redis.Client, prefix string) *RedisFailures {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &RedisFailures{client: client, prefix: prefix}
}

func (r *RedisFailures) key(addr netip.Addr, kind firewall.Kind) string {
	return r.prefix + "fail:" + kind.String() + ":" + addr.String()
}

// Add implements firewall.SharedCounts.
func (r *RedisFailures) Add(addr netip.Addr, kind firewall.Kind, threshold int, window time.Duration, now time.Time) (int, error) {
	ctx, cancel, ok := r.fb.try(now)
	if !ok {
		return 0, fmt.Errorf("cluster: count failure of %s: %w", addr, ErrSkipped)
	}
	defer cancel()
	n, err := addFailureScript.Run(ctx, r.client, []string{r.key(addr, kind)},
		now.UnixMicro(), window.Microseconds(), threshold, (window + countSlack).Milliseconds()).Int()
	if err != nil {
		r.fb.failed(now)
		return 0, fmt.Errorf("cluster: count failure of %s: %w", addr, err)
	}
	return n, nil
}

// Forgive implements firewall.SharedCounts.
func (r *RedisFailures) Forgive(addr netip.Addr, kind firewall.Kind, now time.Time) error {
	ctx, cancel, ok := r.fb.try(now)
	if !ok {
		return fmt.Errorf("cluster: forgive %s: %w", addr, ErrSkipped)
	}
	defer cancel()
	if err := r.client.Del(ctx, r.key(addr, kind)).Err(); err != nil {
		r.fb.failed(now)
		return fmt.Errorf("cluster: forgive %s: %w", addr, err)
	}
	return nil
}

// Degraded reports whether the counts fell back to a node's own within
// DegradedFor before now.
func (r *RedisFailures) Degraded(now time.Time) bool { return r.fb.degraded(now) }

// UseHealth makes the node's Health decide when Redis is skipped (while it
// says Redis is down, instead of RetryAfter) and tells it of failures, so
// that /healthz reports them.
func (r *RedisFailures) UseHealth(h *Health) { r.fb.health = h }
