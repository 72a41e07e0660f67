package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sipward/sipward/internal/stage/limits"
)

// Guards: the fallbacks meet the contracts.
var (
	_ limits.Channels = (*FallbackChannels)(nil)
	_ limits.Rates    = (*FallbackRates)(nil)
)

// FallbackChannels is limits.Channels in Redis that keeps serving when
// Redis does not answer: new calls then take node-local channels
// (limits.LocalChannels), so each node enforces every limit on its own
// calls alone — an endpoint of 10 channels may get 10 per node while Redis
// is away. When Redis answers again, Reconcile copies the node-local holds
// of calls still up into Redis (without checking limits: they were
// granted), so the cluster counts them, and frees them locally.
//
// A hold is released, refreshed and counted where it was taken. A hold
// that Redis lost (a Redis restarted without its data, a node cut off for
// longer than the lease) is recorded again at its call's next Refresh.
type FallbackChannels struct {
	redis  *RedisChannels
	local  *limits.LocalChannels
	health *Health

	mu      sync.Mutex
	held    map[string][]limits.Key // call id → keys of holds taken locally and not yet in Redis
	inRed   map[string][]limits.Key // call id → keys of holds this node took in Redis
	release map[string]struct{}     // calls that ended while Redis was away: their Redis holds to free
}

// NewFallbackChannels returns channels in r that fall back to node-local
// ones with the same lease while h says Redis is down.
func NewFallbackChannels(r *RedisChannels, h *Health) *FallbackChannels {
	c := &FallbackChannels{redis: r, local: limits.NewLocalChannels(r.Lease()), health: h,
		held: map[string][]limits.Key{}, inRed: map[string][]limits.Key{}, release: map[string]struct{}{}}
	h.OnUp(c.Reconcile)
	return c
}

// Lease returns the lease of a hold.
func (c *FallbackChannels) Lease() time.Duration { return c.redis.Lease() }

// Local returns the number of holds taken node-locally and not yet handed
// to Redis.
func (c *FallbackChannels) Local() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// unavailable reports whether err is Redis failing (not a contract error),
// and marks Redis down when it is.
func (c *FallbackChannels) unavailable(err error, now time.Time) bool {
	if err == nil || errors.Is(err, limits.ErrHeld) || errors.Is(err, limits.ErrInvalid) {
		return false
	}
	c.health.Fail(now)
	return true
}

// Acquire implements limits.Channels: in Redis, or node-locally while
// Redis is down.
func (c *FallbackChannels) Acquire(ctx context.Context, lims []limits.Limit, callID string, now time.Time) (limits.Denied, error) {
	if c.health.Up() {
		rctx, cancel := context.WithTimeout(ctx, CallTimeout)
		d, err := c.redis.Acquire(rctx, lims, callID, now)
		cancel()
		if !c.unavailable(err, now) {
			if err == nil && d.Granted() && len(lims) > 0 {
				c.note(c.inRed, callID, lims)
			}
			return d, err
		}
	}
	d, err := c.local.Acquire(ctx, lims, callID, now)
	if err == nil && d.Granted() && len(lims) > 0 {
		c.note(c.held, callID, lims)
	}
	return d, err
}

// note records in m the keys of a hold callID took.
func (c *FallbackChannels) note(m map[string][]limits.Key, callID string, lims []limits.Limit) {
	keys := make([]limits.Key, len(lims))
	for i, l := range lims {
		keys[i] = l.Key
	}
	c.mu.Lock()
	m[callID] = keys
	c.mu.Unlock()
}

// isLocal reports whether callID's hold was taken node-locally.
func (c *FallbackChannels) isLocal(callID string) bool {
	c.mu.Lock()
	_, ok := c.held[callID]
	c.mu.Unlock()
	return ok
}

