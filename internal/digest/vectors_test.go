package digest

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// vectorFile is testdata/digest-vectors.json (see testdata/README.md).
type vectorFile struct {
	Vectors  []vector      `json:"vectors"`
	Negative []negative    `json:"negative_cases"`
	Observed []observation `json:"observed_sip"`
}

type vector struct {
	ID                 string  `json:"id"`
	Status             string  `json:"status"`
	Algorithm          string  `json:"algorithm"`
	Username           string  `json:"username"`
	Realm              string  `json:"realm"`
	Password           string  `json:"password"`
	Method             string  `json:"method"`
	URI                string  `json:"uri"`
	Nonce              string  `json:"nonce"`
	Qop                *string `json:"qop"`
	NC                 *string `json:"nc"`
	Cnonce             *string `json:"cnonce"`
	Opaque             *string `json:"opaque"`
	EntityBody         *string `json:"entity_body"`
	HA1                string  `json:"HA1"`
	HA2                string  `json:"HA2"`
	Response           string  `json:"expected_response"`
	RFCPrintedResponse string  `json:"rfc_printed_response"`
	ExpectedUserhash   string  `json:"expected_userhash"`
}

type negative struct {
	ID           string `json:"id"`
	Base         string `json:"base"`
	Change       string `json:"change"`
	ResponseSent string `json:"response_sent"`
}

type observation struct {
	Client     string  `json:"client"`
	Method     string  `json:"method"`
	Header     string  `json:"header"`
	Algorithm  string  `json:"algorithm"`
	Username   string  `json:"username"`
	Password   string  `json:"password"`
	Realm      string  `json:"realm"`
	Nonce      string  `json:"nonce"`
	URI        string  `json:"uri"`
	Qop        *string `json:"qop"`
	NC         *string `json:"nc"`
	Cnonce     *string `json:"cnonce"`
	Opaque     *string `json:"opaque"`
	Response   string  `json:"response"`
	Recomputed string  `json:"recomputed"`
	Match      bool    `json:"match"`
	RawHeader  string  `json:"raw_header"`
	// ACK of a 2xx: verifies with method INVITE (RFC 3261 §13.2.2.4).
	MatchWithINVITE *bool `json:"match_with_method_INVITE"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/digest-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("digest-vectors.json: %v", err)
	}
	return f
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// refHash is an independent H() for the vectors the package refuses
// (-sess, auth-int), so that their numbers are still checked.
func refHash(alg string, parts ...string) string {
	in := []byte(strings.Join(parts, ":"))
	switch strings.TrimSuffix(alg, "-sess") {
	case "MD5":
		s := md5.Sum(in)
		return hex.EncodeToString(s[:])
	case "SHA-256":
		s := sha256.Sum256(in)
		return hex.EncodeToString(s[:])
	case "SHA-512-256":
		s := sha512.Sum512_256(in)
		return hex.EncodeToString(s[:])
	}
	panic("refHash: " + alg)
}

// header formats a vector as the Authorization value a client would send.
func (v vector) header() string {
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%q, realm=%q, nonce=%q, uri=%q, response=%q, algorithm=%s`,
		v.Username, v.Realm, v.Nonce, v.URI, v.Response, v.Algorithm)
	if v.Qop != nil {
		fmt.Fprintf(&b, `, qop=%s, nc=%s, cnonce=%q`, *v.Qop, *v.NC, *v.Cnonce)
	}
	if v.Opaque != nil {
		fmt.Fprintf(&b, `, opaque=%q`, *v.Opaque)
	}
	return b.String()
}

// What the package does with each vector. A vector id missing here fails the
// test: a new vector needs a decision.
const (
	accept       = "accept"         // HA1 and response asserted; parses and verifies
	refuseSess   = "refuse -sess"   // numbers asserted with refHash; ParseCredentials refuses -sess (never offered)
	refuseInt    = "refuse authint" // numbers asserted with refHash; ParseCredentials refuses auth-int (never offered)
	nonstandard  = "nonstandard"    // RFC 7616 §3.9.2 as printed: truncated SHA-512; a correct SHA-512/256 must NOT match
	acceptNoHash = "accept userhash-free"
)

