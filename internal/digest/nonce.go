package digest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"
)

// DefaultNonceLifetime is how long a nonce stays valid when NewNonces is given 0.
const DefaultNonceLifetime = 5 * time.Minute

// MinSecretLen is the shortest nonce key NewNonces accepts.
const MinSecretLen = 32

// clockSkew is how far in the future a nonce's timestamp may be and still be
// valid: nodes sharing the key do not share a clock.
const clockSkew = 10 * time.Second

// Nonce layout: 8-byte big-endian Unix seconds, a 3-byte sequence number,
// then the first 16 bytes of HMAC-SHA256(key, version || timestamp ||
// sequence || source address as 16 bytes), base64url without padding:
// 36 characters, safe in a quoted string.
//
// The sequence makes every challenge's nonce unique (RFC 7616 section 3.3):
// without it all challenges sent to one source within one second carried the
// same nonce, and since clients start each fresh nonce at nc=1, the
// nonce-count table took the second client's (or the second call's) first
// use as a replay. Phones behind one NAT and a PBX trunk placing several
// calls a second as one SIP user were refused.
const (
	nonceTSLen  = 8
	nonceSeqLen = 3
	nonceMACLen = 16
	nonceRawLen = nonceTSLen + nonceSeqLen + nonceMACLen
	// NonceLen is the length of the nonces Mint returns.
	NonceLen = (nonceRawLen*8 + 5) / 6

	nonceVersion = 1
	macMsgLen    = 1 + nonceTSLen + nonceSeqLen + 16
)

// NonceState is the outcome of Nonces.Check. The zero value is NonceInvalid.
type NonceState uint8

// Nonce states.
const (
	NonceInvalid NonceState = iota // not minted with our key for this source: forged, garbled or another source
	NonceValid                     // ours, for this source, within its lifetime
	NonceStale                     // ours, for this source, expired: re-challenge with stale=true
)

// String returns "invalid", "valid" or "stale".
func (s NonceState) String() string {
	switch s {
	case NonceValid:
		return "valid"
	case NonceStale:
		return "stale"
	}
	return "invalid"
}

// Nonces mints and checks stateless nonces: a timestamp signed together with
// the client's source address under a secret key. Any node holding the same
// key accepts a nonce minted by another. A Nonces is safe for concurrent use
// and immutable after NewNonces.
type Nonces struct {
	keys     []hmacKey // keys[0] mints; all are accepted (key rotation)
	lifetime int64     // seconds
	seq      atomic.Uint32
}

// hmacKey holds a key's inner and outer HMAC pad blocks, so that a MAC costs
// two calls of sha256.Sum256 on stack buffers and allocates nothing.
type hmacKey struct {
	ipad, opad [sha256.BlockSize]byte
}

func newHMACKey(secret []byte) hmacKey {
	var k hmacKey
	key := secret
	if len(key) > sha256.BlockSize {
		s := sha256.Sum256(key)
		key = s[:]
	}
	copy(k.ipad[:], key)
	copy(k.opad[:], key)
	for i := range k.ipad {
		k.ipad[i] ^= 0x36
		k.opad[i] ^= 0x5c
	}
	return k
}

// mac computes HMAC-SHA256(key, msg) (RFC 2104) for a message of macMsgLen bytes.
func (k *hmacKey) mac(msg *[macMsgLen]byte) [sha256.Size]byte {
	var in [sha256.BlockSize + macMsgLen]byte
	copy(in[:], k.ipad[:])
	copy(in[sha256.BlockSize:], msg[:])
	inner := sha256.Sum256(in[:])
	var out [sha256.BlockSize + sha256.Size]byte
	copy(out[:], k.opad[:])
	copy(out[sha256.BlockSize:], inner[:])
	return sha256.Sum256(out[:])
}