// Release implements limits.Channels.
func (c *FallbackChannels) Release(ctx context.Context, callID string) error {
	if c.isLocal(callID) {
		c.mu.Lock()
		delete(c.held, callID)
		c.mu.Unlock()
		return c.local.Release(ctx, callID)
	}
	c.mu.Lock()
	delete(c.inRed, callID)
	c.mu.Unlock()
	if c.health.Up() {
		rctx, cancel := context.WithTimeout(ctx, CallTimeout)
		err := c.redis.Release(rctx, callID)
		cancel()
		if !c.unavailable(err, time.Now()) {
			return err
		}
	}
	// Redis is away: free the hold when it is back (Reconcile), so that the
	// channel does not stay taken for the rest of its lease.
	c.mu.Lock()
	c.release[callID] = struct{}{}
	c.mu.Unlock()
	return nil
}

// Refresh implements limits.Channels.
func (c *FallbackChannels) Refresh(ctx context.Context, callID string, now time.Time) (bool, error) {
	if c.isLocal(callID) {
		return c.local.Refresh(ctx, callID, now)
	}
	if !c.health.Up() {
		return true, nil // not known lost: the lease outlives a short outage, Reconcile or the next refresh decides
	}
	ok, err := c.redis.Refresh(ctx, callID, now)
	if c.unavailable(err, now) {
		return true, nil
	}
	return ok, err
}

// RefreshMany is Refresh of every id: the node-local holds one by one, the
// Redis ones pipelined (RedisChannels.RefreshMany). While Redis is away
// its holds count as renewed.
func (c *FallbackChannels) RefreshMany(ctx context.Context, ids []string, now time.Time) ([]bool, error) {
	ok := make([]bool, len(ids))
	var red []string
	var at []int
	for i, id := range ids {
		if c.isLocal(id) {
			ok[i], _ = c.local.Refresh(ctx, id, now)
			continue
		}
		red, at = append(red, id), append(at, i)
	}
	if len(red) == 0 {
		return ok, nil
	}
	got, err := []bool(nil), error(nil)
	if c.health.Up() {
		got, err = c.redis.RefreshMany(ctx, red, now)
		if c.unavailable(err, now) {
			got, err = nil, nil
		}
	}
	for j, i := range at {
		ok[i] = got == nil || got[j]
	}
	return ok, err
}

// Restore records again, without checking limits, the Redis hold of a call
// of this node that Refresh found gone — Redis restarted without its data,
// or the node was cut off from it for longer than the lease — since the
// call is up and the cluster must count it. It reports whether it did.
func (c *FallbackChannels) Restore(ctx context.Context, callID string, now time.Time) (bool, error) {
	c.mu.Lock()
	keys, mine := c.inRed[callID]
	c.mu.Unlock()
	if !mine || !c.health.Up() {
		return false, nil
	}
	_, err := c.redis.Acquire(ctx, unchecked(keys), callID, now)
	if err != nil && !errors.Is(err, limits.ErrHeld) {
		c.unavailable(err, now)
		return false, fmt.Errorf("cluster: restore the hold of %q: %w", callID, err)
	}
	return true, nil
}

// unchecked are limits of keys that record a hold without checking a max:
// for calls that are already up.
func unchecked(keys []limits.Key) []limits.Limit {
	lims := make([]limits.Limit, len(keys))
	for i, k := range keys {
		lims[i] = limits.Limit{Key: k}
	}
	return lims
}

// InUse implements limits.Channels: Redis's count plus this node's local
// holds of k (only the latter while Redis is down).
func (c *FallbackChannels) InUse(ctx context.Context, k limits.Key) (int, error) {
	n, _ := c.local.InUse(ctx, k)
	if !c.health.Up() {
		return n, nil
	}
	m, err := c.redis.InUse(ctx, k)
	if c.unavailable(err, time.Now()) {
		return n, nil
	}
	return n + m, err
}