var vectorOutcome = map[string]string{
	"rfc2617-3.5-md5-auth":                          accept,
	"rfc2069-2.4-md5-noqop":                         accept,
	"rfc7616-3.9.1-md5":                             accept,
	"rfc7616-3.9.1-sha256":                          accept,
	"rfc7616-3.9.1-inputs-sha512-256":               accept,
	"rfc7616-3.9.1-inputs-md5-sess":                 refuseSess,
	"rfc7616-3.9.2-sha512-256-userhash-erratum4897": acceptNoHash,
	"rfc7616-3.9.2-as-printed-NONSTANDARD":          nonstandard,
	"sip-register-md5-noqop":                        accept,
	"sip-register-md5-auth":                         accept,
	"sip-register-md5-auth-nc2":                     accept,
	"sip-register-sha256-auth":                      accept,
	"sip-register-sha512-256-auth":                  accept,
	"sip-invite-md5-auth":                           accept,
	"sip-invite-md5-auth-int-sdp":                   refuseInt,
	"sip-invite-sha256-auth-int-sdp":                refuseInt,
	"sip-register-md5-auth-int-emptybody":           refuseInt,
	"sip-message-md5-auth":                          accept,
	"sip-register-md5-sess":                         refuseSess,
	"sip-register-md5-uri-with-port-transport":      accept,
	"sip-register-md5-escaped-quote-username":       accept,
	"sip-register-sha256-utf8-username":             accept,
	"sip-register-md5-username-at-suffix":           accept,
}

func TestVectorsComplete(t *testing.T) {
	f := loadVectors(t)
	got := map[string]bool{}
	for _, v := range f.Vectors {
		got[v.ID] = true
		if _, ok := vectorOutcome[v.ID]; !ok {
			t.Errorf("vector %q has no expected outcome in vectorOutcome", v.ID)
		}
	}
	for id := range vectorOutcome {
		if !got[id] {
			t.Errorf("vectorOutcome names %q, which is not in digest-vectors.json", id)
		}
	}
	// The RFC 7616 §3.9.1 pair is the reference for both algorithms we store.
	for _, id := range []string{"rfc7616-3.9.1-md5", "rfc7616-3.9.1-sha256"} {
		if vectorOutcome[id] != accept || !got[id] {
			t.Errorf("required vector %s missing or not accepted", id)
		}
	}
	if len(f.Observed) != 21 {
		t.Errorf("observed_sip has %d captures, want 21", len(f.Observed))
	}
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t).Vectors {
		t.Run(v.ID, func(t *testing.T) {
			switch vectorOutcome[v.ID] {
			case accept, acceptNoHash:
				testAcceptedVector(t, v)
			case refuseSess:
				base := refHash(v.Algorithm, v.Username, v.Realm, v.Password)
				ha1 := refHash(v.Algorithm, base, v.Nonce, *v.Cnonce)
				ha2 := refHash(v.Algorithm, v.Method, v.URI)
				resp := refHash(v.Algorithm, ha1, v.Nonce, *v.NC, *v.Cnonce, *v.Qop, ha2)
				if diff := cmp.Diff([]string{v.HA1, v.HA2, v.Response}, []string{ha1, ha2, resp}); diff != "" {
					t.Errorf("reference -sess arithmetic (-vector +computed):\n%s", diff)
				}
				if got := HA1(MD5, v.Username, v.Realm, v.Password); got != base {
					t.Errorf("HA1 = %s, want the -sess base %s", got, base)
				}
				_, err := ParseCredentials(v.header())
				wantErr(t, err, `digest: algorithm "MD5-sess" not supported`)
			case refuseInt:
				ha1 := refHash(v.Algorithm, v.Username, v.Realm, v.Password)
				ha2 := refHash(v.Algorithm, v.Method, v.URI, refHash(v.Algorithm, *v.EntityBody))
				resp := refHash(v.Algorithm, ha1, v.Nonce, *v.NC, *v.Cnonce, *v.Qop, ha2)
				if diff := cmp.Diff([]string{v.HA1, v.HA2, v.Response}, []string{ha1, ha2, resp}); diff != "" {
					t.Errorf("reference auth-int arithmetic (-vector +computed):\n%s", diff)
				}
				alg, _ := ParseAlgorithm(v.Algorithm)
				if got := HA1(alg, v.Username, v.Realm, v.Password); got != v.HA1 {
					t.Errorf("HA1 = %s, want %s", got, v.HA1)
				}
				_, err := ParseCredentials(v.header())
				wantErr(t, err, `digest: qop "auth-int" not supported`)
			case nonstandard:
				// The printed values come from truncated SHA-512. A standard
				// SHA-512/256 must not reproduce them.
				c := Credentials{Username: v.Username, Realm: v.Realm, Nonce: v.Nonce, URI: v.URI,
					Response: v.Response, Algorithm: SHA512_256, Cnonce: *v.Cnonce, Qop: *v.Qop, NC: *v.NC}
				ha1 := HA1(SHA512_256, v.Username, v.Realm, v.Password)
				if ha1 == v.HA1 {
					t.Errorf("HA1 reproduces the non-standard printed value %s", v.HA1)
				}
				if got := Verify(&c, v.Method, ha1); got != BadResponse {
					t.Errorf("Verify(printed response) = %v, want BadResponse", got)
				}
			default:
				t.Fatalf("no outcome for %s", v.ID)
			}
		})
	}
}

