package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/stage/limits"
)

// Guards: the Redis implementations meet the contracts.
var (
	_ limits.Channels = (*RedisChannels)(nil)
	_ limits.Rates    = (*RedisRates)(nil)
)

// DefaultPrefix starts every key when the constructor is given "".
const DefaultPrefix = "sipward:"

// GCMargin is added to the lease for the Redis TTL of channel keys and hold
// records: a safety net for holds nobody reaps, not the lease itself.
const GCMargin = 10 * time.Minute

// scanBatch is the number of index entries read (and reaped) per round trip.
const scanBatch = 100

// RedisChannels is limits.Channels in Redis, shared by every node that uses
// the same Redis and prefix. See the package documentation for the key
// layout. Safe for concurrent use.
type RedisChannels struct {
	client *redis.Client
	prefix string
	lease  time.Duration
	ttlMs  string // Redis TTL of keys, lease + GCMargin, in ms
	index  string
}

// NewRedisChannels returns a RedisChannels on client whose keys start with
// prefix ("" means DefaultPrefix) and whose holds last lease unless
// refreshed (<= 0 means limits.DefaultLease).
func NewRedisChannels(client *redis.Client, prefix string, lease time.Duration) *RedisChannels {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if lease <= 0 {
		lease = limits.DefaultLease
	}
	return &RedisChannels{
		client: client,
		prefix: prefix,
		lease:  lease,
		ttlMs:  strconv.FormatInt((lease + GCMargin).Milliseconds(), 10),
		index:  prefix + "ch-index",
	}
}

// Lease returns the lease of a hold.
func (c *RedisChannels) Lease() time.Duration { return c.lease }

// suffix is the "<kind>:<id>" naming k in keys and hold records.
func suffix(k limits.Key) string {
	return k.Kind.String() + ":" + strconv.FormatInt(k.ID, 10)
}

// parseSuffix is the inverse of suffix.
func parseSuffix(s string) (limits.Key, bool) {
	kind, id, ok := strings.Cut(s, ":")
	if !ok {
		return limits.Key{}, false
	}
	k, ok := limits.ParseKind(kind)
	if !ok {
		return limits.Key{}, false
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return limits.Key{}, false
	}
	return limits.Key{Kind: k, ID: n}, true
}

func (c *RedisChannels) holdKey(callID string) string { return c.prefix + "hold:" + callID }

func (c *RedisChannels) chanKey(s string) string { return c.prefix + "ch:" + s }

// Acquire implements limits.Channels in one script: see acquireScript.
func (c *RedisChannels) Acquire(ctx context.Context, lims []limits.Limit, callID string, now time.Time) (limits.Denied, error) {
	if err := limits.CheckAcquire(lims, callID); err != nil {
		return limits.Denied{}, fmt.Errorf("cluster: acquire channels: %w", err)
	}
	keys := make([]string, 2, 2+len(lims))
	keys[0], keys[1] = c.holdKey(callID), c.index
	args := make([]any, 5, 5+2*len(lims))
	t := now.UnixMicro()
	args[0], args[1], args[2], args[3], args[4] = callID, t, t+c.lease.Microseconds(), c.ttlMs, c.prefix
	for _, l := range lims {
		s := suffix(l.Key)
		keys = append(keys, c.chanKey(s))
		args = append(args, s, l.Max)
	}
	res, err := acquireScript.Run(ctx, c.client, keys, args...).Int64Slice()
	if err != nil {
		return limits.Denied{}, fmt.Errorf("cluster: acquire channels: %w", err)
	}
	if len(res) != 2 {
		return limits.Denied{}, fmt.Errorf("cluster: acquire channels: unexpected reply %v", res)
	}
	switch i := res[0]; {
	case i == 0:
		return limits.Denied{}, nil
	case i == -1:
		return limits.Denied{}, limits.ErrHeld
	case i >= 1 && int(i) <= len(lims):
		return limits.Denied{Limit: lims[i-1], InUse: int(res[1])}, nil
	}
	return limits.Denied{}, fmt.Errorf("cluster: acquire channels: unexpected reply %v", res)
}

// Release implements limits.Channels.
func (c *RedisChannels) Release(ctx context.Context, callID string) error {
	if callID == "" {
		return nil
	}
	err := releaseScript.Run(ctx, c.client, []string{c.holdKey(callID), c.index}, callID, c.prefix).Err()
	if err != nil {
		return fmt.Errorf("cluster: release channels: %w", err)
	}
	return nil
}

