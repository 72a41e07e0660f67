package authn_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"

	"github.com/sipward/sipward/internal/digest"
	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/stage/authn"
)

const realm = "sipward"

var (
	t0     = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	secret = bytes.Repeat([]byte{0x42}, digest.MinSecretLen)
	phone  = netip.MustParseAddrPort("192.0.2.5:5060")     // inside bob's whitelist
	other  = netip.MustParseAddrPort("198.51.100.7:40000") // outside it
)

// users known to the stage's Lookup, with their passwords.
//
//	alice  account 1 Alpha, MD5 and SHA-256 HA1s, no whitelist
//	bob    account 2 Beta, MD5 HA1 only, whitelist 192.0.2.0/24
//	broken account 1 Alpha, a stored MD5 HA1 that is not hex
//	carol  account 1 Alpha, MD5 HA1, protocol tls
var (
	passwords = map[string]string{"alice": "alice-secret", "bob": "bob-secret", "broken": "x", "carol": "carol-secret"}
	users     = map[string]authn.User{
		"alice": {ID: 1000, AccountID: 1, Username: "alice", AccountName: "Alpha",
			HA1MD5: digest.HA1(digest.MD5, "alice", realm, "alice-secret"), HA1SHA256: digest.HA1(digest.SHA256, "alice", realm, "alice-secret")},
		"bob": {ID: 1001, AccountID: 2, Username: "bob", AccountName: "Beta",
			HA1MD5: digest.HA1(digest.MD5, "bob", realm, "bob-secret"), Whitelist: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		"carol": {ID: 1003, AccountID: 1, Username: "carol", AccountName: "Alpha",
			HA1MD5: digest.HA1(digest.MD5, "carol", realm, "carol-secret"), Principal: &snapshot.Principal{Protocol: snapshot.ProtoTLS}},
		"broken": {ID: 1002, AccountID: 1, Username: "broken", AccountName: "Alpha", HA1MD5: strings.Repeat("zz", 16)},
	}
)

// harness is the stage built in front of a recording next handler, with
// recording hooks.
type harness struct {
	h         pipeline.Handler
	nextCalls int
	nextAuth  pipeline.Identity
	nextTrace []string
	failures  []string // "addr kind"
	successes []string // addr
}

func newHarness(t *testing.T, algs ...digest.Algorithm) *harness {
	t.Helper()
	nonces, err := digest.NewNonces(secret, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := digest.New(digest.Config{Realm: realm, Algorithms: algs, Nonces: nonces,
		Counts: digest.NewLocalCounts(nonces.Lifetime(), 0)})
	if err != nil {
		t.Fatal(err)
	}
	hs := &harness{}
	st, err := authn.New(authn.Config{
		Auth: auth,
		Lookup: func(_ *pipeline.Request, name string) (authn.User, bool) {
			u, ok := users[name]
			return u, ok
		},
		OnFailure: func(src netip.Addr, k authn.FailureKind, _ time.Time) {
			hs.failures = append(hs.failures, src.String()+" "+kindName(k))
		},
		OnSuccess: func(src netip.Addr, _ time.Time) { hs.successes = append(hs.successes, src.String()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	next := pipeline.HandlerFunc{N: "next", F: func(_ context.Context, r *pipeline.Request) (pipeline.Result, error) {
		hs.nextCalls++
		hs.nextAuth = r.Auth
		hs.nextTrace = append([]string(nil), r.Trace.Stages()...)
		return pipeline.Reply("next", 200, "OK", "terminal"), nil
	}}
	hs.h = pipeline.Build(next, st.Stage())
	return hs
}

func kindName(k authn.FailureKind) string {
	switch k {
	case authn.BadCredentials:
		return "bad-credentials"
	case authn.NoCredentials:
		return "no-credentials"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// uriFor returns the Request-URI the tests send method to.
func uriFor(method string) string {
	if method == "REGISTER" {
		return "sip:edge.example.net"
	}
	return "sip:442071234567@edge.example.net"
}

// request parses method from src at now, with extra header lines.
func request(t *testing.T, method string, src netip.AddrPort, now time.Time, extra ...string) *pipeline.Request {
	t.Helper()
	msg := siptest.Req{Method: sip.RequestMethod(method), URI: uriFor(method), From: "alice", FromHost: "edge.example.net",
		CallID: "a84b4c76e66710@192.168.1.20", Via: "192.168.1.20:5060", Headers: extra}.Msg(t)
	return siptest.Request(msg, src.String(), now)
}

// serve runs r through the harness.
func (hs *harness) serve(t *testing.T, r *pipeline.Request) (pipeline.Result, error) {
	t.Helper()
	return hs.h.ServeSIP(context.Background(), r)
}

// challenge sends method without credentials from src at now and returns the
// nonce of the challenge (the same in every header).
func (hs *harness) challenge(t *testing.T, method string, src netip.AddrPort, now time.Time) string {
	t.Helper()
	res, err := hs.serve(t, request(t, method, src, now))
	if err != nil {
		t.Fatalf("challenge: %v", err)
	}
	if len(res.Headers) == 0 {
		t.Fatalf("challenge: %d %s without headers", res.Status, res.Reason)
	}
	return nonceOf(t, res.Headers[0].Value())
}

var nonceRE = regexp.MustCompile(`nonce="([^"]*)"`)

func nonceOf(t *testing.T, challenge string) string {
	t.Helper()
	m := nonceRE.FindStringSubmatch(challenge)
	if m == nil {
		t.Fatalf("no nonce in %q", challenge)
	}
	return m[1]
}

// client computes credentials the way a phone does (RFC 7616, qop=auth),
// independently of package digest.
type client struct {
	user, password string
	alg            digest.Algorithm // MD5 when 0
	realm          string           // realm when ""
	nonce          string
	nc             uint32
}

func (c client) header(method string) string {
	alg, rlm := c.alg, c.realm
	if alg == 0 {
		alg = digest.MD5
	}
	if rlm == "" {
		rlm = realm
	}
	h := func(s string) string {
		var f hash.Hash
		switch alg {
		case digest.SHA256:
			f = sha256.New()
		case digest.SHA512_256:
			f = sha512.New512_256()
		default:
			f = md5.New()
		}
		f.Write([]byte(s))
		return hex.EncodeToString(f.Sum(nil))
	}
	const cnonce = "0a4f113b"
	uri := uriFor(method)
	nc := fmt.Sprintf("%08x", c.nc)
	ha1 := h(c.user + ":" + rlm + ":" + c.password)
	ha2 := h(method + ":" + uri)
	resp := h(ha1 + ":" + c.nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, cnonce="%s", qop=auth, nc=%s`,
		c.user, rlm, c.nonce, uri, resp, alg, cnonce, nc)
}

// view is what a test compares of a Result: the challenge headers with their
// nonce masked, since every challenge mints a fresh one.
type view struct {
	Status  int
	Reason  string
	Stage   string
	Drop    bool
	Headers []string
}

func viewOf(res pipeline.Result) view {
	v := view{Status: res.Status, Reason: res.Reason, Stage: res.Stage, Drop: res.Drop}
	for _, h := range res.Headers {
		v.Headers = append(v.Headers, h.Name()+": "+nonceRE.ReplaceAllString(h.Value(), `nonce="NONCE"`))
	}
	return v
}

func proxyChallenge(alg string, stale bool) string {
	s := `Proxy-Authenticate: Digest realm="sipward", nonce="NONCE", algorithm=` + alg + `, qop="auth"`
	if stale {
		s += ", stale=true"
	}
	return s
}

func wwwChallenge(alg string, stale bool) string {
	return "WWW-Authenticate" + strings.TrimPrefix(proxyChallenge(alg, stale), "Proxy-Authenticate")
}

var passed = view{Status: 200, Reason: "OK", Stage: "next"}

func TestChallengeWithoutCredentials(t *testing.T) {
	tests := []struct {
		name         string
		method       string
		algs         []digest.Algorithm
		want         view
		wantFailures []string
	}{
		{"invite md5", "INVITE", nil,
			view{Status: 407, Reason: "Proxy Authentication Required", Stage: "authn", Headers: []string{proxyChallenge("MD5", false)}},
			[]string{"192.0.2.5 no-credentials"}},
		{"register md5", "REGISTER", nil,
			view{Status: 401, Reason: "Unauthorized", Stage: "authn", Headers: []string{wwwChallenge("MD5", false)}},
			nil},
		{"invite sha-256 before md5", "INVITE", []digest.Algorithm{digest.SHA256, digest.MD5},
			view{Status: 407, Reason: "Proxy Authentication Required", Stage: "authn",
				Headers: []string{proxyChallenge("SHA-256", false), proxyChallenge("MD5", false)}},
			[]string{"192.0.2.5 no-credentials"}},
		{"register sha-256 before md5", "REGISTER", []digest.Algorithm{digest.SHA256, digest.MD5},
			view{Status: 401, Reason: "Unauthorized", Stage: "authn",
				Headers: []string{wwwChallenge("SHA-256", false), wwwChallenge("MD5", false)}},
			nil},
		{"sha-256 only", "INVITE", []digest.Algorithm{digest.SHA256},
			view{Status: 407, Reason: "Proxy Authentication Required", Stage: "authn", Headers: []string{proxyChallenge("SHA-256", false)}},
			[]string{"192.0.2.5 no-credentials"}},
		{"message is proxied, not an invite", "MESSAGE", nil,
			view{Status: 407, Reason: "Proxy Authentication Required", Stage: "authn", Headers: []string{proxyChallenge("MD5", false)}},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, tt.algs...)
			res, err := hs.serve(t, request(t, tt.method, phone, t0))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, viewOf(res)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if res.Why != "no credentials" {
				t.Errorf("Why = %q, want %q", res.Why, "no credentials")
			}
			// One fresh nonce shared by every algorithm's header.
			nonces := map[string]bool{}
			for _, h := range res.Headers {
				nonces[nonceOf(t, h.Value())] = true
			}
			if len(nonces) != 1 {
				t.Errorf("challenge headers carry %d nonces, want 1", len(nonces))
			}
			if hs.nextCalls != 0 {
				t.Errorf("next called %d times, want 0", hs.nextCalls)
			}
			if diff := cmp.Diff(tt.wantFailures, hs.failures); diff != "" {
				t.Errorf("OnFailure (-want +got):\n%s", diff)
			}
			if len(hs.successes) != 0 {
				t.Errorf("OnSuccess called: %v", hs.successes)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	alice := pipeline.Identity{Method: pipeline.AuthDigest, AccountID: 1, SIPUserID: 1000, Username: "alice", AccountName: "Alpha"}
	bob := pipeline.Identity{Method: pipeline.AuthDigest, AccountID: 2, SIPUserID: 1001, Username: "bob", AccountName: "Beta"}
	carol := pipeline.Identity{Method: pipeline.AuthDigest, AccountID: 1, SIPUserID: 1003, Username: "carol", AccountName: "Alpha"}
	proxy407 := func(hdrs ...string) view {
		return view{Status: 407, Reason: "Proxy Authentication Required", Stage: "authn", Headers: hdrs}
	}
	tests := []struct {
		name    string
		method  string
		algs    []digest.Algorithm
		src     netip.AddrPort // of the challenge, and of the answer unless answer is set
		answer  netip.AddrPort // where the answer comes from; src when invalid
		after   time.Duration  // between challenge and answer
		client  client         // nonce and nc filled in
		credHdr string         // header carrying the credentials; the method's own when ""
		raw     string         // credentials value sent verbatim instead of client's
		over    string         // the answer's transport; UDP when ""

		want          view
		wantWhy       string
		wantErr       bool
		wantAuth      pipeline.Identity
		wantTrace     []string
		wantFailures  []string
		wantSuccesses []string
	}{
		{name: "invite right password", method: "INVITE", src: phone, client: client{user: "alice", password: "alice-secret"},
			want: passed, wantAuth: alice, wantTrace: []string{"authn"}, wantSuccesses: []string{"192.0.2.5"}},
		{name: "register right password", method: "REGISTER", src: phone, client: client{user: "alice", password: "alice-secret"},
			want: passed, wantAuth: alice, wantTrace: []string{"authn"}, wantSuccesses: []string{"192.0.2.5"}},
		{name: "sha-256 answer", method: "INVITE", algs: []digest.Algorithm{digest.SHA256, digest.MD5}, src: phone,
			client: client{user: "alice", password: "alice-secret", alg: digest.SHA256},
			want:   passed, wantAuth: alice, wantTrace: []string{"authn"}, wantSuccesses: []string{"192.0.2.5"}},
		{name: "md5 answer to a sha-256 and md5 challenge", method: "REGISTER", algs: []digest.Algorithm{digest.SHA256, digest.MD5}, src: phone,
			client: client{user: "alice", password: "alice-secret"},
			want:   passed, wantAuth: alice, wantTrace: []string{"authn"}, wantSuccesses: []string{"192.0.2.5"}},
		{name: "invite credentials in Authorization", method: "INVITE", src: phone, credHdr: "Authorization",
			client: client{user: "alice", password: "alice-secret"},
			want:   passed, wantAuth: alice, wantTrace: []string{"authn"}, wantSuccesses: []string{"192.0.2.5"}},
		{name: "register credentials in Proxy-Authorization", method: "REGISTER", src: phone, credHdr: "Proxy-Authorization",
			client: client{user: "alice", password: "alice-secret"},
			want:   passed, wantAuth: alice, wantTrace: []string{"authn"}, wantSuccesses: []string{"192.0.2.5"}},
		{name: "whitelisted source", method: "INVITE", src: phone, client: client{user: "bob", password: "bob-secret"},
			want: passed, wantAuth: bob, wantTrace: []string{"authn"}, wantSuccesses: []string{"192.0.2.5"}},

		{name: "wrong password", method: "INVITE", src: phone, client: client{user: "alice", password: "guess"},
			want: proxy407(proxyChallenge("MD5", false)), wantWhy: `wrong password for "alice"`,
			wantFailures: []string{"192.0.2.5 bad-credentials"}},
		{name: "unknown user", method: "INVITE", src: phone, client: client{user: "mallory", password: "guess"},
			want: proxy407(proxyChallenge("MD5", false)), wantWhy: `unknown user "mallory"`,
			wantFailures: []string{"192.0.2.5 bad-credentials"}},
		{name: "register wrong password", method: "REGISTER", src: phone, client: client{user: "alice", password: "guess"},
			want:         view{Status: 401, Reason: "Unauthorized", Stage: "authn", Headers: []string{wwwChallenge("MD5", false)}},
			wantWhy:      `wrong password for "alice"`,
			wantFailures: []string{"192.0.2.5 bad-credentials"}},
		{name: "sha-256 not offered", method: "INVITE", src: phone, client: client{user: "alice", password: "alice-secret", alg: digest.SHA256},
			want: proxy407(proxyChallenge("MD5", false)), wantWhy: "bad credentials",
			wantFailures: []string{"192.0.2.5 bad-credentials"}},
		{name: "user without a sha-256 HA1", method: "INVITE", algs: []digest.Algorithm{digest.SHA256, digest.MD5}, src: phone,
			client: client{user: "bob", password: "bob-secret", alg: digest.SHA256},
			want:   proxy407(proxyChallenge("SHA-256", false), proxyChallenge("MD5", false)), wantWhy: `wrong password for "bob"`,
			wantFailures: []string{"192.0.2.5 bad-credentials"}},
		{name: "wrong realm", method: "INVITE", src: phone, client: client{user: "alice", password: "alice-secret", realm: "elsewhere"},
			want: proxy407(proxyChallenge("MD5", false)), wantWhy: "bad credentials",
			wantFailures: []string{"192.0.2.5 bad-credentials"}},
		{name: "nonce minted for another source", method: "INVITE", src: phone, answer: other,
			client: client{user: "alice", password: "alice-secret"},
			want:   proxy407(proxyChallenge("MD5", false)), wantWhy: "bad credentials",
			wantFailures: []string{"198.51.100.7 bad-credentials"}},
		{name: "unreadable credentials", method: "INVITE", src: phone, raw: `Basic YWxpY2U6YWxpY2Utc2VjcmV0`,
			want: proxy407(proxyChallenge("MD5", false)), wantWhy: "unreadable credentials: digest: not a Digest header",
			wantFailures: []string{"192.0.2.5 bad-credentials"}},

		{name: "stale nonce", method: "INVITE", src: phone, after: 6 * time.Minute, client: client{user: "alice", password: "alice-secret"},
			want: proxy407(proxyChallenge("MD5", true)), wantWhy: "stale nonce"},
		{name: "register stale nonce", method: "REGISTER", algs: []digest.Algorithm{digest.SHA256, digest.MD5}, src: phone, after: 6 * time.Minute,
			client: client{user: "alice", password: "alice-secret", alg: digest.SHA256},
			want: view{Status: 401, Reason: "Unauthorized", Stage: "authn",
				Headers: []string{wwwChallenge("SHA-256", true), wwwChallenge("MD5", true)}},
			wantWhy: "stale nonce"},
		{name: "stale nonce, wrong password: not told stale", method: "INVITE", src: phone, after: 6 * time.Minute,
			client: client{user: "alice", password: "guess"},
			want:   proxy407(proxyChallenge("MD5", false)), wantWhy: `wrong password for "alice"`,
			wantFailures: []string{"192.0.2.5 bad-credentials"}},

		{name: "whitelist refuses another source", method: "INVITE", src: other, client: client{user: "bob", password: "bob-secret"},
			want:    view{Status: 403, Reason: "Forbidden", Stage: "authn"},
			wantWhy: `sip user "bob": source 198.51.100.7 not in its IP whitelist`},
		{name: "whitelist refuses a register", method: "REGISTER", src: other, client: client{user: "bob", password: "bob-secret"},
			want:    view{Status: 403, Reason: "Forbidden", Stage: "authn"},
			wantWhy: `sip user "bob": source 198.51.100.7 not in its IP whitelist`},

		{name: "protocol tls refuses udp", method: "INVITE", src: phone, client: client{user: "carol", password: "carol-secret"},
			want:    view{Status: 403, Reason: "Transport not allowed", Stage: "authn"},
			wantWhy: `sip user "carol" requires tls; the request came over udp`},
		{name: "protocol tls refuses a register over tcp", method: "REGISTER", src: phone, over: pipeline.TCP,
			client:  client{user: "carol", password: "carol-secret"},
			want:    view{Status: 403, Reason: "Transport not allowed", Stage: "authn"},
			wantWhy: `sip user "carol" requires tls; the request came over tcp`},
		{name: "protocol tls accepts tls", method: "REGISTER", src: phone, over: pipeline.TLS,
			client: client{user: "carol", password: "carol-secret"},
			want:   passed, wantAuth: carol, wantTrace: []string{"authn"}, wantSuccesses: []string{"192.0.2.5"}},

		{name: "malformed stored HA1 is a failure", method: "INVITE", src: phone, client: client{user: "broken", password: "x"},
			wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, tt.algs...)
			c := tt.client
			c.nonce = hs.challenge(t, tt.method, tt.src, t0)
			c.nc = 1
			hs.failures = nil // the challenge's NoCredentials is TestChallengeWithoutCredentials's business

			hdr := tt.credHdr
			if hdr == "" {
				hdr = digest.KindFor(tt.method).CredentialsHeader()
			}
			val := tt.raw
			if val == "" {
				val = c.header(tt.method)
			}
			from := tt.answer
			if !from.IsValid() {
				from = tt.src
			}
			req := request(t, tt.method, from, t0.Add(time.Second+tt.after), hdr+": "+val)
			if tt.over != "" {
				req.Transport = tt.over
			}
			res, err := hs.serve(t, req)
			if tt.wantErr {
				if err == nil || !strings.HasPrefix(err.Error(), "stage/authn: ") {
					t.Fatalf("err = %v, want a stage/authn error", err)
				}
				if hs.nextCalls != 0 {
					t.Errorf("next called on a technical failure")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, viewOf(res)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if tt.want.Stage != "next" && res.Why != tt.wantWhy {
				t.Errorf("Why = %q, want %q", res.Why, tt.wantWhy)
			}
			wantCalls := 0
			if tt.want.Stage == "next" {
				wantCalls = 1
			}
			if hs.nextCalls != wantCalls {
				t.Errorf("next called %d times, want %d", hs.nextCalls, wantCalls)
			}
			if diff := cmp.Diff(tt.wantAuth, hs.nextAuth); diff != "" {
				t.Errorf("r.Auth seen by next (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantTrace, hs.nextTrace); diff != "" {
				t.Errorf("trace seen by next (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFailures, hs.failures); diff != "" {
				t.Errorf("OnFailure (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSuccesses, hs.successes); diff != "" {
				t.Errorf("OnSuccess (-want +got):\n%s", diff)
			}
		})
	}
}

// A wrong password and an unknown user must not be told apart by the answer:
// the same status, reason, header names and challenge form (the nonce aside),
// and the same report to the firewall. Only Why, for the operator, differs.
func TestWrongPasswordLikeUnknownUser(t *testing.T) {
	tests := []struct {
		method string
		algs   []digest.Algorithm
		alg    digest.Algorithm
	}{
		{"INVITE", nil, digest.MD5},
		{"REGISTER", nil, digest.MD5},
		{"INVITE", []digest.Algorithm{digest.SHA256, digest.MD5}, digest.SHA256},
		{"REGISTER", []digest.Algorithm{digest.SHA256, digest.MD5}, digest.MD5},
	}
	for _, tt := range tests {
		t.Run(tt.method+"/"+tt.alg.String(), func(t *testing.T) {
			try := func(user, password string) (view, []string, string) {
				hs := newHarness(t, tt.algs...)
				c := client{user: user, password: password, alg: tt.alg, nc: 1}
				c.nonce = hs.challenge(t, tt.method, phone, t0)
				hs.failures = nil
				hdr := digest.KindFor(tt.method).CredentialsHeader()
				res, err := hs.serve(t, request(t, tt.method, phone, t0.Add(time.Second), hdr+": "+c.header(tt.method)))
				if err != nil {
					t.Fatal(err)
				}
				if hs.nextCalls != 0 {
					t.Errorf("%s passed", user)
				}
				return viewOf(res), hs.failures, res.Why
			}
			wrongView, wrongFail, wrongWhy := try("alice", "guess")
			unknownView, unknownFail, unknownWhy := try("mallory", "guess")
			if diff := cmp.Diff(wrongView, unknownView); diff != "" {
				t.Errorf("wrong password vs unknown user (-wrong +unknown):\n%s", diff)
			}
			if diff := cmp.Diff(wrongFail, unknownFail); diff != "" {
				t.Errorf("OnFailure, wrong password vs unknown user (-wrong +unknown):\n%s", diff)
			}
			if wrongWhy == unknownWhy {
				t.Errorf("Why is %q for both; the decision log should tell them apart", wrongWhy)
			}
		})
	}
}

// A nonce count must increase with every use of a nonce; a repeated or lower
// one is a replay and is challenged again.
func TestReplayedNonceCount(t *testing.T) {
	hs := newHarness(t)
	nonce := hs.challenge(t, "INVITE", phone, t0)
	hs.failures = nil
	steps := []struct {
		nc          uint32
		wantStatus  int
		wantWhy     string
		wantFailure bool
	}{
		{1, 200, "terminal", false},
		{1, 407, `replayed nonce count for "alice"`, true},
		{2, 200, "terminal", false},
		{2, 407, `replayed nonce count for "alice"`, true},
		{5, 200, "terminal", false},
		{3, 407, `replayed nonce count for "alice"`, true},
	}
	for i, st := range steps {
		c := client{user: "alice", password: "alice-secret", nonce: nonce, nc: st.nc}
		hs.failures, hs.successes = nil, nil
		res, err := hs.serve(t, request(t, "INVITE", phone, t0.Add(time.Duration(i+1)*time.Second), "Proxy-Authorization: "+c.header("INVITE")))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if res.Status != st.wantStatus || res.Why != st.wantWhy {
			t.Errorf("step %d (nc=%d): got %d %q, want %d %q", i, st.nc, res.Status, res.Why, st.wantStatus, st.wantWhy)
		}
		if st.wantStatus == 407 {
			if diff := cmp.Diff([]string{proxyChallenge("MD5", false)}, viewOf(res).Headers); diff != "" {
				t.Errorf("step %d: challenge (-want +got):\n%s", i, diff)
			}
		}
		if got := len(hs.failures) > 0; got != st.wantFailure {
			t.Errorf("step %d: OnFailure called = %v, want %v (%v)", i, got, st.wantFailure, hs.failures)
		}
	}
}

// Requests that identify already claimed (an IP endpoint, the core) pass
// straight on, whatever credentials they carry, and do not touch the hooks.
func TestIdentifiedRequestsPassUntouched(t *testing.T) {
	tests := []struct {
		name   string
		method string
		auth   pipeline.Identity
		extra  []string
	}{
		{"ip endpoint", "INVITE",
			pipeline.Identity{Method: pipeline.AuthIP, AccountID: 1, EndpointID: 10, Dialled: "442071234567", CLI: "441110000001"}, nil},
		{"ip endpoint with bogus credentials", "INVITE",
			pipeline.Identity{Method: pipeline.AuthIP, AccountID: 1, EndpointID: 10},
			[]string{`Proxy-Authorization: Digest username="alice", realm="sipward", nonce="x", uri="sip:x", response="00000000000000000000000000000000"`}},
		{"core", "INVITE", pipeline.Identity{Method: pipeline.AuthCore, Dialled: "441110000009"}, nil},
		{"ip endpoint register", "REGISTER", pipeline.Identity{Method: pipeline.AuthIP, AccountID: 2, EndpointID: 20}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t)
			r := request(t, tt.method, other, t0, tt.extra...)
			r.Auth = tt.auth
			res, err := hs.serve(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(passed, viewOf(res)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.auth, hs.nextAuth); diff != "" {
				t.Errorf("r.Auth (-want +got):\n%s", diff)
			}
			if len(hs.nextTrace) != 0 {
				t.Errorf("trace = %v, want none (authn did not decide)", hs.nextTrace)
			}
			if len(hs.failures)+len(hs.successes) != 0 {
				t.Errorf("hooks called: failures %v, successes %v", hs.failures, hs.successes)
			}
		})
	}
}

func TestNewRequiresAuthAndLookup(t *testing.T) {
	nonces, err := digest.NewNonces(secret, 0)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := digest.New(digest.Config{Realm: realm, Nonces: nonces})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(*pipeline.Request, string) (authn.User, bool) { return authn.User{}, false }
	tests := []struct {
		name    string
		cfg     authn.Config
		wantErr bool
	}{
		{"complete", authn.Config{Auth: auth, Lookup: lookup}, false},
		{"no authenticator", authn.Config{Lookup: lookup}, true},
		{"no lookup", authn.Config{Auth: auth}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := authn.New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Errorf("New: err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
