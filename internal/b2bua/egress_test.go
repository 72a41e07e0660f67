package b2bua

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/digest"
	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/siptest"
)

// TestWithCredentials: the answer to a target's challenge is the same INVITE
// with the next CSeq, no Via (a new branch comes with the new transaction)
// and the header that goes with the challenge; what cannot be answered is
// an error that names why and never the password.
func TestWithCredentials(t *testing.T) {
	inv := siptest.Req{Method: sip.INVITE, URI: "sip:442071239999@192.0.2.50:5080", From: "441234567890", CallID: "b-leg-1",
		Via: "127.0.0.1:5060"}.Msg(t)
	auth := &pipeline.TargetAuth{Username: "sipward-in", PasswordSealed: []byte("sealed")}
	open := func(b []byte) (string, error) {
		if string(b) != "sealed" {
			return "", errors.New("secret: message authentication failed")
		}
		return "pbx-secret", nil
	}
	challenge := func(status int, hdr string) *sip.Response {
		res := sip.NewResponseFromRequest(inv, status, "Auth", nil)
		res.AppendHeader(sip.NewHeader(hdr, `Digest realm="pbx", nonce="n0", algorithm=MD5, qop="auth"`))
		return res
	}
	for _, tt := range []struct {
		status             int
		challenge, answers string
	}{{401, "WWW-Authenticate", "Authorization"}, {407, "Proxy-Authenticate", "Proxy-Authorization"}} {
		req, err := withCredentials(inv, challenge(tt.status, tt.challenge), auth, open, 2)
		if err != nil {
			t.Fatalf("%d: %v", tt.status, err)
		}
		h := req.GetHeader(tt.answers)
		if h == nil || req.CSeq().SeqNo != 2 || req.Via() != nil || req.CallID().Value() != "b-leg-1" || inv.CSeq().SeqNo != 1 {
			t.Fatalf("%d: answered with\n%s", tt.status, req)
		}
		c, err := digest.ParseCredentials(h.Value())
		if err != nil || c.Username != "sipward-in" || c.Realm != "pbx" || c.URI != inv.Recipient.String() {
			t.Errorf("%d: credentials %+v, %v", tt.status, c, err)
		}
	}
	for _, tt := range []struct {
		name    string
		open    func([]byte) (string, error)
		auth    *pipeline.TargetAuth
		res     *sip.Response
		wantErr string
	}{
		{"no key", nil, auth, challenge(407, "Proxy-Authenticate"), "no key to open its egress password"},
		{"sealed with another key", open, &pipeline.TargetAuth{Username: "u", PasswordSealed: []byte("other")}, challenge(407, "Proxy-Authenticate"),
			"its egress password cannot be opened: secret: message authentication failed"},
		{"no challenge header", open, auth, sip.NewResponseFromRequest(inv, 407, "Auth", nil), "digest: no challenge to answer"},
	} {
		_, err := withCredentials(inv, tt.res, tt.auth, tt.open, 2)
		if err == nil || err.Error() != tt.wantErr || strings.Contains(err.Error(), "pbx-secret") {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}