// Refresh implements limits.Channels.
func (c *RedisChannels) Refresh(ctx context.Context, callID string, now time.Time) (bool, error) {
	if callID == "" {
		return false, nil
	}
	t := now.UnixMicro()
	n, err := refreshScript.Run(ctx, c.client, []string{c.holdKey(callID), c.index},
		callID, c.prefix, t, t+c.lease.Microseconds(), c.ttlMs).Int64()
	if err != nil {
		return false, fmt.Errorf("cluster: refresh channels: %w", err)
	}
	return n == 1, nil
}

// refreshBatch is how many holds RefreshMany renews per round trip.
const refreshBatch = 500

// RefreshMany is Refresh of every id, pipelined: one round trip per
// refreshBatch holds instead of one per hold. ok[i] is Refresh's answer for
// ids[i].
func (c *RedisChannels) RefreshMany(ctx context.Context, ids []string, now time.Time) (ok []bool, err error) {
	ok = make([]bool, len(ids))
	t := now.UnixMicro()
	for start := 0; start < len(ids); start += refreshBatch {
		batch := ids[start:min(start+refreshBatch, len(ids))]
		if err := c.refreshBatch(ctx, batch, t, ok[start:]); err != nil {
			return ok, fmt.Errorf("cluster: refresh channels: %w", err)
		}
	}
	return ok, nil
}

// refreshBatch renews the holds of ids in one pipeline, loading the script
// first when Redis does not know it (a restarted Redis).
func (c *RedisChannels) refreshBatch(ctx context.Context, ids []string, t int64, ok []bool) error {
	for attempt := 0; ; attempt++ {
		pipe := c.client.Pipeline()
		cmds := make([]*redis.Cmd, len(ids))
		for i, id := range ids {
			cmds[i] = refreshScript.EvalSha(ctx, pipe, []string{c.holdKey(id), c.index},
				id, c.prefix, t, t+c.lease.Microseconds(), c.ttlMs)
		}
		_, err := pipe.Exec(ctx)
		if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := refreshScript.Load(ctx, c.client).Err(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		for i, cmd := range cmds {
			n, _ := cmd.Int64()
			ok[i] = n == 1
		}
		return nil
	}
}

// InUse implements limits.Channels: the cardinality of k's sorted set.
func (c *RedisChannels) InUse(ctx context.Context, k limits.Key) (int, error) {
	n, err := c.client.ZCard(ctx, c.chanKey(suffix(k))).Result()
	if err != nil {
		return 0, fmt.Errorf("cluster: count channels of %v: %w", k, err)
	}
	return int(n), nil
}

// All implements limits.Channels. It reads the index in batches and counts
// each batch in one pipelined round trip; it is not one atomic snapshot.
func (c *RedisChannels) All(ctx context.Context) ([]limits.Count, error) {
	var out []limits.Count
	seen := make(map[limits.Key]bool)
	err := c.scanIndex(ctx, func(batch []string) error {
		pipe := c.client.Pipeline()
		cmds := make([]*redis.IntCmd, len(batch))
		for i, s := range batch {
			cmds[i] = pipe.ZCard(ctx, c.chanKey(s))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i, s := range batch {
			k, ok := parseSuffix(s)
			if !ok || seen[k] {
				continue
			}
			seen[k] = true
			if n := cmds[i].Val(); n > 0 {
				out = append(out, limits.Count{Key: k, InUse: int(n)})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: list channels: %w", err)
	}
	return out, nil
}

// Reap implements limits.Channels, one script per batch of index entries.
func (c *RedisChannels) Reap(ctx context.Context, now time.Time) (int, error) {
	total := 0
	err := c.scanIndex(ctx, func(batch []string) error {
		args := make([]any, 0, 2+len(batch))
		args = append(args, c.prefix, now.UnixMicro())
		for _, s := range batch {
			args = append(args, s)
		}
		n, err := reapScript.Run(ctx, c.client, []string{c.index}, args...).Int()
		total += n
		return err
	})
	if err != nil {
		return total, fmt.Errorf("cluster: reap channels: %w", err)
	}
	return total, nil
}

// scanIndex calls fn with the index entries, a batch at a time.
func (c *RedisChannels) scanIndex(ctx context.Context, fn func(batch []string) error) error {
	var cursor uint64
	for {
		batch, next, err := c.client.SScan(ctx, c.index, cursor, "", scanBatch).Result()
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