// All implements limits.Channels, counted as InUse.
func (c *FallbackChannels) All(ctx context.Context) ([]limits.Count, error) {
	local := c.local.Snapshot()
	if !c.health.Up() {
		return local, nil
	}
	all, err := c.redis.All(ctx)
	if c.unavailable(err, time.Now()) {
		return local, nil
	}
	if err != nil {
		return nil, err
	}
	for _, l := range local {
		found := false
		for i := range all {
			if all[i].Key == l.Key {
				all[i].InUse += l.InUse
				found = true
				break
			}
		}
		if !found {
			all = append(all, l)
		}
	}
	return all, nil
}

// Reap implements limits.Channels: expired holds go from both, and local
// holds are handed to Redis when it is back.
func (c *FallbackChannels) Reap(ctx context.Context, now time.Time) (int, error) {
	n, _ := c.local.Reap(ctx, now)
	if !c.health.Up() {
		return n, nil
	}
	if err := c.Reconcile(ctx, now); err != nil {
		return n, err
	}
	m, err := c.redis.Reap(ctx, now)
	c.unavailable(err, now)
	return n + m, err
}

// Reconcile frees in Redis the holds of calls that ended while it was away,
// then copies the node-local holds into Redis, granted whatever the limits
// say (their calls are up), and frees them locally. It runs when Redis
// answers again after an outage, and at each Reap.
func (c *FallbackChannels) Reconcile(ctx context.Context, now time.Time) error {
	if err := c.releaseEnded(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	ids := slices.Collect(maps.Keys(c.held))
	c.mu.Unlock()
	for _, id := range ids {
		c.mu.Lock()
		keys, ok := c.held[id]
		c.mu.Unlock()
		if !ok {
			continue // released meanwhile
		}
		rctx, cancel := context.WithTimeout(ctx, CallTimeout)
		_, err := c.redis.Acquire(rctx, unchecked(keys), id, now)
		cancel()
		if err != nil && !errors.Is(err, limits.ErrHeld) {
			return fmt.Errorf("cluster: hand node-local holds to redis: %w", err)
		}
		c.mu.Lock()
		delete(c.held, id)
		c.inRed[id] = keys
		c.mu.Unlock()
		_ = c.local.Release(ctx, id)
	}
	return nil
}

// releaseEnded frees the Redis holds of the calls that ended while Redis
// was away.
func (c *FallbackChannels) releaseEnded(ctx context.Context) error {
	c.mu.Lock()
	ids := slices.Collect(maps.Keys(c.release))
	c.mu.Unlock()
	for _, id := range ids {
		rctx, cancel := context.WithTimeout(ctx, CallTimeout)
		err := c.redis.Release(rctx, id)
		cancel()
		if err != nil {
			return fmt.Errorf("cluster: free the holds of calls that ended while redis was away: %w", err)
		}
		c.mu.Lock()
		delete(c.release, id)
		c.mu.Unlock()
	}
	return nil
}

// Ended returns the number of calls that ended while Redis was away and
// whose Redis holds are still to free.
func (c *FallbackChannels) Ended() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.release)
}

// FallbackRates is limits.Rates in Redis that falls back to node-local
// buckets while Redis does not answer: each node then allows a key's full
// rate on its own.
type FallbackRates struct {
	redis  *RedisRates
	local  *limits.LocalRates
	health *Health
}

// NewFallbackRates returns rates in r that fall back to node-local buckets
// while h says Redis is down.
func NewFallbackRates(r *RedisRates, h *Health) *FallbackRates {
	return &FallbackRates{redis: r, local: limits.NewLocalRates(time.Minute), health: h}
}

// Allow implements limits.Rates.
func (r *FallbackRates) Allow(ctx context.Context, k limits.Key, perSecond int, now time.Time) (bool, error) {
	if r.health.Up() && perSecond > 0 {
		rctx, cancel := context.WithTimeout(ctx, CallTimeout)
		ok, err := r.redis.Allow(rctx, k, perSecond, now)
		cancel()
		if err == nil || errors.Is(err, limits.ErrInvalid) {
			return ok, err
		}
		r.health.Fail(now)
	}
	return r.local.Allow(ctx, k, perSecond, now)
}
