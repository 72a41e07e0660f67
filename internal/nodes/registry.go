package nodes

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/ticker"
)

// Defaults of Config.
const (
	DefaultInterval  = 5 * time.Second
	DefaultDownAfter = 15 * time.Second
	DefaultForget    = time.Hour
	redisTimeout     = 250 * time.Millisecond
)

// Config configures New.
type Config struct {
	Self   Self
	Redis  *redis.Client // nil: the node knows only itself
	Prefix string        // of the Redis keys (config --redis-prefix)
	// Interval between heartbeats, DownAfter without one before a node is
	// down, Forget before its record is dropped. Zero: the defaults.
	Interval, DownAfter, Forget time.Duration
	// Calls and Registrations count what this node carries now; nil: 0.
	Calls, Registrations func() int
	Log                  *slog.Logger
}

// record is a node's heartbeat, as stored in Redis.
type record struct {
	ID            string    `json:"id"`
	SIP           string    `json:"sip"`
	HTTP          string    `json:"http"`
	Version       string    `json:"version"`
	StartedAt     time.Time `json:"started_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
	ActiveCalls   int       `json:"active_calls"`
	Registrations int       `json:"registrations"`
	Load          float64   `json:"load"`
	Stopped       bool      `json:"stopped,omitempty"` // it shut down
}

// Registry is the nodes of the cluster as this node last saw them. Its
// methods are safe for concurrent use.
type Registry struct {
	cfg      Config
	load     cpuLoad
	mu       sync.Mutex
	self     record
	others   map[string]record // by ID, as last read from Redis
	left     bool              // Leave was called: no more heartbeats
	degraded atomic.Int64      // unix nanos of the last Redis failure
}

// New returns the registry of cfg.Self. It beats once Run is called.
func New(cfg Config) (*Registry, error) {
	if cfg.Self.ID == "" || strings.ContainsAny(cfg.Self.ID, " \t\n") {
		return nil, fmt.Errorf("nodes: node ID %q: must be set, without spaces", cfg.Self.ID)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = DefaultDownAfter
	}
	if cfg.Forget <= 0 {
		cfg.Forget = DefaultForget
	}
	if cfg.DownAfter < cfg.Interval || cfg.Forget < cfg.DownAfter {
		return nil, fmt.Errorf("nodes: interval %s, down after %s, forget %s: want interval ≤ down after ≤ forget",
			cfg.Interval, cfg.DownAfter, cfg.Forget)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := cfg.Self
	r := &Registry{cfg: cfg, others: map[string]record{},
		self: record{ID: s.ID, SIP: s.SIP, Version: s.Version, StartedAt: s.StartedAt, LastSeenAt: s.StartedAt}}
	return r, nil
}

// ID is this node's ID.
func (r *Registry) ID() string { return r.cfg.Self.ID }

// Run beats now and then every Interval until ctx ends, advertising
// httpAddr (host:port) for node-to-node requests.
func (r *Registry) Run(ctx context.Context, httpAddr string) {
	r.mu.Lock()
	r.self.HTTP = httpAddr
	r.mu.Unlock()
	r.Beat(ctx, time.Now())
	ticker.Every(ctx, r.cfg.Interval, func(now time.Time) { r.Beat(ctx, now) })
}

// Beat takes this node's counts and load at now, writes its record and
// reads everyone's (one Redis round trip). It does nothing after Leave.
func (r *Registry) Beat(ctx context.Context, now time.Time) {
	r.mu.Lock()
	if r.left {
		r.mu.Unlock()
		return
	}
	r.self.LastSeenAt = now
	r.self.ActiveCalls, r.self.Registrations = count(r.cfg.Calls), count(r.cfg.Registrations)
	r.self.Load = r.load.sample(now)
	self := r.self
	r.mu.Unlock()
	r.exchange(ctx, self, now)
}

// Leave writes that this node stopped, so peers list it down at once, and
// stops its heartbeats.
func (r *Registry) Leave(ctx context.Context, now time.Time) {
	r.mu.Lock()
	r.left = true
	r.self.Stopped = true
	self := r.self
	r.mu.Unlock()
	r.exchange(ctx, self, now)
}

func count(f func() int) int {
	if f == nil {
		return 0
	}
	return f()
}

// exchange writes self and reads every record, when there is a Redis.
func (r *Registry) exchange(ctx context.Context, self record, now time.Time) {
	if r.cfg.Redis == nil {
		return
	}
	recs, err := r.heartbeat(ctx, self, now)
	if err != nil {
		if prev := r.degraded.Swap(now.UnixNano()); now.UnixNano()-prev > int64(time.Minute) {
			r.cfg.Log.Warn("nodes: heartbeat through Redis failed; listing the nodes as last seen", "err", err)
		}
		return
	}
	others := make(map[string]record, len(recs))
	for _, rec := range recs {
		if rec.ID != self.ID {
			others[rec.ID] = rec
		}
	}
	r.mu.Lock()
	r.others = others
	r.mu.Unlock()
}

// heartbeatScript writes a node's record and returns every node's.
// KEYS[1] the set of nodes; ARGV[1] the key prefix, ARGV[2] the node's ID,
// ARGV[3] its record, ARGV[4] now (Unix ms), ARGV[5] Forget (ms).
var heartbeatScript = redis.NewScript(`
local now, forget = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('SET', ARGV[1] .. 'node:' .. ARGV[2], ARGV[3], 'PX', forget)
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - forget))
redis.call('PEXPIRE', KEYS[1], forget)
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('GET', ARGV[1] .. 'node:' .. id)
  if v then out[#out + 1] = v end
end
return out
`)

func (r *Registry) heartbeat(ctx context.Context, self record, now time.Time) ([]record, error) {
	b, err := json.Marshal(self)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	vals, err := heartbeatScript.Run(ctx, r.cfg.Redis, []string{r.cfg.Prefix + "nodes"},
		r.cfg.Prefix, self.ID, b, now.UnixMilli(), r.cfg.Forget.Milliseconds()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("nodes: heartbeat: %w", err)
	}
	out := make([]record, 0, len(vals))
	for _, v := range vals {
		var rec record
		if err := json.Unmarshal([]byte(v), &rec); err != nil || rec.ID == "" {
			r.cfg.Log.Debug("nodes: unreadable node record skipped", "record", v, "err", err)
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}

// Degraded reports whether a heartbeat through Redis failed within the
// last minute before now.
func (r *Registry) Degraded(now time.Time) bool {
	last := r.degraded.Load()
	return last != 0 && now.UnixNano()-last < int64(time.Minute)
}

// up reports whether rec's node is up at now. This node is up as long as it
// has not left.
func (r *Registry) up(rec record, now time.Time) bool {
	if rec.Stopped {
		return false
	}
	return rec.ID == r.cfg.Self.ID || now.Sub(rec.LastSeenAt) <= r.cfg.DownAfter
}

// records returns this node's record and the others', by ID.
func (r *Registry) records() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]record, 0, len(r.others)+1)
	out = append(out, r.self)
	for _, rec := range r.others {
		out = append(out, rec)
	}
	slices.SortFunc(out, func(a, b record) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Nodes lists the nodes as known at now, by ID: this one and those seen
// within Forget, each up or down.
func (r *Registry) Nodes(now time.Time) []live.Node {
	recs := r.records()
	out := make([]live.Node, 0, len(recs))
	for _, rec := range recs {
		if rec.ID != r.cfg.Self.ID && now.Sub(rec.LastSeenAt) > r.cfg.Forget {
			continue
		}
		st := live.NodeDown
		if r.up(rec, now) {
			st = live.NodeUp
		}
		out = append(out, live.Node{ID: rec.ID, Address: rec.SIP, Version: rec.Version, StartedAt: rec.StartedAt,
			LastSeenAt: rec.LastSeenAt, Status: st, ActiveCalls: rec.ActiveCalls, Registrations: rec.Registrations, Load: rec.Load})
	}
	return out
}

// Node returns the SIP address (host:port of its UDP listener) of node id
// and whether it is up at now; "" and false for a node not known.
func (r *Registry) Node(id string, now time.Time) (sipAddr string, up bool) {
	r.mu.Lock()
	rec, ok := r.others[id]
	if id == r.cfg.Self.ID {
		rec, ok = r.self, true
	}
	r.mu.Unlock()
	if !ok {
		return "", false
	}
	return rec.SIP, r.up(rec, now)
}

// SIPAddr returns the address this node's SIP UDP listener is reached at.
func (r *Registry) SIPAddr() string { return r.cfg.Self.SIP }

// PeerAddr reports whether a is the IP address of another node up at now
// (one whose SIP address is an IP, not a host name). It reads only what
// the last heartbeat brought: no Redis round trip.
func (r *Registry) PeerAddr(a netip.Addr, now time.Time) bool {
	a = a.Unmap()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rec := range r.others {
		if id == r.cfg.Self.ID || !r.up(rec, now) {
			continue
		}
		if ap, err := netip.ParseAddrPort(rec.SIP); err == nil && ap.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

// Peer is another up node, with the HTTP address it serves PeerPath on.
type Peer struct{ ID, HTTP string }

// Peers returns the other nodes up at now that advertise an HTTP address.
func (r *Registry) Peers(now time.Time) []Peer {
	var out []Peer
	for _, rec := range r.records() {
		if rec.ID != r.cfg.Self.ID && rec.HTTP != "" && r.up(rec, now) {
			out = append(out, Peer{ID: rec.ID, HTTP: rec.HTTP})
		}
	}
	return out
}
