package cluster

// The location service in Redis: every node's registrar bindings, so that
// a call entering any node finds a phone registered through any other.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/store"
)

// LocationMargin is added to the latest binding expiry of a user for the
// Redis TTL of its key: garbage collection only, reads filter by expiry.
const LocationMargin = time.Minute

// syncScript makes the fields of one node in one user's hash what that
// node holds, removes expired fields of any node, and keeps the key's
// TTL at its latest expiry + margin (the key and its index entry go when
// nothing is left). A field another node wrote with a later registration
// time is kept (the phone moved there): its contact is returned, so that
// the caller forgets its stale copy.
//
//	KEYS[1] the user's hash, KEYS[2] the user index
//	ARGV[1] now ms, ARGV[2] node, ARGV[3] margin ms, ARGV[4] username,
//	ARGV[5+2i] contact i, ARGV[6+2i] record i
var syncScript = redis.NewScript(`
local now, node, margin = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local want = {}
for i = 5, #ARGV, 2 do want[ARGV[i]] = ARGV[i+1] end
local cur = redis.call('HGETALL', KEYS[1])
local latest, lost = 0, {}
for i = 1, #cur, 2 do
  local c, v = cur[i], cur[i+1]
  local exp, reg, n = string.match(v, '^(%d+) (%d+) (%S+) ')
  exp, reg = tonumber(exp), tonumber(reg)
  local w = want[c]
  if exp == nil or exp <= now then
    redis.call('HDEL', KEYS[1], c)
  elseif w ~= nil and n ~= node and reg > tonumber(string.match(w, '^%d+ (%d+) ')) then
    want[c] = nil
    lost[#lost+1] = c
    if exp > latest then latest = exp end
  elseif w == nil and n == node then
    redis.call('HDEL', KEYS[1], c)
  elseif w == nil and exp > latest then
    latest = exp
  end
end
for c, v in pairs(want) do
  local exp = tonumber(string.match(v, '^(%d+) '))
  if exp > now then
    redis.call('HSET', KEYS[1], c, v)
    if exp > latest then latest = exp end
  end
end
if latest == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[4])
else
  redis.call('PEXPIREAT', KEYS[1], latest + margin)
  redis.call('SADD', KEYS[2], ARGV[4])
end
return lost
`)

// RedisLocation is registrar.Location in Redis, shared by every node that
// uses the same Redis and prefix:
//
//	<prefix>loc:<username>  hash: contact → "<expiry-ms> <registered-µs> <node> <binding JSON>"
//	                        (the binding with the id and SIP address of its
//	                        node), TTL the latest expiry + LocationMargin
//	<prefix>loc-users       set of the usernames that have a hash, for List
//
// Expired fields are skipped on read and removed on write. Lookup is one
// HGETALL (one round trip); Sync one script per user, all pipelined.
// A failed call is reported by Degraded for a minute; the registrar falls
// back to its own bindings.
type RedisLocation struct {
	client   *redis.Client
	prefix   string
	timeout  time.Duration // of Lookup; Sync and List get longer
	degraded atomic.Int64  // unix nanos of the last failure
}

// NewRedisLocation returns the location service on client, keys starting
// with prefix ("" means DefaultPrefix).
func NewRedisLocation(client *redis.Client, prefix string) *RedisLocation {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &RedisLocation{client: client, prefix: prefix, timeout: CallTimeout}
}

func (l *RedisLocation) key(username string) string { return l.prefix + "loc:" + username }

func (l *RedisLocation) fail(now time.Time, err error) error {
	l.degraded.Store(now.UnixNano())
	return fmt.Errorf("cluster: location: %w", err)
}

// Degraded reports whether a call to Redis failed within the minute
// before now.
func (l *RedisLocation) Degraded(now time.Time) bool {
	last := l.degraded.Load()
	return last != 0 && now.UnixNano()-last < int64(time.Minute)
}

// record encodes b for its hash field.
func record(b *store.Registration) (string, error) {
	js, err := json.Marshal(b)
	if err != nil {
		return "", err
	}
	node := b.Node
	if node == "" {
		node = "-" // the scripts read a word
	}
	return strconv.FormatInt(b.Expires.UnixMilli(), 10) + " " + strconv.FormatInt(b.Registered.UnixMicro(), 10) + " " +
		node + " " + string(js), nil
}

