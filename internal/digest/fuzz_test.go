package digest

import (
	"strings"
	"testing"
)

// FuzzParseCredentials: ParseCredentials never panics, and what it accepts
// keeps its invariants and goes through Verify and Check without panicking.
func FuzzParseCredentials(f *testing.F) {
	for _, o := range loadVectors(f).Observed {
		_, v, _ := strings.Cut(o.RawHeader, ":")
		f.Add(v)
	}
	for _, v := range loadVectors(f).Vectors {
		f.Add(v.header())
	}
	f.Add(`Digest username="al\"ice", realm=r, nonce="", uri="sip:[::1]", response="` + md5Resp + `", qop="auth", nc=1, cnonce=""`)
	f.Add(`Digest username="a\`)
	f.Add("Digest\t,,,=")

	a := newTestAuth(f, Config{Realm: "127.0.0.1", Algorithms: []Algorithm{SHA256, MD5}, Counts: NewLocalCounts(DefaultNonceLifetime, 64)})
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCredentials(s)
		if err != nil {
			return
		}
		if !c.Algorithm.Valid() || len(c.Response) != c.Algorithm.HexLen() {
			t.Fatalf("accepted %q with algorithm %v and response length %d", s, c.Algorithm, len(c.Response))
		}
		if c.Qop != "" && (!strings.EqualFold(c.Qop, "auth") || c.NC == "") {
			t.Fatalf("accepted %q with qop %q and nc %q", s, c.Qop, c.NC)
		}
		Verify(&c, "INVITE", DummyHA1(c.Algorithm))
		a.Check(&c, Request{Method: "INVITE", URI: c.URI, Source: testSrc, Now: testNow}, "")
	})
}
