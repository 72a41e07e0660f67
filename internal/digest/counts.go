package digest

import (
	"crypto/sha256"
	"hash/maphash"
	"sync"
	"time"
)

// NonceCounts remembers the highest nonce count accepted per nonce, against
// replay of credentials with qop=auth (RFC 7616 §3.4: the nc of a reused
// nonce must increase). Implementations must be safe for concurrent use.
//
// LocalCounts keeps the counts in process: exact on one node, blind to a
// replay sent to another. cluster.RedisCounts (an atomic "set if greater"
// with the nonce lifetime as TTL) shares them between nodes.
type NonceCounts interface {
	// Seen records that credentials with count nc were accepted for nonce at
	// now, and reports whether nc is fresh: greater than every count recorded
	// for that nonce before. false means a replay (or a client that reused a
	// count); the request must be rejected.
	Seen(nonce string, nc uint32, now time.Time) bool
}

var _ NonceCounts = (*LocalCounts)(nil)

// DefaultMaxCounts is the number of nonces LocalCounts remembers when
// NewLocalCounts is given 0: about 100 bytes each at most, ~27 MB when full.
const DefaultMaxCounts = 1 << 18

const countShards = 32 // power of two

// LocalCounts is the in-process NonceCounts. Memory is bounded: an entry
// expires one nonce lifetime (plus the allowed clock skew) after it was
// created, and when a shard is full its oldest entry is evicted to make room.
// Entries are created in time order and all live equally long, so the oldest
// is always the next to expire: eviction and expiry are a FIFO pop, O(1).
//
// An entry evicted before its nonce expires forgets that nonce's counts, so a
// replay of it would be accepted until the nonce expires. Entries are only
// created for credentials that passed every other check, so only clients
// that know a password can fill the table; size max above the number of
// fresh nonces authenticated per lifetime.
type LocalCounts struct {
	ttl    int64 // nanoseconds
	seed   maphash.Seed
	shards [countShards]countShard
}

type countShard struct {
	mu   sync.Mutex
	m    map[countKey]uint32 // highest nc seen
	fifo []countItem         // ring of the keys in m, oldest at head
	head int
	n    int
	max  int
	_    [64]byte // keep shards' mutexes on separate cache lines
}

type countItem struct {
	key     countKey
	expires int64 // Unix nanoseconds
}

// countKey holds a nonce of up to 36 bytes as is (sipward's are 36), or the
// SHA-256 of a longer one, so that the table never retains a request's memory.
type countKey struct {
	b [36]byte
	n uint8 // length, or 0xff for a hash
}

func keyOf(nonce string) countKey {
	var k countKey
	if len(nonce) <= len(k.b) {
		k.n = uint8(copy(k.b[:], nonce))
	} else {
		h := sha256.Sum256([]byte(nonce))
		copy(k.b[:], h[:])
		k.n = 0xff
	}
	return k
}

// NewLocalCounts returns a LocalCounts for nonces that live lifetime (pass
// Nonces.Lifetime()) remembering at most max nonces (0 means
// DefaultMaxCounts).
func NewLocalCounts(lifetime time.Duration, max int) *LocalCounts {
	if max <= 0 {
		max = DefaultMaxCounts
	}
	c := &LocalCounts{ttl: int64(lifetime + clockSkew), seed: maphash.MakeSeed()}
	per := (max + countShards - 1) / countShards
	for i := range c.shards {
		c.shards[i].m = make(map[countKey]uint32)
		c.shards[i].max = per
	}
	return c
}

// Seen implements NonceCounts. It allocates only while a shard's table grows.
func (c *LocalCounts) Seen(nonce string, nc uint32, now time.Time) bool {
	s := &c.shards[maphash.String(c.seed, nonce)&(countShards-1)]
	k := keyOf(nonce)
	t := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(t)
	if high, ok := s.m[k]; ok {
		if nc <= high {
			return false
		}
		s.m[k] = nc
		return true
	}
	if s.n == s.max {
		s.pop()
	}
	s.push(countItem{key: k, expires: t + c.ttl})
	s.m[k] = nc
	return true
}

// Len returns the number of nonces remembered.
func (c *LocalCounts) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

func (s *countShard) expire(now int64) {
	for s.n > 0 && s.fifo[s.head].expires <= now {
		s.pop()
	}
}

func (s *countShard) pop() {
	delete(s.m, s.fifo[s.head].key)
	s.fifo[s.head] = countItem{}
	s.head = (s.head + 1) % len(s.fifo)
	s.n--
}

func (s *countShard) push(it countItem) {
	if s.n == len(s.fifo) {
		// Grow the ring, oldest first, up to max.
		size := min(max(2*len(s.fifo), 16), s.max)
		fifo := make([]countItem, size)
		for i := 0; i < s.n; i++ {
			fifo[i] = s.fifo[(s.head+i)%len(s.fifo)]
		}
		s.fifo, s.head = fifo, 0
	}
	s.fifo[(s.head+s.n)%len(s.fifo)] = it
	s.n++
}