func testAcceptedVector(t *testing.T, v vector) {
	t.Helper()
	alg, ok := ParseAlgorithm(v.Algorithm)
	if !ok {
		t.Fatalf("algorithm %q", v.Algorithm)
	}
	if got := HA1(alg, v.Username, v.Realm, v.Password); got != v.HA1 {
		t.Errorf("HA1 = %s, want %s", got, v.HA1)
	}
	if got := refHash(v.Algorithm, v.Method, v.URI); got != v.HA2 {
		t.Errorf("HA2 (reference) = %s, want %s", got, v.HA2)
	}

	// From a header as a client writes it: parse, then verify.
	c, err := ParseCredentials(v.header())
	if err != nil {
		t.Fatalf("ParseCredentials(%s): %v", v.header(), err)
	}
	want := Credentials{
		Username: v.Username, Realm: v.Realm, Nonce: v.Nonce, URI: v.URI, Response: v.Response,
		Algorithm: alg, Cnonce: str(v.Cnonce), Opaque: str(v.Opaque), Qop: str(v.Qop), NC: str(v.NC),
	}
	if v.NC != nil {
		want.Count = 1
		if *v.NC == "00000002" {
			want.Count = 2
		}
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("ParseCredentials (-want +got):\n%s", diff)
	}
	if got := Verify(&c, v.Method, v.HA1); got != Ok {
		t.Errorf("Verify = %v, want Ok", got)
	}
	// The same with the stored HA1 in upper case, as a careless import might hold it.
	if got := Verify(&c, v.Method, strings.ToUpper(v.HA1)); got != Ok {
		t.Errorf("Verify(upper-case HA1) = %v, want Ok", got)
	}
	// One changed input of the hash must fail.
	for name, mutate := range map[string]func(*Credentials){
		"nonce":  func(c *Credentials) { c.Nonce += "x" },
		"uri":    func(c *Credentials) { c.URI += "x" },
		"cnonce": func(c *Credentials) { c.Cnonce += "x" },
	} {
		m := c
		mutate(&m)
		if name == "cnonce" && m.Qop == "" {
			continue // not hashed without qop
		}
		if got := Verify(&m, v.Method, v.HA1); got != BadResponse {
			t.Errorf("Verify(changed %s) = %v, want BadResponse", name, got)
		}
	}
	if v.RFCPrintedResponse != "" { // RFC 2069 erratum 749: the printed value is wrong
		m := c
		m.Response = v.RFCPrintedResponse
		if got := Verify(&m, v.Method, v.HA1); got != BadResponse {
			t.Errorf("Verify(RFC-printed wrong response) = %v, want BadResponse", got)
		}
	}
	if v.ExpectedUserhash != "" { // userhash = H(username:realm); we refuse userhash=true
		if got := refHash(v.Algorithm, v.Username, v.Realm); got != v.ExpectedUserhash {
			t.Errorf("userhash = %s, want %s", got, v.ExpectedUserhash)
		}
		_, err := ParseCredentials(v.header() + ", userhash=true")
		wantErr(t, err, `digest: "userhash" not supported`)
		_, err = ParseCredentials(strings.Replace(v.header(), "username=", "username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, x=", 1))
		wantErr(t, err, `digest: "username*" not supported`)
	}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

// TestNegativeVectors gives every negative case its outcome. The cases that
// need a nonce of ours are repeated end to end in TestAuthenticatorFlow.
func TestNegativeVectors(t *testing.T) {
	f := loadVectors(t)
	base := map[string]vector{}
	for _, v := range f.Vectors {
		base[v.ID] = v
	}
	// Check with an Authenticator for the vectors' realm. Its nonces are not
	// the vectors', so Check can only reach the checks before the nonce.
	auth := newTestAuth(t, Config{Realm: "example.com"})

	tests := map[string]func(t *testing.T, c Credentials, v vector){
		"neg-wrong-password": func(t *testing.T, c Credentials, v vector) {
			if got := Verify(&c, v.Method, v.HA1); got != BadResponse {
				t.Errorf("Verify = %v, want BadResponse", got)
			}
		},
		// Decision: accepted. Hex case carries no information; Kamailio accepts it too.
		"neg-response-uppercase-hex": func(t *testing.T, c Credentials, v vector) {
			if got := Verify(&c, v.Method, v.HA1); got != Ok {
				t.Errorf("Verify = %v, want Ok", got)
			}
		},
		"neg-uri-mismatch": func(t *testing.T, c Credentials, v vector) {
			c.URI = "sip:evil.example.com"
			if got := Verify(&c, v.Method, v.HA1); got != Ok {
				t.Fatalf("Verify = %v: the sent response should be right for its own uri", got)
			}
			r := Request{Method: v.Method, URI: "sip:example.com"}
			if got := auth.Check(&c, r, v.HA1); got != URIMismatch {
				t.Errorf("Check = %v, want URIMismatch", got)
			}
		},
		"neg-method-swap": func(t *testing.T, c Credentials, v vector) {
			if got := Verify(&c, "REGISTER", v.HA1); got != BadResponse {
				t.Errorf("Verify(REGISTER) = %v, want BadResponse", got)
			}
		},
		"neg-nc-replay": func(t *testing.T, c Credentials, v vector) {
			if got := Verify(&c, v.Method, v.HA1); got != Ok {
				t.Fatalf("Verify = %v, want Ok (the replay is a right response)", got)
			}
			counts := NewLocalCounts(DefaultNonceLifetime, 0)
			if !counts.Seen(c.Nonce, c.Count, testNow) {
				t.Fatal("first Seen = false")
			}
			if counts.Seen(c.Nonce, c.Count, testNow.Add(time.Second)) {
				t.Error("replayed Seen = true, want false")
			}
		},
		"neg-realm-mismatch": func(t *testing.T, c Credentials, v vector) {
			c.Realm = "other.example"
			r := Request{Method: v.Method, URI: v.URI}
			if got := auth.Check(&c, r, v.HA1); got != WrongRealm {
				t.Errorf("Check = %v, want WrongRealm", got)
			}
			// Even were the realm not checked, the HA1 stored for example.com cannot verify it.
			if got := Verify(&c, v.Method, v.HA1); got != BadResponse {
				t.Errorf("Verify = %v, want BadResponse", got)
			}
		},
	}
	for _, n := range f.Negative {
		t.Run(n.ID, func(t *testing.T) {
			test, ok := tests[n.ID]
			if !ok {
				t.Fatalf("negative case %q has no expected outcome", n.ID)
			}
			v, ok := base[n.Base]
			if !ok {
				t.Fatalf("base %q not found", n.Base)
			}
			c, err := ParseCredentials(v.header())
			if err != nil {
				t.Fatal(err)
			}
			c.Response = n.ResponseSent
			test(t, c, v)
		})
	}
	if len(f.Negative) != len(tests) {
		t.Errorf("%d negative cases in the file, %d outcomes here", len(f.Negative), len(tests))
	}
}

// TestObservedClients parses and verifies every header captured from a real
// SIP client.
func TestObservedClients(t *testing.T) {
	for i, o := range loadVectors(t).Observed {
		client := strings.FieldsFunc(o.Client, func(r rune) bool { return r == ' ' || r == '/' })[0]
		t.Run(fmt.Sprintf("%02d-%s-%s", i, client, o.Method), func(t *testing.T) {
			name, value, ok := strings.Cut(o.RawHeader, ":")
			if !ok || name != o.Header {
				t.Fatalf("raw header %q does not start with %s", o.RawHeader, o.Header)
			}
			if name != KindFor(o.Method).CredentialsHeader() {
				t.Errorf("%s sent %s, KindFor says %s", o.Method, name, KindFor(o.Method).CredentialsHeader())
			}
			c, err := ParseCredentials(value)
			if err != nil {
				t.Fatalf("ParseCredentials: %v", err)
			}
			alg, _ := ParseAlgorithm(o.Algorithm)
			want := Credentials{
				Username: o.Username, Realm: o.Realm, Nonce: o.Nonce, URI: o.URI, Response: o.Response,
				Algorithm: alg, Cnonce: str(o.Cnonce), Opaque: str(o.Opaque), Qop: str(o.Qop), NC: str(o.NC),
			}
			if o.NC != nil {
				n, _ := parseNC(*o.NC)
				want.Count = n
			}
			if diff := cmp.Diff(want, c); diff != "" {
				t.Errorf("ParseCredentials (-want +got):\n%s", diff)
			}
			ha1 := HA1(alg, o.Username, o.Realm, o.Password)
			method, wantRes := o.Method, Ok
			if !o.Match {
				// ACK of a 2xx: carries the INVITE's credentials.
				if o.Method != "ACK" || o.MatchWithINVITE == nil || !*o.MatchWithINVITE {
					t.Fatalf("capture does not verify and is not an ACK carrying INVITE credentials")
				}
				if got := Verify(&c, "ACK", ha1); got != BadResponse {
					t.Errorf("Verify(method ACK) = %v, want BadResponse", got)
				}
				method = "INVITE"
			}
			if got := Verify(&c, method, ha1); got != wantRes {
				t.Errorf("Verify(%s) = %v, want %v", method, got, wantRes)
			}
		})
	}
}

// TestUsernameAtSuffix records the decision on sipsak's username="alice@":
// looked up as sent, so alice's HA1 does not verify it.
func TestUsernameAtSuffix(t *testing.T) {
	var v vector
	for _, x := range loadVectors(t).Vectors {
		if x.ID == "sip-register-md5-username-at-suffix" {
			v = x
		}
	}
	c, err := ParseCredentials(v.header())
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "alice@" {
		t.Errorf("Username = %q, want it as sent", c.Username)
	}
	alice := HA1(MD5, "alice", v.Realm, v.Password)
	if got := Verify(&c, v.Method, alice); got != BadResponse {
		t.Errorf("Verify(alice's HA1) = %v, want BadResponse", got)
	}
}
