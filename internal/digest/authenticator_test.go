package digest

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	idigest "github.com/icholy/digest"
)

var (
	testNow    = time.Date(2025, 11, 26, 12, 0, 0, 0, time.UTC)
	testSecret = bytes.Repeat([]byte{0x5a}, 32)
	testSrc    = netip.MustParseAddr("192.0.2.10")
	otherSrc   = netip.MustParseAddr("192.0.2.11")
)

func newTestNonces(t testing.TB) *Nonces {
	t.Helper()
	n, err := NewNonces(testSecret, 0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newTestAuth fills in Nonces when cfg has none.
func newTestAuth(t testing.TB, cfg Config) *Authenticator {
	t.Helper()
	if cfg.Nonces == nil {
		cfg.Nonces = newTestNonces(t)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// answer plays the client with an independent implementation
// (github.com/icholy/digest): it answers challenge and returns the header value.
func answer(t testing.TB, challenge, method, uri, user, password string, nc int) string {
	t.Helper()
	chal, err := idigest.ParseChallenge(challenge)
	if err != nil {
		t.Fatalf("client: ParseChallenge(%s): %v", challenge, err)
	}
	cred, err := idigest.Digest(chal, idigest.Options{
		Method: method, URI: uri, Username: user, Password: password, Count: nc, Cnonce: "0a4f113b",
	})
	if err != nil {
		t.Fatalf("client: Digest: %v", err)
	}
	return cred.String()
}

func TestNew(t *testing.T) {
	nonces := newTestNonces(t)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"ok", Config{Realm: "example.com", Nonces: nonces, Algorithms: []Algorithm{SHA256, MD5}}, ""},
		{"default md5", Config{Realm: "example.com", Nonces: nonces}, ""},
		{"no realm", Config{Nonces: nonces}, "digest: realm is empty"},
		{"ctl in realm", Config{Realm: "a\r\nb", Nonces: nonces}, `digest: realm "a\r\nb": control character at offset 1`},
		{"no nonces", Config{Realm: "example.com"}, "digest: Nonces is nil"},
		{"bad alg", Config{Realm: "r", Nonces: nonces, Algorithms: []Algorithm{SHA256, 9}}, "digest: algorithms[1]: invalid algorithm 9"},
		{"dup", Config{Realm: "r", Nonces: nonces, Algorithms: []Algorithm{SHA256, SHA256}}, "digest: algorithms[1]: duplicate SHA-256"},
		{"md5 first", Config{Realm: "r", Nonces: nonces, Algorithms: []Algorithm{MD5, SHA256}},
			"digest: algorithms[1]: SHA-256 listed after MD5; offer the stronger first (RFC 8760 §2.3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("New error = %q, want %q", got, tt.wantErr)
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	nonces := newTestNonces(t)
	a := newTestAuth(t, Config{Realm: `exa"mple.com`, Nonces: nonces, Algorithms: []Algorithm{SHA256, MD5}})
	for _, stale := range []bool{false, true} {
		got := a.Challenge(testNow, testSrc, stale)
		// Every challenge has a fresh nonce; all its headers carry the same one.
		nonce := ""
		if len(got) > 0 {
			if i := strings.Index(got[0], `nonce="`); i >= 0 {
				nonce = got[0][i+7:]
				nonce = nonce[:strings.IndexByte(nonce, '"')]
			}
		}
		if st := nonces.Check(nonce, testNow, testSrc); st != NonceValid {
			t.Errorf("Challenge(stale=%v): nonce %q is %v, want valid", stale, nonce, st)
		}
		want := []string{
			`Digest realm="exa\"mple.com", nonce="` + nonce + `", algorithm=SHA-256, qop="auth"`,
			`Digest realm="exa\"mple.com", nonce="` + nonce + `", algorithm=MD5, qop="auth"`,
		}
		if stale {
			for i := range want {
				want[i] += ", stale=true"
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Challenge(stale=%v) (-want +got):\n%s", stale, diff)
		}
		for i, alg := range []Algorithm{SHA256, MD5} {
			if f := FormatChallenge(`exa"mple.com`, nonce, alg, stale); f != got[i] {
				t.Errorf("FormatChallenge = %s, want %s", f, got[i])
			}
		}
	}
	if got := newTestAuth(t, Config{Realm: "r"}).Challenge(testNow, testSrc, false); len(got) != 1 ||
		!strings.HasSuffix(got[0], `algorithm=MD5, qop="auth"`) {
		t.Errorf("default Challenge = %q, want one MD5 challenge", got)
	}
}

func TestKind(t *testing.T) {
	type row struct {
		Kind                       Kind
		Status                     int
		Reason, Challenge, Answers string
	}
	got := map[string]row{}
	for _, m := range []string{"REGISTER", "INVITE", "MESSAGE", "SUBSCRIBE", "register"} {
		k := KindFor(m)
		got[m] = row{k, k.Status(), k.Reason(), k.ChallengeHeader(), k.CredentialsHeader()}
	}
	www := row{WWW, 401, "Unauthorized", "WWW-Authenticate", "Authorization"}
	proxy := row{Proxy, 407, "Proxy Authentication Required", "Proxy-Authenticate", "Proxy-Authorization"}
	want := map[string]row{"REGISTER": www, "INVITE": proxy, "MESSAGE": proxy, "SUBSCRIBE": proxy, "register": proxy}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestAuthenticatorFlow runs challenge → answer → Check end to end, with an
// independent client, through every Result.
func TestAuthenticatorFlow(t *testing.T) {
	const realm, user, pass = "example.com", "alice", "secret123"
	store := map[Algorithm]string{
		MD5:    HA1(MD5, user, realm, pass),
		SHA256: HA1(SHA256, user, realm, pass),
	}
	lookup := func(c *Credentials) string {
		if c.Username != user {
			return ""
		}
		return store[c.Algorithm]
	}

	type step struct {
		name    string
		at      time.Duration // after the challenge
		src     netip.Addr
		method  string
		ruri    string
		uri     string // digest-uri the client sends; ruri when empty
		user    string
		pass    string
		nc      int
		alg     int // index of the challenge answered
		mutate  func(string) string
		want    Result
		authAlg []Algorithm
	}
	tests := []step{
		{name: "ok sha256", want: Ok},
		{name: "ok md5", alg: 1, want: Ok},
		{name: "ok invite", method: "INVITE", ruri: "sip:100@example.com", want: Ok},
		{name: "sipp uri without user", method: "INVITE", ruri: "sip:100@example.com:5060", uri: "sip:example.com:5060", want: Ok},
		{name: "uri other user", method: "INVITE", ruri: "sip:100@example.com", uri: "sip:900@example.com", want: URIMismatch},
		{name: "uri other host", ruri: "sip:example.com", uri: "sip:evil.example.com", want: URIMismatch},
		{name: "wrong password", pass: "secret124", want: BadResponse},
		{name: "unknown user", user: "mallory", want: BadResponse},
		{name: "unknown user, password of alice", user: "bob", want: BadResponse},
		{name: "other source", src: otherSrc, want: BadNonce},
		{name: "valid at end of lifetime", at: DefaultNonceLifetime, want: Ok},
		{name: "stale", at: DefaultNonceLifetime + time.Second, want: StaleNonce},
		{name: "stale and wrong password", at: DefaultNonceLifetime + time.Second, pass: "nope", want: BadResponse},
		{name: "tampered nonce", mutate: func(h string) string { return strings.Replace(h, `nonce="`, `nonce="A`, 1) }, want: BadNonce},
		{name: "wrong realm", mutate: func(h string) string { return strings.Replace(h, `realm="example.com"`, `realm="other.example"`, 1) }, want: WrongRealm},
		{name: "md5 not offered", authAlg: []Algorithm{SHA256}, mutate: func(h string) string {
			// A client answering with MD5 to a SHA-256-only challenge (RFC 8760 test (b)).
			return answerMD5(t, h, realm, pass)
		}, want: WrongAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			algs := tt.authAlg
			if algs == nil {
				algs = []Algorithm{SHA256, MD5}
			}
			a := newTestAuth(t, Config{Realm: realm, Algorithms: algs, Counts: NewLocalCounts(DefaultNonceLifetime, 0)})
			def := func(s *string, d string) {
				if *s == "" {
					*s = d
				}
			}
			def(&tt.method, "REGISTER")
			def(&tt.ruri, "sip:example.com")
			def(&tt.uri, tt.ruri)
			def(&tt.user, user)
			def(&tt.pass, pass)
			if !tt.src.IsValid() {
				tt.src = testSrc
			}
			if tt.nc == 0 {
				tt.nc = 1
			}
			chals := a.Challenge(testNow, testSrc, false)
			h := answer(t, chals[tt.alg], tt.method, tt.uri, tt.user, tt.pass, tt.nc)
			if tt.mutate != nil {
				h = tt.mutate(h)
			}
			c, err := ParseCredentials(h)
			if err != nil {
				t.Fatalf("ParseCredentials(%s): %v", h, err)
			}
			r := Request{Method: tt.method, URI: tt.ruri, Source: tt.src, Now: testNow.Add(tt.at)}
			if got := a.Check(&c, r, lookup(&c)); got != tt.want {
				t.Errorf("Check = %v, want %v", got, tt.want)
			}
		})
	}
}

// answerMD5 rewrites a SHA-256 answer into an MD5 one over the same challenge.
func answerMD5(t testing.TB, h, realm, pass string) string {
	c, err := ParseCredentials(h)
	if err != nil {
		t.Fatal(err)
	}
	chal := FormatChallenge(realm, c.Nonce, MD5, false)
	return answer(t, chal, "REGISTER", c.URI, c.Username, pass, 1)
}

// TestReplay: a request accepted once is refused when replayed, a higher nc
// on the same nonce is accepted, and a lower one refused.
func TestReplay(t *testing.T) {
	const realm = "example.com"
	ha1 := HA1(MD5, "alice", realm, "secret123")
	a := newTestAuth(t, Config{Realm: realm, Counts: NewLocalCounts(DefaultNonceLifetime, 0)})
	chal := a.Challenge(testNow, testSrc, false)[0]
	check := func(nc int, at time.Duration) Result {
		c, err := ParseCredentials(answer(t, chal, "REGISTER", "sip:example.com", "alice", "secret123", nc))
		if err != nil {
			t.Fatal(err)
		}
		return a.Check(&c, Request{Method: "REGISTER", URI: "sip:example.com", Source: testSrc, Now: testNow.Add(at)}, ha1)
	}
	steps := []struct {
		nc   int
		at   time.Duration
		want Result
	}{
		{1, 0, Ok},
		{1, time.Second, Replay},
		{2, 2 * time.Second, Ok},
		{2, 3 * time.Second, Replay},
		{1, 4 * time.Second, Replay},
		{5, 5 * time.Second, Ok},
		{3, 6 * time.Second, Replay},
	}
	var got, want []Result
	for _, s := range steps {
		got = append(got, check(s.nc, s.at))
		want = append(want, s.want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}

	// Without qop (RFC 2069 form) there is no nc: a replay within the nonce's
	// lifetime passes. Only expiry limits it.
	c, err := ParseCredentials(`Digest username="alice", realm="example.com", nonce="` + a.nonces.Mint(testNow, testSrc) +
		`", uri="sip:example.com", response="00000000000000000000000000000000"`)
	if err != nil {
		t.Fatal(err)
	}
	c.Response = noQopResponse(ha1, c.Nonce, "REGISTER", c.URI)
	for i, want := range []Result{Ok, Ok, StaleNonce} {
		at := []time.Duration{0, time.Minute, DefaultNonceLifetime + time.Second}[i]
		r := Request{Method: "REGISTER", URI: "sip:example.com", Source: testSrc, Now: testNow.Add(at)}
		if got := a.Check(&c, r, ha1); got != want {
			t.Errorf("no-qop request at +%v: Check = %v, want %v", at, got, want)
		}
	}
}

func noQopResponse(ha1, nonce, method, uri string) string {
	return refHash("MD5", ha1, nonce, refHash("MD5", method, uri))
}

// TestCheckUnknownUserSameWork: an unknown user runs the same verification
// (against DummyHA1) and gets the same Result as a wrong password.
func TestCheckUnknownUserSameWork(t *testing.T) {
	a := newTestAuth(t, Config{Realm: "example.com"})
	chal := a.Challenge(testNow, testSrc, false)[0]
	c, err := ParseCredentials(answer(t, chal, "REGISTER", "sip:example.com", "alice", "secret123", 1))
	if err != nil {
		t.Fatal(err)
	}
	r := Request{Method: "REGISTER", URI: "sip:example.com", Source: testSrc, Now: testNow}
	wrong := HA1(MD5, "alice", "example.com", "other")
	if got, unknown := a.Check(&c, r, wrong), a.Check(&c, r, ""); got != unknown || got != BadResponse {
		t.Errorf("wrong password → %v, unknown user → %v; want both BadResponse", got, unknown)
	}
	// Even credentials computed for the dummy HA1 itself do not pass as an unknown user.
	c.Response = mustResponse(t, &c, "REGISTER", DummyHA1(MD5))
	if got := a.Check(&c, r, ""); got != BadResponse {
		t.Errorf("answer to DummyHA1 as unknown user → %v, want BadResponse", got)
	}
	if got := a.Check(&c, r, "zz"); got != BadHA1 {
		t.Errorf("malformed stored HA1 → %v, want BadHA1", got)
	}
}

// mustResponse computes the right response for c (qop=auth) under ha1.
func mustResponse(t testing.TB, c *Credentials, method, ha1 string) string {
	t.Helper()
	return refHash(c.Algorithm.String(), ha1, c.Nonce, c.NC, c.Cnonce, c.Qop, refHash(c.Algorithm.String(), method, c.URI))
}

func TestURIMatches(t *testing.T) {
	tests := []struct {
		digest, ruri string
		want         bool
	}{
		{"sip:example.com", "sip:example.com", true},
		{"sip:EXAMPLE.com", "sip:example.com", true},
		{"sip:127.0.0.1:5080", "sip:100@127.0.0.1:5080", true}, // SIPp
		{"sip:127.0.0.1:5080;transport=udp", "sip:127.0.0.1:5080;transport=udp", true},
		{"sip:100@127.0.0.1:5080;transport=udp", "sip:100@127.0.0.1:5080", true},
		{"sip:127.0.0.1", "sip:127.0.0.1:5080", true}, // port on one side only
		{"sip:127.0.0.1:5081", "sip:127.0.0.1:5080", false},
		{"sip:evil.example.com", "sip:example.com", false},
		{"sip:900@example.com", "sip:100@example.com", false},
		{"sip:100:pw@example.com", "sip:100@example.com", true},
		{"sips:[2001:db8::1]:5061", "sips:alice@[2001:db8::1]:5061;transport=tls", true},
		{"sip:[2001:db8::1]", "sip:[2001:db8::2]", false},
		{"sip:a;b@example.com", "sip:a;b@example.com;user=phone", true},
		{"sip:example.com?subject=x", "sip:example.com", true},
		{"tel:+15551234", "tel:+15551234", true},
		{"tel:+15551234", "sip:+15551234@example.com", false},
		{"/dir/index.html", "/dir/index.html", true},
		{"sip:", "sip:", true}, // malformed: byte equality
		{"sip:", "sip:example.com", false},
		{"sip:[::1", "sip:[::1]", false},
	}
	for _, tt := range tests {
		if got := uriMatches(tt.digest, tt.ruri); got != tt.want {
			t.Errorf("uriMatches(%q, %q) = %v, want %v", tt.digest, tt.ruri, got, tt.want)
		}
	}
}