// parseRecord decodes a hash field's value; ok false for one unreadable or
// expired at now.
func parseRecord(v string, now time.Time) (b store.Registration, ok bool) {
	exp, rest, _ := strings.Cut(v, " ")
	ms, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || ms <= now.UnixMilli() {
		return b, false
	}
	for range 2 { // registered, node
		_, rest, _ = strings.Cut(rest, " ")
	}
	if json.Unmarshal([]byte(rest), &b) != nil {
		return b, false
	}
	return b, b.Expires.After(now)
}

// Lookup implements registrar.Location: one HGETALL, within a CallTimeout
// timeout.
func (l *RedisLocation) Lookup(ctx context.Context, username string, now time.Time) ([]store.Registration, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	m, err := l.client.HGetAll(ctx, l.key(username)).Result()
	if err != nil {
		return nil, l.fail(now, err)
	}
	out := make([]store.Registration, 0, len(m))
	for _, v := range m {
		if b, ok := parseRecord(v, now); ok {
			out = append(out, b)
		}
	}
	return out, nil
}

// Sync implements registrar.Location: one script per user, pipelined in
// batches of syncBatch.
func (l *RedisLocation) Sync(ctx context.Context, node string, users map[string][]store.Registration, now time.Time) (map[string][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	lost := map[string][]string{}
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	for len(names) > 0 {
		batch := names[:min(len(names), syncBatch)]
		names = names[len(batch):]
		if err := l.syncBatch(ctx, node, batch, users, now, lost); err != nil {
			return lost, l.fail(now, err)
		}
	}
	return lost, nil
}

// syncBatch is the users in batch in one pipeline.
const syncBatch = 200

func (l *RedisLocation) syncBatch(ctx context.Context, node string, batch []string, users map[string][]store.Registration, now time.Time, lost map[string][]string) error {
	pipe := l.client.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, u := range batch {
		if node == "" {
			node = "-"
		}
		args := []any{now.UnixMilli(), node, LocationMargin.Milliseconds(), u}
		for j := range users[u] {
			rec, err := record(&users[u][j])
			if err != nil {
				return fmt.Errorf("encode binding %q %q: %w", u, users[u][j].Contact, err)
			}
			args = append(args, users[u][j].Contact, rec)
		}
		cmds[i] = syncScript.Eval(ctx, pipe, []string{l.key(u), l.prefix + "loc-users"}, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("sync bindings of %d user(s), among them %q: %w", len(batch), batch[0], err)
	}
	for i, u := range batch {
		gone, err := cmds[i].StringSlice()
		if err != nil {
			return fmt.Errorf("sync bindings of %q: %w", u, err)
		}
		if len(gone) > 0 {
			lost[u] = gone
		}
	}
	return nil
}

// List implements registrar.Location: the live bindings of every user
// (or of username), scanning the user index and reading the hashes
// listBatch at a time, within 2 s.
func (l *RedisLocation) List(ctx context.Context, username string, now time.Time) ([]store.Registration, error) {
	if username != "" {
		return l.Lookup(ctx, username, now)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out []store.Registration
	iter := l.client.SScan(ctx, l.prefix+"loc-users", 0, "", listBatch).Iterator()
	var names []string
	for iter.Next(ctx) {
		names = append(names, iter.Val())
		if len(names) == listBatch {
			if err := l.readUsers(ctx, names, now, &out); err != nil {
				return nil, l.fail(now, err)
			}
			names = names[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return nil, l.fail(now, fmt.Errorf("scan users: %w", err))
	}
	if err := l.readUsers(ctx, names, now, &out); err != nil {
		return nil, l.fail(now, err)
	}
	return out, nil
}

// listBatch is the users read per round trip by List.
const listBatch = 200

func (l *RedisLocation) readUsers(ctx context.Context, names []string, now time.Time, out *[]store.Registration) error {
	if len(names) == 0 {
		return nil
	}
	pipe := l.client.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(names))
	for i, u := range names {
		cmds[i] = pipe.HGetAll(ctx, l.key(u))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("read bindings of %d user(s), among them %q: %w", len(names), names[0], err)
	}
	for _, c := range cmds {
		for _, v := range c.Val() {
			if b, ok := parseRecord(v, now); ok {
				*out = append(*out, b)
			}
		}
	}
	return nil
}
