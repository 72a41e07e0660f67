package digest

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config configures an Authenticator.
type Config struct {
	// Realm is the digest realm challenged with and required in credentials.
	Realm string
	// Algorithms are offered one challenge header each, in this order, and
	// only these are accepted. nil means MD5 only. RFC 8760 §2.3: list the
	// preferred first; New refuses MD5 before a SHA-2 algorithm. Offering MD5
	// alongside SHA-256 admits a downgrade by an on-path attacker (RFC 8760 §3),
	// but most SIP clients in the field know only MD5.
	Algorithms []Algorithm
	// Nonces mints and checks nonces. Required.
	Nonces *Nonces
	// Counts tracks nonce counts against replay. nil disables nonce-count
	// tracking: a captured request can then be replayed from the same source
	// address until its nonce expires.
	Counts NonceCounts
}

// Authenticator issues challenges and checks credentials for one realm. It is
// immutable after New and safe for concurrent use.
type Authenticator struct {
	realm  string
	algs   []Algorithm
	nonces *Nonces
	counts NonceCounts
	offer  [SHA512_256 + 1]bool

	// Challenge headers are prefix + nonce + suffix[alg] (+ staleSuffix).
	prefix string
	suffix [SHA512_256 + 1]string
}

const staleSuffix = ", stale=true"

// New validates cfg and returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Realm == "" {
		return nil, errors.New("digest: realm is empty")
	}
	for i := 0; i < len(cfg.Realm); i++ {
		if c := cfg.Realm[i]; c < 0x20 || c == 0x7f {
			return nil, fmt.Errorf("digest: realm %q: control character at offset %d", cfg.Realm, i)
		}
	}
	if cfg.Nonces == nil {
		return nil, errors.New("digest: Nonces is nil")
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = []Algorithm{MD5}
	}
	a := &Authenticator{
		realm:  cfg.Realm,
		algs:   append([]Algorithm(nil), algs...),
		nonces: cfg.Nonces,
		counts: cfg.Counts,
		prefix: `Digest realm="` + quote(cfg.Realm) + `", nonce="`,
	}
	for i, alg := range a.algs {
		if !alg.Valid() {
			return nil, fmt.Errorf("digest: algorithms[%d]: invalid algorithm %d", i, uint8(alg))
		}
		if a.offer[alg] {
			return nil, fmt.Errorf("digest: algorithms[%d]: duplicate %s", i, alg)
		}
		if alg != MD5 && a.offer[MD5] {
			return nil, fmt.Errorf("digest: algorithms[%d]: %s listed after MD5; offer the stronger first (RFC 8760 §2.3)", i, alg)
		}
		a.offer[alg] = true
		a.suffix[alg] = `", algorithm=` + alg.String() + `, qop="auth"`
	}
	return a, nil
}

// Realm returns the realm a challenges with.
func (a *Authenticator) Realm() string { return a.realm }

// Algorithms returns the algorithms offered, in order.
func (a *Authenticator) Algorithms() []Algorithm { return append([]Algorithm(nil), a.algs...) }

// Challenge returns the challenge header values for a request received at now
// from src: one per algorithm, in preference order, sharing one fresh nonce.
// Send them all, in this order, under Kind.ChallengeHeader. Set stale when
// answering StaleNonce.
func (a *Authenticator) Challenge(now time.Time, src netip.Addr, stale bool) []string {
	nonce := a.nonces.Mint(now, src)
	hs := make([]string, len(a.algs))
	for i, alg := range a.algs {
		if stale {
			hs[i] = a.prefix + nonce + a.suffix[alg] + staleSuffix
		} else {
			hs[i] = a.prefix + nonce + a.suffix[alg]
		}
	}
	return hs
}

// Request is what Check needs to know of the request carrying credentials.
type Request struct {
	Method string     // SIP method; "INVITE" for the ACK of a 2xx (but see the package doc)
	URI    string     // Request-URI as received
	Source netip.Addr // real socket peer, never a header value
	Now    time.Time  // arrival time
}

// Check authenticates credentials c on request r against ha1, the stored HA1
// of the user named c.Username for c.Algorithm, or "" when there is no such
// user or no HA1 for that algorithm. In order, it refuses: a realm other than
// ours (WrongRealm), an algorithm not offered (WrongAlgorithm), a digest-uri
// that does not name the Request-URI (URIMismatch), a nonce that is not ours
// for this source (BadNonce), a wrong response or unknown user (BadResponse),
// a right response on an expired nonce (StaleNonce), and a nonce count
// already seen (Replay). The nonce count is recorded only for credentials that
// pass every other check, so forged requests cannot burn a client's counts.
//
// For an unknown user Check does the same work as for a known one and returns
// BadResponse. None of the checks before the response depends on the user.
func (a *Authenticator) Check(c *Credentials, r Request, ha1 string) Result {
	if c.Realm != a.realm {
		return WrongRealm
	}
	if !c.Algorithm.Valid() || !a.offer[c.Algorithm] {
		return WrongAlgorithm
	}
	if !uriMatches(c.URI, r.URI) {
		return URIMismatch
	}
	state := a.nonces.Check(c.Nonce, r.Now, r.Source)
	if state == NonceInvalid {
		return BadNonce
	}
	known := ha1 != ""
	if !known {
		ha1 = DummyHA1(c.Algorithm)
	}
	res := Verify(c, r.Method, ha1)
	if !known || res != Ok {
		if res == BadHA1 {
			return BadHA1
		}
		return BadResponse
	}
	if state == NonceStale {
		return StaleNonce
	}
	if c.Qop != "" && a.counts != nil && !a.counts.Seen(c.Nonce, c.Count, r.Now) {
		return Replay
	}
	return Ok
}

// uriMatches reports whether digest-uri d names Request-URI r. For sip and sips
// URIs it compares loosely: the hosts must be equal (ignoring case), the ports
// equal when both carry one, and the user parts equal when d has one. SIPp
// sends uri="sip:host:port" on an INVITE to sip:100@host:port; a strict
// comparison would lock it out. Other URIs must be equal byte for byte.
func uriMatches(d, r string) bool {
	du, dh, dp, dok := splitSIPURI(d)
	ru, rh, rp, rok := splitSIPURI(r)
	if !dok || !rok {
		return d == r
	}
	if !strings.EqualFold(dh, rh) {
		return false
	}
	if dp != "" && rp != "" && dp != rp {
		return false
	}
	return du == "" || du == ru
}

// splitSIPURI returns the user, host and port of a sip: or sips: URI.
func splitSIPURI(u string) (user, host, port string, ok bool) {
	i := strings.IndexByte(u, ':')
	if i < 0 || !(strings.EqualFold(u[:i], "sip") || strings.EqualFold(u[:i], "sips")) {
		return "", "", "", false
	}
	rest := u[i+1:]
	// The user part may hold ';' and '?', but neither it nor the parameters
	// and headers after the host may hold an unescaped '@' (RFC 3261 §25.1),
	// so the last '@' ends the userinfo.
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, rest = rest[:at], rest[at+1:]
		if k := strings.IndexByte(user, ':'); k >= 0 {
			user = user[:k] // drop a password
		}
	}
	if k := strings.IndexAny(rest, ";?"); k >= 0 {
		rest = rest[:k]
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", "", false
		}
		host, rest = rest[:end+1], rest[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", "", "", false
			}
			port = rest[1:]
		}
	} else if k := strings.IndexByte(rest, ':'); k >= 0 {
		host, port = rest[:k], rest[k+1:]
	} else {
		host = rest
	}
	if host == "" {
		return "", "", "", false
	}
	return user, host, port, true
}
