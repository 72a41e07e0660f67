package digest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const md5Resp = "49ce95cb68d5a9f921ac7d50442c2547"

func TestParseCredentials(t *testing.T) {
	base := Credentials{
		Username: "alice", Realm: "example.com", Nonce: "n1", URI: "sip:example.com",
		Response: md5Resp, Algorithm: MD5, Cnonce: "c1", Qop: "auth", NC: "00000001", Count: 1,
	}
	with := func(f func(*Credentials)) Credentials {
		c := base
		f(&c)
		return c
	}
	tests := []struct {
		name string
		in   string
		want Credentials
	}{
		{"canonical", `Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", algorithm=MD5, cnonce="c1", qop=auth, nc=00000001`, base},
		{"no spaces", `Digest username="alice",realm="example.com",nonce="n1",uri="sip:example.com",response="` + md5Resp + `",cnonce="c1",qop=auth,nc=00000001`, base},
		{"lots of white space", "  Digest\t username = \"alice\" ,\r\n realm=\"example.com\",  nonce=\"n1\"  ,uri=\"sip:example.com\",\tresponse=\"" + md5Resp + "\", cnonce=\"c1\", qop=auth, nc=00000001 ", base},
		{"scheme and names in other case", `DIGEST USERNAME="alice", Realm="example.com", NONCE="n1", Uri="sip:example.com", Response="` + md5Resp + `", CNonce="c1", QOP=auth, NC=00000001`, base},
		{"algorithm lower case", `Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", algorithm=md5, cnonce="c1", qop=auth, nc=00000001`, base},
		{"quoted tokens", `Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", algorithm="MD5", cnonce="c1", qop="auth", nc="00000001"`, base},
		{"unquoted values", `Digest username=alice, realm=example.com, nonce=n1, uri=sip:example.com, response=` + md5Resp + `, cnonce=c1, qop=auth, nc=00000001`, base},
		{"qop in capitals is kept as sent", `Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", cnonce="c1", qop=AUTH, nc=00000001`,
			with(func(c *Credentials) { c.Qop = "AUTH" })},
		{"empty elements and trailing comma", `Digest ,username="alice",, realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", cnonce="c1", qop=auth, nc=00000001,`, base},
		{"extension parameters ignored", `Digest username="alice", realm="example.com", x-foo="a, \"b\"", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", cnonce="c1", qop=auth, nc=00000001, userhash=false, charset=UTF-8`, base},
		{"escaped quote", `Digest username="al\"ice", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", cnonce="c1", qop=auth, nc=00000001`,
			with(func(c *Credentials) { c.Username = `al"ice` })},
		{"escaped backslash and letter", `Digest username="a\\b\c", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", cnonce="c1", qop=auth, nc=00000001`,
			with(func(c *Credentials) { c.Username = `a\bc` })},
		{"comma inside quotes", `Digest username="a,b", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", cnonce="c1", qop=auth, nc=00000001`,
			with(func(c *Credentials) { c.Username = "a,b" })},
		{"utf-8", `Digest username="Jäsøn", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", cnonce="c1", qop=auth, nc=00000001`,
			with(func(c *Credentials) { c.Username = "Jäsøn" })},
		{"empty username", `Digest username="", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", cnonce="c1", qop=auth, nc=00000001`,
			with(func(c *Credentials) { c.Username = "" })},
		{"no qop (RFC 2069)", `Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `"`,
			with(func(c *Credentials) { c.Qop, c.Cnonce, c.NC, c.Count = "", "", "", 0 })},
		{"opaque", `Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", opaque="op", cnonce="c1", qop=auth, nc=00000001`,
			with(func(c *Credentials) { c.Opaque = "op" })},
		{"sha-256, upper-case hex response", `Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com", algorithm=sha-256, response="5314154A676B002CE478464ED203AA56900FBB290217C3303110A895E5F30C85", cnonce="c1", qop=auth, nc=00000001`,
			with(func(c *Credentials) {
				c.Algorithm, c.Response = SHA256, "5314154A676B002CE478464ED203AA56900FBB290217C3303110A895E5F30C85"
			})},
		{"sha-512-256", `Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com", algorithm=SHA-512-256, response="4feb9ddcf0e52ebabf26d3b432b229bf2af5668c6d26139add6cc5c1b67c41bc", cnonce="c1", qop=auth, nc=00000001`,
			with(func(c *Credentials) {
				c.Algorithm, c.Response = SHA512_256, "4feb9ddcf0e52ebabf26d3b432b229bf2af5668c6d26139add6cc5c1b67c41bc"
			})},
		{"largest nc", `Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", cnonce="c1", qop=auth, nc=FFFFFFFF`,
			with(func(c *Credentials) { c.NC, c.Count = "FFFFFFFF", 0xffffffff })},
		{"short nc", `Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `", cnonce="c1", qop=auth, nc=1a`,
			with(func(c *Credentials) { c.NC, c.Count = "1a", 0x1a })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCredentials(tt.in)
			if err != nil {
				t.Fatalf("ParseCredentials: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCredentialsErrors(t *testing.T) {
	const rest = `realm="example.com", nonce="n1", uri="sip:example.com", response="` + md5Resp + `"`
	tests := []struct {
		name, in, want string
	}{
		{"empty", ``, `digest: not a Digest header`},
		{"basic", `Basic YWxpY2U6c2VjcmV0`, `digest: not a Digest header`},
		{"digestive", `Digestive username="alice"`, `digest: not a Digest header`},
		{"scheme glued to param", `Digestusername="alice"`, `digest: not a Digest header`},
		{"scheme only", `Digest`, `digest: missing "username"`},
		{"missing username", `Digest ` + rest, `digest: missing "username"`},
		{"missing realm", `Digest username="alice", nonce="n1", uri="sip:example.com", response="` + md5Resp + `"`, `digest: missing "realm"`},
		{"missing nonce", `Digest username="alice", realm="example.com", uri="sip:example.com", response="` + md5Resp + `"`, `digest: missing "nonce"`},
		{"missing uri", `Digest username="alice", realm="example.com", nonce="n1", response="` + md5Resp + `"`, `digest: missing "uri"`},
		{"missing response", `Digest username="alice", realm="example.com", nonce="n1", uri="sip:example.com"`, `digest: missing "response"`},
		{"qop without nc", `Digest username="alice", ` + rest + `, qop=auth, cnonce="c"`, `digest: missing "nc"`},
		{"qop without cnonce", `Digest username="alice", ` + rest + `, qop=auth, nc=00000001`, `digest: missing "cnonce"`},
		{"duplicate", `Digest username="alice", username="bob", ` + rest, `digest: duplicate "username"`},
		{"duplicate in other case", `Digest username="alice", ` + rest + `, Nonce="n2"`, `digest: duplicate "nonce"`},
		{"auth-int", `Digest username="alice", ` + rest + `, qop=auth-int, nc=00000001, cnonce="c"`, `digest: qop "auth-int" not supported`},
		{"qop list", `Digest username="alice", ` + rest + `, qop="auth,auth-int", nc=00000001, cnonce="c"`, `digest: unknown qop "auth,auth-int"`},
		{"md5-sess", `Digest username="alice", ` + rest + `, algorithm=MD5-sess`, `digest: algorithm "MD5-sess" not supported`},
		{"sha-256-sess", `Digest username="alice", ` + rest + `, algorithm=sha-256-SESS`, `digest: algorithm "sha-256-SESS" not supported`},
		{"sha-512", `Digest username="alice", ` + rest + `, algorithm=SHA-512`, `digest: unknown algorithm "SHA-512"`},
		{"AKAv1-MD5", `Digest username="alice", ` + rest + `, algorithm=AKAv1-MD5`, `digest: unknown algorithm "AKAv1-MD5"`},
		{"userhash", `Digest username="alice", ` + rest + `, userhash=true`, `digest: "userhash" not supported`},
		{"username*", `Digest username*=UTF-8''alice, ` + rest, `digest: "username*" not supported`},
		{"both usernames", `Digest username="alice", username*=UTF-8''alice, ` + rest, `digest: both "username" and "username*"`},
		{"nc not hex", `Digest username="alice", ` + rest + `, qop=auth, nc=0000000g, cnonce="c"`, `digest: malformed "nc" "0000000g": want 8 hex digits`},
		{"nc too long", `Digest username="alice", ` + rest + `, qop=auth, nc=000000001, cnonce="c"`, `digest: malformed "nc" "000000001": want 8 hex digits`},
		{"response short", `Digest username="alice", realm="r", nonce="n", uri="u", response="abc"`, `digest: malformed "response": want 32 hex digits for MD5, got 3 characters`},
		{"md5 response with sha-256", `Digest username="alice", ` + rest + `, algorithm=SHA-256`, `digest: malformed "response": want 64 hex digits for SHA-256, got 32 characters`},
		{"response not hex", `Digest username="alice", realm="r", nonce="n", uri="u", response="` + md5Resp[:31] + `x"`, `digest: malformed "response": not hex`},
		{"unterminated quote", `Digest realm=r, username="alice, nonce=n`, `digest: "username": unterminated quoted string`},
		{"quote swallows the rest", `Digest username="alice, ` + rest, `digest: unexpected 'e' after "username"`},
		{"escape at end", `Digest username="alice\"`, `digest: "username": unterminated quoted string`},
		{"no equals", `Digest username "alice"`, `digest: missing "=" after "username"`},
		{"no value", `Digest username=, ` + rest, `digest: "username" has no value`},
		{"no value at end", `Digest ` + rest + `, username=`, `digest: "username" has no value`},
		{"junk after value", `Digest username="alice" x, ` + rest, `digest: unexpected 'x' after "username"`},
		{"two values", `Digest username=alice bob, ` + rest, `digest: unexpected 'b' after "username"`},
		{"quote in token", `Digest username=al"ice", ` + rest, `digest: unexpected '"' after "username"`},
		{"bad name", `Digest =alice, ` + rest, `digest: unexpected '=' at offset 7`},
		{"long name clipped", `Digest aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "x"`, `digest: missing "=" after "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCredentials(tt.in)
			if err == nil {
				t.Fatalf("ParseCredentials(%s) succeeded, want error %q", tt.in, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
		})
	}
	if _, err := ParseCredentials(`Basic x`); !errors.Is(err, ErrNotDigest) {
		t.Errorf("Basic: error %v is not ErrNotDigest", err)
	}
}