// NewNonces returns a Nonces that mints with secret and accepts nonces minted
// with secret or any of previous (keep the old key in previous for one
// lifetime when rotating it). Every key must have at least MinSecretLen bytes
// from a cryptographic random source. lifetime 0 means DefaultNonceLifetime;
// it is counted in whole seconds.
func NewNonces(secret []byte, lifetime time.Duration, previous ...[]byte) (*Nonces, error) {
	if lifetime == 0 {
		lifetime = DefaultNonceLifetime
	}
	if lifetime < time.Second {
		return nil, fmt.Errorf("digest: nonce lifetime %v: must be at least 1s", lifetime)
	}
	n := &Nonces{lifetime: int64(lifetime / time.Second)}
	n.seq.Store(rand.Uint32()) // nodes sharing a key start at different points
	for i, s := range append([][]byte{secret}, previous...) {
		if len(s) < MinSecretLen {
			if i == 0 {
				return nil, fmt.Errorf("digest: nonce secret has %d bytes, want at least %d", len(s), MinSecretLen)
			}
			return nil, fmt.Errorf("digest: previous nonce secret %d has %d bytes, want at least %d", i-1, len(s), MinSecretLen)
		}
		n.keys = append(n.keys, newHMACKey(s))
	}
	return n, nil
}

// Lifetime returns how long a minted nonce stays valid.
func (n *Nonces) Lifetime() time.Duration { return time.Duration(n.lifetime) * time.Second }

func macMsg(ts uint64, seq [nonceSeqLen]byte, src netip.Addr) (msg [macMsgLen]byte) {
	msg[0] = nonceVersion
	binary.BigEndian.PutUint64(msg[1:], ts)
	copy(msg[1+nonceTSLen:], seq[:])
	a := src.Unmap().As16() // ::ffff:192.0.2.1 and 192.0.2.1 are the same peer
	copy(msg[1+nonceTSLen+nonceSeqLen:], a[:])
	return msg
}

// Mint returns a new nonce for a challenge sent at now to src. Two nonces
// minted by one Nonces within 2^24 challenges of each other differ.
func (n *Nonces) Mint(now time.Time, src netip.Addr) string {
	ts := uint64(now.Unix())
	s := n.seq.Add(1)
	seq := [nonceSeqLen]byte{byte(s >> 16), byte(s >> 8), byte(s)}
	msg := macMsg(ts, seq, src)
	mac := n.keys[0].mac(&msg)
	var raw [nonceRawLen]byte
	binary.BigEndian.PutUint64(raw[:], ts)
	copy(raw[nonceTSLen:], seq[:])
	copy(raw[nonceTSLen+nonceSeqLen:], mac[:nonceMACLen])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// Check reports whether nonce was minted by Mint, with one of our keys, for
// src, and whether it is still within its lifetime at now. It does not
// allocate, and compares MACs in constant time.
func (n *Nonces) Check(nonce string, now time.Time, src netip.Addr) NonceState {
	var raw [nonceRawLen]byte
	if !decodeNonce(&raw, nonce) {
		return NonceInvalid
	}
	ts := binary.BigEndian.Uint64(raw[:])
	msg := macMsg(ts, [nonceSeqLen]byte(raw[nonceTSLen:nonceTSLen+nonceSeqLen]), src)
	ok := false
	for i := range n.keys {
		mac := n.keys[i].mac(&msg)
		if hmac.Equal(mac[:nonceMACLen], raw[nonceTSLen+nonceSeqLen:]) {
			ok = true
			break
		}
	}
	if !ok {
		return NonceInvalid
	}
	age := now.Unix() - int64(ts)
	switch {
	case age < -int64(clockSkew/time.Second):
		return NonceInvalid // ours but from the future: a clock is wrong
	case age > n.lifetime:
		return NonceStale
	}
	return NonceValid
}

// decodeNonce decodes a base64url nonce of exactly NonceLen characters into raw
// without allocating.
func decodeNonce(raw *[nonceRawLen]byte, s string) bool {
	if len(s) != NonceLen {
		return false
	}
	// NonceLen*6 == nonceRawLen*8: every 4 characters make 3 bytes, no padding.
	for i, j := 0, 0; i < len(s); i, j = i+4, j+3 {
		var v uint32
		for k := 0; k < 4; k++ {
			d := b64url(s[i+k])
			if d < 0 {
				return false
			}
			v = v<<6 | uint32(d)
		}
		raw[j], raw[j+1], raw[j+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	return true
}

func b64url(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}
