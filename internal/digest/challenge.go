package digest

import (
	"strings"
)

// Kind says which status code and header pair a challenge and its answer use.
type Kind uint8

// Kinds. RFC 3261 §22: a registrar answers 401 with WWW-Authenticate; a proxy
// answers 407 with Proxy-Authenticate. sipward registers on REGISTER and
// proxies everything else.
const (
	Proxy Kind = iota // 407 Proxy-Authenticate / Proxy-Authorization
	WWW               // 401 WWW-Authenticate / Authorization
)

// KindFor returns WWW for REGISTER and Proxy for every other method (SIP
// method names are case-sensitive).
func KindFor(method string) Kind {
	if method == "REGISTER" {
		return WWW
	}
	return Proxy
}

// Status returns 401 for WWW and 407 for Proxy.
func (k Kind) Status() int {
	if k == WWW {
		return 401
	}
	return 407
}

// Reason returns the reason phrase that goes with Status.
func (k Kind) Reason() string {
	if k == WWW {
		return "Unauthorized"
	}
	return "Proxy Authentication Required"
}

// ChallengeHeader returns "WWW-Authenticate" or "Proxy-Authenticate".
func (k Kind) ChallengeHeader() string {
	if k == WWW {
		return "WWW-Authenticate"
	}
	return "Proxy-Authenticate"
}

// CredentialsHeader returns "Authorization" or "Proxy-Authorization": where
// the client answers a challenge of kind k.
func (k Kind) CredentialsHeader() string {
	if k == WWW {
		return "Authorization"
	}
	return "Proxy-Authorization"
}

// FormatChallenge returns one challenge header value:
//
//	Digest realm="example.com", nonce="…", algorithm=SHA-256, qop="auth"
//
// followed by `, stale=true` if stale. realm is quoted and escaped; nonce must
// not need escaping (Nonces.Mint's never does).
func FormatChallenge(realm, nonce string, alg Algorithm, stale bool) string {
	var b strings.Builder
	b.Grow(len(realm) + len(nonce) + 64)
	b.WriteString(`Digest realm="`)
	b.WriteString(quote(realm))
	b.WriteString(`", nonce="`)
	b.WriteString(nonce)
	b.WriteString(`", algorithm=`)
	b.WriteString(alg.String())
	b.WriteString(`, qop="auth"`)
	if stale {
		b.WriteString(`, stale=true`)
	}
	return b.String()
}

// quote escapes '"' and '\' for a quoted-string.
func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
