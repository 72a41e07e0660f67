package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Early dialogs against the real binary: reliable provisionals (RFC 3262)
// with PRACK end to end, and UPDATE (RFC 3311) before the answer. The core
// (127.0.0.1) answers 183 first and 200 only once a request of the early
// dialog reached it.

// earlyFixture: a node, a core in early mode, and the customer switch
// 127.0.0.2 whose endpoint restricts G729.
func earlyFixture(t *testing.T, reliable bool) (*node, *rawUAS, *uac) {
	t.Helper()
	core := newRawUAS(t, "127.0.0.1", 200, func(core *rawUAS) { core.early = &earlyMode{reliable: reliable} })
	n := start(t, "", "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32")
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc),
		map[string]any{"address": "127.0.0.2", "channels": 1, "restricted_codecs": []string{"G729"}})
	waitSnapshot(t, n)
	return n, core, newUAC(t, "127.0.0.2", n.SIP)
}

// provisional waits for the 18x to the UAC's INVITE and takes its early
// dialog (To tag, Contact) into c.
func (u *uac) provisional(c *call) *sip.Response {
	u.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, m := u.recv(time.Until(deadline))
		if res, ok := m.(*sip.Response); ok && res.StatusCode > 100 && res.StatusCode < 200 {
			c.toTag, _ = res.To().Params.Get("tag")
			if ct := res.Contact(); ct != nil {
				c.contact = ct.Address.String()
			}
			return res
		}
	}
	u.t.Fatal("no provisional answer with a dialog")
	return nil
}

// TestReliableProvisionalEndToEnd: a caller that supports (or requires)
// 100rel gets the core's reliable 183 reliable (Require: 100rel, RSeq),
// its PRACK reaches the core in the early dialog with RAck naming the
// core's INVITE, the PRACK's 200 comes back, then the call is answered.
func TestReliableProvisionalEndToEnd(t *testing.T) {
	for _, tag := range []string{"Supported", "Require"} {
		t.Run(tag+": 100rel", func(t *testing.T) {
			n, core, u := earlyFixture(t, true)
			c := newCall("441234567890", "442071234567")
			u.send(u.invite(c, tag+": 100rel"))
			p := u.provisional(c)
			if p.StatusCode != 183 || !hasRequire(p, "100rel") || p.GetHeader("RSeq") == nil || p.GetHeader("RSeq").Value() != "1" {
				t.Fatalf("the caller got\n%s\nwant 183 with Require: 100rel and RSeq: 1", p)
			}
			inv := core.requests(sip.INVITE)[0]
			if !hasTagIn(inv, "Supported", "100rel") || (tag == "Require") != hasRequire(inv, "100rel") {
				t.Errorf("the core's INVITE Supported %v, Require %v; want 100rel offered (required only when the caller requires it)",
					inv.GetHeader("Supported"), inv.GetHeader("Require"))
			}
			u.inDialog(c, sip.PRACK, fmt.Sprintf("RAck: 1 %d INVITE", c.cseq))
			_, pr := u.final("PRACK", 5*time.Second)
			if pr.StatusCode != 200 {
				t.Fatalf("PRACK answered %d", pr.StatusCode)
			}
			prack := core.waitRequests(t, sip.PRACK, inv.CallID().Value(), 1)[0]
			if ra := prack.GetHeader("RAck"); ra == nil || ra.Value() != fmt.Sprintf("1 %d INVITE", inv.CSeq().SeqNo) {
				t.Errorf("the core's PRACK RAck %v, want 1 %d INVITE", ra, inv.CSeq().SeqNo)
			}
			if tt, _ := prack.To().Params.Get("tag"); tt != core.tag {
				t.Errorf("the core's PRACK To tag %q, want its 183's %q", tt, core.tag)
			}
			u.answeredAfterEarly(c)
			n.waitIdle(t)
		})
	}
}

// answeredAfterEarly waits for the 200 to the UAC's INVITE (CSeq 1) after
// one request of its early dialog (CSeq 2), ACKs it and hangs up.
func (u *uac) answeredAfterEarly(c *call) {
	u.t.Helper()
	u.cseq = 1
	_, res := u.final("INVITE", 5*time.Second)
	if res.StatusCode != 200 {
		u.t.Fatalf("INVITE answered %d", res.StatusCode)
	}
	c.cseq = 1 // the ACK takes the INVITE's number
	u.ack(c, res)
	c.cseq = 2
	if st := u.bye(c); st != 200 {
		u.t.Fatalf("BYE: %d", st)
	}
}

func hasTagIn(m sip.Message, name, tag string) bool {
	for _, h := range m.GetHeaders(name) {
		if strings.Contains(h.Value(), tag) {
			return true
		}
	}
	return false
}

// TestUpdateInEarlyDialog: the caller's UPDATE before the answer reaches the
// core in its early dialog, its SDP filtered for the caller's restricted
// codecs as an INVITE's is; the core's 200 comes back; then the call is
// answered.
func TestUpdateInEarlyDialog(t *testing.T) {
	n, core, u := earlyFixture(t, false)
	c := newCall("441234567890", "442071234567")
	u.send(u.invite(c))
	if p := u.provisional(c); p.StatusCode != 183 || hasRequire(p, "100rel") {
		t.Fatalf("the caller got\n%s\nwant an unreliable 183", p)
	}
	u.inDialogBody(c, sip.UPDATE, testSDP)
	_, up := u.final("UPDATE", 5*time.Second)
	if up.StatusCode != 200 || !strings.Contains(string(up.Body()), "m=audio") {
		t.Fatalf("UPDATE answered %d with\n%s\nwant 200 with SDP", up.StatusCode, up.Body())
	}
	inv := core.requests(sip.INVITE)[0]
	got := core.waitRequests(t, sip.UPDATE, inv.CallID().Value(), 1)[0]
	if body := string(got.Body()); !strings.Contains(body, "m=audio") || strings.Contains(body, "G729") {
		t.Errorf("the core's UPDATE SDP\n%s\nwant the offer without G729", body)
	}
	u.answeredAfterEarly(c)
	n.waitIdle(t)
}
