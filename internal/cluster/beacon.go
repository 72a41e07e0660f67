package cluster

// Beacons: a minimal liveness table of the nodes, so that the route stage
// can tell whether the node a binding was made through is up and where its
// SIP listener is. It is a stand-in for the node registry (package nodes)
// and meets the same interface (route.Nodes).

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// BeaconInterval is how often a node says it is up; BeaconDown how long
// after its last beacon it counts as gone.
const (
	BeaconInterval = 2 * time.Second
	BeaconDown     = 10 * time.Second
	beaconForget   = time.Hour // beacons older than this are deleted
)

// beatScript records this node's beacon, deletes beacons older than
// beaconForget, and returns all of them.
//
//	KEYS[1] the beacons hash; ARGV[1] id, ARGV[2] "<now-ms> <sip-addr>",
//	ARGV[3] the oldest time kept, in ms
var beatScript = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local t = tonumber(string.match(all[i+1], '^(%d+)'))
  if t == nil or t < tonumber(ARGV[3]) then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out+1] = all[i]
    out[#out+1] = all[i+1]
  end
end
return out
`)

type beacon struct {
	addr string
	last time.Time
}

// Beacons is the table of nodes' beacons in <prefix>loc-nodes (a hash:
// node id → "<unix-ms> <sip-addr>"), read and written every
// BeaconInterval by Run; Node and Peer answer from the last read.
type Beacons struct {
	client   *redis.Client
	key      string
	id, addr string
	mu       sync.RWMutex
	seen     map[string]beacon
	degraded atomic.Int64
}

// NewBeacons returns the beacons of the node id whose SIP UDP listener is
// at sipAddr ("host:port"), in client under prefix ("" means
// DefaultPrefix).
func NewBeacons(client *redis.Client, prefix, id, sipAddr string) *Beacons {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Beacons{client: client, key: prefix + "loc-nodes", id: id, addr: sipAddr, seen: map[string]beacon{}}
}

// Beat writes this node's beacon at now and reads everyone's.
func (b *Beacons) Beat(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	v := strconv.FormatInt(now.UnixMilli(), 10) + " " + b.addr
	all, err := beatScript.Run(ctx, b.client, []string{b.key}, b.id, v, now.Add(-beaconForget).UnixMilli()).StringSlice()
	if err != nil {
		b.degraded.Store(now.UnixNano())
		return err
	}
	seen := make(map[string]beacon, len(all)/2)
	for i := 0; i+1 < len(all); i += 2 {
		ms, addr, _ := strings.Cut(all[i+1], " ")
		n, err := strconv.ParseInt(ms, 10, 64)
		if err == nil {
			seen[all[i]] = beacon{addr: addr, last: time.UnixMilli(n)}
		}
	}
	b.mu.Lock()
	b.seen = seen
	b.mu.Unlock()
	return nil
}

// Run beats every BeaconInterval until ctx ends, then deletes this node's
// beacon, so that the others know at once that it is gone.
func (b *Beacons) Run(ctx context.Context) {
	t := time.NewTicker(BeaconInterval)
	defer t.Stop()
	for {
		_ = b.Beat(ctx, time.Now()) // a failure is Degraded; Node answers from the last read
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			b.client.HDel(dctx, b.key, b.id)
			cancel()
			return
		case <-t.C:
		}
	}
}

// Node returns the SIP address of node id and whether it is up at now:
// its beacon is younger than BeaconDown. This node is always up.
func (b *Beacons) Node(id string, now time.Time) (sipAddr string, up bool) {
	if id == b.id {
		return b.addr, true
	}
	b.mu.RLock()
	s, ok := b.seen[id]
	b.mu.RUnlock()
	if !ok {
		return "", false
	}
	return s.addr, now.Sub(s.last) < BeaconDown
}

// Peer reports whether a is the address of a node that is up at now.
func (b *Beacons) Peer(a netip.Addr, now time.Time) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, s := range b.seen {
		if ap, err := netip.ParseAddrPort(s.addr); err == nil && ap.Addr().Unmap() == a.Unmap() && now.Sub(s.last) < BeaconDown {
			return true
		}
	}
	return false
}

// Degraded reports whether a beat failed within the minute before now.
func (b *Beacons) Degraded(now time.Time) bool {
	last := b.degraded.Load()
	return last != 0 && now.UnixNano()-last < int64(time.Minute)
}
