package digest

import (
	"errors"
	"fmt"
	"strings"
)

// Credentials is a parsed Authorization or Proxy-Authorization header value.
// String fields are the parameter values as sent, with quoted-pairs unescaped;
// they share memory with the header value unless they contained escapes.
type Credentials struct {
	Username  string    // looked up exactly as sent
	Realm     string    // must equal the realm we challenged with
	Nonce     string    // the nonce we minted, echoed back
	URI       string    // digest-uri exactly as sent; hashed verbatim, never normalised
	Response  string    // hex of Algorithm's length, case as sent
	Algorithm Algorithm // MD5 when the parameter is absent
	Cnonce    string    // client nonce; present when Qop is
	Opaque    string    // echoed opaque; sipward sends none and ignores it
	Qop       string    // "" for the RFC 2069 form, else "auth" (any case, as sent)
	NC        string    // nonce count as sent, e.g. "00000001"; hashed verbatim
	Count     uint32    // NC parsed; 0 when NC is absent
}

// Parameters that ParseCredentials knows, as bits for duplicate detection.
const (
	pUsername = 1 << iota
	pRealm
	pNonce
	pURI
	pResponse
	pAlgorithm
	pCnonce
	pOpaque
	pQop
	pNC
	pUserhash
	pUsernameStar
)

var paramNames = [...]string{
	"username", "realm", "nonce", "uri", "response", "algorithm",
	"cnonce", "opaque", "qop", "nc", "userhash", "username*",
}

// ErrNotDigest is returned by ParseCredentials for a header of another
// authentication scheme (such as Basic).
var ErrNotDigest = errors.New("digest: not a Digest header")

// ParseCredentials parses an Authorization or Proxy-Authorization header value:
//
//	Digest username="alice", realm="example.com", nonce="…", uri="sip:example.com",
//	response="…", algorithm=MD5, cnonce="…", qop=auth, nc=00000001
//
// It takes parameters in any order, names and the algorithm and qop tokens in
// any case, values quoted or not, and any linear white space (SP, HTAB, CR, LF)
// around "=" and ",". Unknown parameters are ignored. It refuses what sipward
// never offers — qop=auth-int, the -sess algorithms, userhash=true, username* —
// and headers that lack a required parameter, repeat one, or carry a response
// whose length does not match the algorithm; the error names the parameter.
//
// ParseCredentials does not allocate unless a quoted value contains a
// backslash escape, or on error.
func ParseCredentials(s string) (Credentials, error) {
	var c Credentials
	i := skipLWS(s, 0)
	j := i
	for j < len(s) && isToken(s[j]) {
		j++
	}
	if !strings.EqualFold(s[i:j], "Digest") {
		return c, ErrNotDigest
	}
	if j < len(s) && !isLWS(s[j]) {
		return c, ErrNotDigest
	}

	var seen uint16
	var algorithm, userhash string
	i = j
	for {
		// Separators: white space and commas, empty list elements included.
		for i < len(s) && (isLWS(s[i]) || s[i] == ',') {
			i++
		}
		if i == len(s) {
			break
		}
		// Name.
		j = i
		for j < len(s) && isToken(s[j]) {
			j++
		}
		if j == i {
			return c, fmt.Errorf("digest: unexpected %q at offset %d", s[i], i)
		}
		name := s[i:j]
		i = skipLWS(s, j)
		if i == len(s) || s[i] != '=' {
			return c, fmt.Errorf("digest: missing \"=\" after %q", clip(name))
		}
		i = skipLWS(s, i+1)
		// Value.
		var val string
		if i < len(s) && s[i] == '"' {
			var err error
			val, i, err = quotedString(s, i)
			if err != nil {
				return c, fmt.Errorf("digest: %q: %w", clip(name), err)
			}
		} else {
			j = i
			for j < len(s) && !isLWS(s[j]) && s[j] != ',' && s[j] != '"' {
				j++
			}
			if j == i {
				return c, fmt.Errorf("digest: %q has no value", clip(name))
			}
			val, i = s[i:j], j
		}
		i = skipLWS(s, i)
		if i < len(s) && s[i] != ',' {
			return c, fmt.Errorf("digest: unexpected %q after %q", s[i], clip(name))
		}

		bit := uint16(0)
		for k, n := range paramNames {
			if strings.EqualFold(name, n) {
				bit = 1 << k
				break
			}
		}
		if bit == 0 {
			continue // extension parameter (RFC 7616 §3.4: ignore)
		}
		if seen&bit != 0 {
			return c, fmt.Errorf("digest: duplicate %q", paramNames[bitIndex(bit)])
		}
		seen |= bit
		switch bit {
		case pUsername:
			c.Username = val
		case pRealm:
			c.Realm = val
		case pNonce:
			c.Nonce = val
		case pURI:
			c.URI = val
		case pResponse:
			c.Response = val
		case pAlgorithm:
			algorithm = val
		case pCnonce:
			c.Cnonce = val
		case pOpaque:
			c.Opaque = val
		case pQop:
			c.Qop = val
		case pNC:
			c.NC = val
		case pUserhash:
			userhash = val
		}
	}

	for _, p := range [...]uint16{pUsername, pRealm, pNonce, pURI, pResponse} {
		if seen&p == 0 {
			if p == pUsername && seen&pUsernameStar != 0 {
				return c, errors.New(`digest: "username*" not supported`)
			}
			return c, fmt.Errorf("digest: missing %q", paramNames[bitIndex(p)])
		}
	}
	if seen&pUsernameStar != 0 {
		return c, errors.New(`digest: both "username" and "username*"`)
	}
	if seen&pUserhash != 0 && !strings.EqualFold(userhash, "false") {
		return c, errors.New(`digest: "userhash" not supported`)
	}

	c.Algorithm = MD5
	if seen&pAlgorithm != 0 {
		a, ok := ParseAlgorithm(algorithm)
		switch {
		case ok:
			c.Algorithm = a
		case len(algorithm) > 5 && strings.EqualFold(algorithm[len(algorithm)-5:], "-sess"):
			return c, fmt.Errorf("digest: algorithm %q not supported", clip(algorithm))
		default:
			return c, fmt.Errorf("digest: unknown algorithm %q", clip(algorithm))
		}
	}

	if seen&pQop != 0 {
		switch {
		case strings.EqualFold(c.Qop, "auth"):
		case strings.EqualFold(c.Qop, "auth-int"):
			return c, errors.New(`digest: qop "auth-int" not supported`)
		default:
			return c, fmt.Errorf("digest: unknown qop %q", clip(c.Qop))
		}
		if seen&pNC == 0 {
			return c, errors.New(`digest: missing "nc"`)
		}
		if seen&pCnonce == 0 {
			return c, errors.New(`digest: missing "cnonce"`)
		}
	}
	if seen&pNC != 0 {
		n, ok := parseNC(c.NC)
		if !ok {
			return c, fmt.Errorf("digest: malformed \"nc\" %q: want 8 hex digits", clip(c.NC))
		}
		c.Count = n
	}

	if len(c.Response) != c.Algorithm.HexLen() {
		return c, fmt.Errorf("digest: malformed \"response\": want %d hex digits for %s, got %d characters",
			c.Algorithm.HexLen(), c.Algorithm, len(c.Response))
	}
	for k := 0; k < len(c.Response); k++ {
		if unhex(c.Response[k]) < 0 {
			return c, errors.New(`digest: malformed "response": not hex`)
		}
	}
	return c, nil
}

