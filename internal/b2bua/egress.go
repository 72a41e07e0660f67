package b2bua

// Egress authentication: a target that challenges sipward's INVITE (a
// customer's PBX behind a receives endpoint with a username and password)
// gets the same INVITE again, once, with credentials.

import (
	"fmt"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/digest"
	"github.com/sipward/sipward/internal/pipeline"
)

// withCredentials returns a copy of inv, the INVITE a 401 or 407 (res)
// answered, that answers the challenge with auth: CSeq seq, no Via (the
// client transaction adds one with a new branch), and the Authorization or
// Proxy-Authorization header RFC 3261 §22.2 asks for. unseal opens the
// sealed password. The error says why the challenge cannot be answered and
// never holds the password.
func withCredentials(inv *sip.Request, res *sip.Response, auth *pipeline.TargetAuth, unseal func([]byte) (string, error), seq uint32) (*sip.Request, error) {
	if unseal == nil {
		return nil, fmt.Errorf("no key to open its egress password")
	}
	pw, err := unseal(auth.PasswordSealed)
	if err != nil {
		return nil, fmt.Errorf("its egress password cannot be opened: %w", err)
	}
	chal, hdr := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		chal, hdr = "Proxy-Authenticate", "Proxy-Authorization"
	}
	var vals []string
	for _, h := range res.GetHeaders(chal) {
		vals = append(vals, h.Value())
	}
	v, err := digest.Answer(vals, string(sip.INVITE), inv.Recipient.String(), auth.Username, pw)
	if err != nil {
		return nil, err
	}
	req := inv.Clone()
	req.RemoveHeader("Via")
	req.RemoveHeader(hdr)
	if cs := req.CSeq(); cs != nil {
		cs.SeqNo = seq
	}
	req.AppendHeader(sip.NewHeader(hdr, v))
	return req, nil
}
