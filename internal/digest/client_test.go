package digest

import (
	"strings"
	"testing"
)

// TestAnswer: the client side answers sipward's own server side (an
// independent check of both): the strongest algorithm offered is used, and
// what it cannot answer is named.
func TestAnswer(t *testing.T) {
	const user, pass, uri = "pbx-trunk", "egress-secret-1", "sip:442071234567@pbx.example.net"
	tests := []struct {
		name    string
		algs    []Algorithm // of our Authenticator; nil: chal is used instead
		chal    []string
		wantAlg Algorithm
		wantErr string
	}{
		{name: "md5", algs: []Algorithm{MD5}, wantAlg: MD5},
		{name: "sha-256 preferred to md5", algs: []Algorithm{SHA256, MD5}, wantAlg: SHA256},
		{name: "sha-256 alone", algs: []Algorithm{SHA256}, wantAlg: SHA256},
		{name: "sha-256 listed after md5 still preferred",
			chal:    []string{`Digest realm="edge", nonce="n1", algorithm=MD5, qop="auth"`, `Digest realm="edge", nonce="n1", algorithm=SHA-256, qop="auth"`},
			wantAlg: SHA256},
		{name: "auth-int only", chal: []string{`Digest realm="edge", nonce="n1", algorithm=MD5, qop="auth-int"`},
			wantErr: "digest: cannot answer a challenge of MD5 (MD5 and SHA-256 with qop auth or none are)"},
		{name: "sha-512 only", chal: []string{`Digest realm="edge", nonce="n1", algorithm=SHA-512-256, qop="auth"`},
			wantErr: "digest: cannot answer a challenge of SHA-512-256 (MD5 and SHA-256 with qop auth or none are)"},
		{name: "not digest", chal: []string{`Basic realm="edge"`},
			wantErr: "digest: cannot answer a challenge of unreadable (MD5 and SHA-256 with qop auth or none are)"},
		{name: "none", chal: []string{}, wantErr: "digest: no challenge to answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAuth(t, Config{Realm: "edge", Algorithms: tt.algs})
			chal := tt.chal
			if tt.algs != nil {
				chal = a.Challenge(testNow, testSrc, false)
			}
			v, err := Answer(chal, "INVITE", uri, user, pass)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(v, pass) {
				t.Fatalf("the answer holds the password: %s", v)
			}
			c, err := ParseCredentials(v)
			if err != nil {
				t.Fatalf("ParseCredentials(%s): %v", v, err)
			}
			if c.Algorithm != tt.wantAlg {
				t.Errorf("algorithm %v, want %v", c.Algorithm, tt.wantAlg)
			}
			if tt.algs == nil {
				return
			}
			res := a.Check(&c, Request{Method: "INVITE", URI: uri, Source: testSrc, Now: testNow}, HA1(c.Algorithm, user, "edge", pass))
			if res != Ok {
				t.Errorf("our server side says %v to %s", res, v)
			}
		})
	}
}
