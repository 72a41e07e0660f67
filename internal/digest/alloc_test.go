package digest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// hotPath is one authenticated REGISTER: a nonce of ours, credentials as a
// client sends them, the stored HA1.
type hotPath struct {
	auth   *Authenticator
	header string
	c      Credentials
	req    Request
	ha1    string
}

func newHotPath(t testing.TB, alg Algorithm, counts NonceCounts) hotPath {
	t.Helper()
	a := newTestAuth(t, Config{Realm: "example.com", Algorithms: []Algorithm{alg}, Counts: counts})
	chal := a.Challenge(testNow, testSrc, false)[0]
	h := answer(t, chal, "REGISTER", "sip:example.com", "alice", "secret123", 1)
	c, err := ParseCredentials(h)
	if err != nil {
		t.Fatal(err)
	}
	p := hotPath{
		auth: a, header: h, c: c,
		req: Request{Method: "REGISTER", URI: "sip:example.com", Source: testSrc, Now: testNow.Add(time.Second)},
		ha1: HA1(alg, "alice", "example.com", "secret123"),
	}
	if got := Verify(&p.c, p.req.Method, p.ha1); got != Ok {
		t.Fatalf("hot path does not verify: %v", got)
	}
	return p
}

func TestAllocs(t *testing.T) {
	p := newHotPath(t, SHA256, nil)
	md5p := newHotPath(t, MD5, nil)
	counts := NewLocalCounts(DefaultNonceLifetime, 0)
	counts.Seen(p.c.Nonce, 1, testNow) // the entry exists; later counts only update it
	var nc uint32 = 1
	tests := []struct {
		name string
		want Result
		f    func() Result
	}{
		{"Nonces.Check", Ok, func() Result {
			if p.auth.nonces.Check(p.c.Nonce, p.req.Now, p.req.Source) != NonceValid {
				return BadNonce
			}
			return Ok
		}},
		{"Verify SHA-256", Ok, func() Result { return Verify(&p.c, p.req.Method, p.ha1) }},
		{"Verify MD5", Ok, func() Result { return Verify(&md5p.c, md5p.req.Method, md5p.ha1) }},
		{"Verify wrong", BadResponse, func() Result { return Verify(&p.c, "INVITE", p.ha1) }},
		{"ParseCredentials", Ok, func() Result {
			if _, err := ParseCredentials(p.header); err != nil {
				return BadResponse
			}
			return Ok
		}},
		{"Authenticator.Check", Ok, func() Result { return p.auth.Check(&p.c, p.req, p.ha1) }},
		{"Authenticator.Check unknown user", BadResponse, func() Result { return p.auth.Check(&p.c, p.req, "") }},
		{"LocalCounts.Seen existing nonce", Ok, func() Result {
			nc++
			if !counts.Seen(p.c.Nonce, nc, testNow) {
				return Replay
			}
			return Ok
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f(); got != tt.want {
				t.Fatalf("result %v, want %v", got, tt.want)
			}
			if n := testing.AllocsPerRun(1000, func() { tt.f() }); n != 0 {
				t.Errorf("%v allocations per run, want 0", n)
			}
		})
	}
}

// TestVerifyLongInputs: inputs past the stack buffer still verify (and cost
// an allocation or two).
func TestVerifyLongInputs(t *testing.T) {
	ha1 := HA1(SHA256, "alice", "example.com", "secret123")
	c := Credentials{
		Username: "alice", Realm: "example.com", Algorithm: SHA256, Qop: "auth", NC: "00000001",
		Nonce: strings.Repeat("n", 300), Cnonce: strings.Repeat("c", 300), URI: "sip:" + strings.Repeat("u", 600) + "@example.com",
	}
	c.Response = mustResponse(t, &c, "INVITE", ha1)
	if got := Verify(&c, "INVITE", ha1); got != Ok {
		t.Errorf("Verify = %v, want Ok", got)
	}
	n := testing.AllocsPerRun(100, func() { Verify(&c, "INVITE", ha1) })
	t.Logf("Verify with %d-byte inputs: %v allocations", len(c.Nonce)+len(c.Cnonce)+len(c.URI), n)
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []Algorithm{MD5, SHA256} {
		p := newHotPath(b, alg, nil)
		b.Run(alg.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if Verify(&p.c, p.req.Method, p.ha1) != Ok {
					b.Fatal("not ok")
				}
			}
		})
	}
}

func BenchmarkNonceCheck(b *testing.B) {
	n := newTestNonces(b)
	nonce := n.Mint(testNow, testSrc)
	b.ReportAllocs()
	for b.Loop() {
		if n.Check(nonce, testNow, testSrc) != NonceValid {
			b.Fatal("not valid")
		}
	}
}

func BenchmarkNonceMint(b *testing.B) {
	n := newTestNonces(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = n.Mint(testNow, testSrc)
	}
}

func BenchmarkParseCredentials(b *testing.B) {
	p := newHotPath(b, MD5, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCredentials(p.header); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheck is the whole hot path after the HA1 lookup: parse, then
// realm, algorithm, uri, nonce, response and nonce count.
func BenchmarkCheck(b *testing.B) {
	for _, alg := range []Algorithm{MD5, SHA256} {
		counts := NewLocalCounts(DefaultNonceLifetime, 0)
		p := newHotPath(b, alg, counts)
		b.Run(alg.String(), func(b *testing.B) {
			b.ReportAllocs()
			var nc uint32
			for b.Loop() {
				c, err := ParseCredentials(p.header)
				if err != nil {
					b.Fatal(err)
				}
				nc++
				c.Count = nc // a client's next request on the same nonce
				if r := p.auth.Check(&c, p.req, p.ha1); r != Ok {
					b.Fatal(r)
				}
			}
		})
	}
}

func BenchmarkLocalCountsSeenParallel(b *testing.B) {
	c := NewLocalCounts(DefaultNonceLifetime, 0)
	nonces := make([]string, 1024)
	for i := range nonces {
		nonces[i] = fmt.Sprintf("%032d", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var i int
		var nc uint32
		for pb.Next() {
			i++
			nc++
			c.Seen(nonces[i%len(nonces)], nc, testNow)
		}
	})
}

func BenchmarkChallenge(b *testing.B) {
	a := newTestAuth(b, Config{Realm: "example.com", Algorithms: []Algorithm{SHA256, MD5}})
	b.ReportAllocs()
	for b.Loop() {
		_ = a.Challenge(testNow, testSrc, false)
	}
}
