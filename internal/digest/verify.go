package digest

import (
	"crypto/subtle"
)

// Result is the outcome of checking credentials. Only Ok authenticates; the
// zero Result is BadResponse, so a forgotten assignment never lets a request in.
type Result uint8

// Results. Every one but Ok and BadHA1 is a rejection: challenge again, with
// stale=true for StaleNonce only.
const (
	BadResponse    Result = iota // wrong password, unknown user, or tampered credentials
	Ok                           // authenticated
	StaleNonce                   // right password, nonce expired: challenge with stale=true
	BadNonce                     // nonce forged, garbled, minted for another source, or from the future
	Replay                       // nonce count not greater than one already accepted for this nonce
	WrongRealm                   // realm is not the one challenged with
	WrongAlgorithm               // algorithm not among those offered
	URIMismatch                  // digest-uri does not name the Request-URI
	BadHA1                       // the stored HA1 is malformed: a configuration error, not the client's
)

var resultNames = [...]string{
	BadResponse:    "bad response",
	Ok:             "ok",
	StaleNonce:     "stale nonce",
	BadNonce:       "bad nonce",
	Replay:         "replay",
	WrongRealm:     "wrong realm",
	WrongAlgorithm: "algorithm not offered",
	URIMismatch:    "uri mismatch",
	BadHA1:         "malformed stored HA1",
}

// String describes r for logs and decision traces.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "unknown"
}

// stackBuf is the size of the on-stack buffer hashed for A2 and the response;
// longer inputs (a uri, nonce or cnonce of hundreds of bytes) still verify,
// at the cost of one allocation.
const stackBuf = 512

// Verify computes the response expected from credentials c on a request with
// method, given the stored ha1 for c.Algorithm, and compares it with
// c.Response in constant time (hex case ignored). It implements
//
//	HA2      = H(method ":" digest-uri)
//	response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)   qop=auth
//	response = H(HA1 ":" nonce ":" HA2)                             no qop (RFC 2069)
//
// with the values exactly as sent. method is the request's SIP method, except
// for the ACK of a 2xx, which carries the INVITE's credentials (pass "INVITE").
//
// Verify checks the response only: not the nonce, realm, algorithm offer, uri
// or nonce count (Authenticator.Check does). It returns Ok, BadResponse, or
// BadHA1 when ha1 is not hex of the algorithm's length. It does not allocate
// for inputs that fit a 512-byte buffer.
func Verify(c *Credentials, method, ha1 string) Result {
	alg := c.Algorithm
	if !alg.Valid() {
		return BadResponse
	}
	n := alg.HexLen()
	if len(ha1) != n {
		return BadHA1
	}

	buf := make([]byte, 0, stackBuf)
	buf = append(buf, method...)
	buf = append(buf, ':')
	buf = append(buf, c.URI...)
	var ha2 [64]byte
	sumHex(ha2[:0], alg, buf)

	buf = buf[:0]
	for i := 0; i < len(ha1); i++ {
		ch := ha1[i]
		if unhex(ch) < 0 {
			return BadHA1
		}
		buf = append(buf, lower(ch))
	}
	buf = append(buf, ':')
	buf = append(buf, c.Nonce...)
	buf = append(buf, ':')
	if c.Qop != "" {
		buf = append(buf, c.NC...)
		buf = append(buf, ':')
		buf = append(buf, c.Cnonce...)
		buf = append(buf, ':')
		buf = append(buf, c.Qop...)
		buf = append(buf, ':')
	}
	buf = append(buf, ha2[:n]...)
	var want [64]byte
	sumHex(want[:0], alg, buf)
	for i := range buf {
		buf[i] = 0 // the buffer held HA1
	}

	if len(c.Response) != n {
		return BadResponse
	}
	var got [64]byte
	for i := 0; i < n; i++ {
		got[i] = lower(c.Response[i])
	}
	if subtle.ConstantTimeCompare(got[:n], want[:n]) != 1 {
		return BadResponse
	}
	return Ok
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
