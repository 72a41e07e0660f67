package e2e

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// pbxAuth is what a challenging PBX checks: RFC 2617 MD5 with qop=auth,
// computed here independently of sipward's digest package.
type pbxAuth struct {
	realm, user, pass, nonce string
}

func (a *pbxAuth) valid(req *sip.Request) bool {
	h := req.GetHeader("Proxy-Authorization")
	if h == nil {
		return false
	}
	p := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(h.Value(), "Digest "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		p[k] = strings.Trim(v, `"`)
	}
	md := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	ha1 := md(a.user + ":" + a.realm + ":" + a.pass)
	ha2 := md("INVITE:" + p["uri"])
	want := md(ha1 + ":" + a.nonce + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	return p["username"] == a.user && p["realm"] == a.realm && p["nonce"] == a.nonce && p["qop"] == "auth" &&
		p["uri"] == req.Recipient.String() && p["response"] == want
}

func viaBranch(r *sip.Request) string {
	b, _ := r.Via().Params.Get("branch")
	return b
}

// challenge answers req with 407 and the PBX's challenge.
func (u *rawUAS) challenge(req *sip.Request, to *net.UDPAddr, auth *pbxAuth) {
	res := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
	res.To().Params.Add("tag", u.tag)
	res.AppendHeader(sip.NewHeader("Proxy-Authenticate",
		fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"`, auth.realm, auth.nonce)))
	u.conn.WriteToUDP([]byte(res.String()), to)
}

// TestEgressAuthentication: a customer's PBX behind a receives endpoint
// challenges sipward's INVITE; sipward answers once with the endpoint's
// stored credentials and the call goes through. With the wrong password
// the second challenge ends that attempt ("egress credentials refused by
// …" in the decision) and the next receives endpoint is tried. The
// password appears nowhere in the API's answers or the log.
func TestEgressAuthentication(t *testing.T) {
	const pass = "pbx-egress-secret-7"
	core := newRawUAS(t, "127.0.0.1", 200)
	pbx := newRawUAS(t, "127.0.0.13", 200)
	pbx.mu.Lock()
	pbx.auth = &pbxAuth{realm: "pbx.acme", user: "sipward-in", pass: pass, nonce: "5f1c0a9e"}
	pbx.mu.Unlock()
	fallback := newRawUAS(t, "127.0.0.14", 200)
	n := start(t, "", "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32")
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme", "dids": []map[string]any{{"number": "442071239999"}}}))
	ep := id(n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.13",
		"port": port(pbx.addr), "direction": "receives", "username": "sipward-in", "password": pass}))
	waitSnapshot(t, n)

	if st, r := placeCall(t, n, "127.0.0.1", "441234567890", "442071239999"); st != 200 {
		t.Fatalf("core to a DID behind a challenging PBX: %d %s", st, r)
	}
	invs := pbx.requests(sip.INVITE)
	if len(invs) != 2 || invs[0].GetHeader("Proxy-Authorization") != nil || invs[1].GetHeader("Proxy-Authorization") == nil {
		t.Fatalf("PBX got %d INVITEs, want 2: the first without credentials, the second with", len(invs))
	}
	if invs[0].CallID().Value() != invs[1].CallID().Value() || invs[1].CSeq().SeqNo != invs[0].CSeq().SeqNo+1 ||
		viaBranch(invs[0]) == viaBranch(invs[1]) {
		t.Errorf("the answer to the challenge is not the same INVITE with the next CSeq and a new branch:\n%s\n---\n%s", invs[0], invs[1])
	}
	n.waitIdle(t)

	// Wrong password: refused once more, then the next receives endpoint.
	n.mustAPI(t, 200, "PATCH", fmt.Sprintf("/ip-endpoints/%d", ep), map[string]any{"password": "not-what-the-pbx-has"})
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.14",
		"port": port(fallback.addr), "direction": "receives"})
	waitSnapshot(t, n)
	u := newUAC(t, "127.0.0.1", n.SIP)
	c := newCall("441234567890", "442071239999")
	u.send(u.invite(c))
	_, res := u.final("INVITE", 10*time.Second)
	u.ack(c, res)
	if res.StatusCode != 200 {
		t.Fatalf("wrong egress password, a second endpoint to try: %d %s, want 200 from it", res.StatusCode, res.Reason)
	}
	u.bye(c)
	if got := len(pbx.requests(sip.INVITE)); got != 4 {
		t.Errorf("PBX got %d INVITEs in all, want 4 (2 per call: one answer to a challenge, never more)", got)
	}
	if len(fallback.requests(sip.INVITE)) != 1 {
		t.Errorf("the next receives endpoint got %d INVITEs, want 1", len(fallback.requests(sip.INVITE)))
	}
	d := n.decision(t, c.callID)
	if why := fmt.Sprint(d["why"]); !strings.Contains(why, fmt.Sprintf("egress credentials refused by receives endpoint %d (127.0.0.13)", ep)) {
		t.Errorf("decision why = %q, want the refusal named", why)
	}
	n.waitIdle(t)

	_, got := n.api(t, "GET", fmt.Sprintf("/ip-endpoints/%d", ep), nil)
	_, decs := n.api(t, "GET", "/decisions", nil)
	for what, text := range map[string]string{"the endpoint": fmt.Sprint(got), "the decisions": fmt.Sprint(decs), "the log": n.Log()} {
		if strings.Contains(text, pass) || strings.Contains(text, "not-what-the-pbx-has") {
			t.Errorf("%s show an egress password", what)
		}
	}
}