// quotedString reads the quoted-string that starts at s[i] == '"' and returns
// its unescaped content and the index after the closing quote.
func quotedString(s string, i int) (string, int, error) {
	start := i + 1
	escaped := false
	for j := start; j < len(s); j++ {
		switch s[j] {
		case '\\':
			escaped = true
			j++ // skip the quoted character
		case '"':
			if !escaped {
				return s[start:j], j + 1, nil
			}
			return unescape(s[start:j]), j + 1, nil
		}
	}
	return "", len(s), errors.New("unterminated quoted string")
}

// unescape removes the backslashes of quoted-pairs from a quoted-string's
// content (which quotedString has checked ends outside an escape).
func unescape(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}

// parseNC parses a nonce count of 1 to 8 hex digits (RFC 7616 says exactly 8;
// shorter ones are accepted and hashed as sent).
func parseNC(s string) (uint32, bool) {
	if len(s) == 0 || len(s) > 8 {
		return 0, false
	}
	var n uint32
	for i := 0; i < len(s); i++ {
		d := unhex(s[i])
		if d < 0 {
			return 0, false
		}
		n = n<<4 | uint32(d)
	}
	return n, true
}

func bitIndex(bit uint16) int {
	for k := range paramNames {
		if bit == 1<<k {
			return k
		}
	}
	return 0
}

func skipLWS(s string, i int) int {
	for i < len(s) && isLWS(s[i]) {
		i++
	}
	return i
}

func isLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isToken reports whether c may appear in an RFC 3261 token; "*" lets
// "username*" through as a name.
func isToken(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '!', '%', '*', '_', '+', '`', '\'', '~':
		return true
	}
	return false
}

// clip shortens client-supplied text quoted in an error message.
func clip(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
