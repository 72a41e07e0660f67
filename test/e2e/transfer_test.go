package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Smart Extension: transfers (REFER) carried out by sipward, against the
// real binary — a raw core on 127.0.0.1 and a raw customer switch on
// 127.0.0.2 whose IP endpoint has smart_extension on (or off).

// sdpCore2 is the SDP the transfer target answers with: it differs from
// the first far party's (testSDP echoed) so the customer's re-INVITE shows
// whose media it now gets.
const sdpCore2 = "v=0\r\no=target 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 46000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// transferNode starts a node with a raw core that answers the transfer
// target 442079999999 with sdpCore2 and 442070000486 busy, and an account
// Acme; it returns the node, the core and the account's id.
func transferNode(t *testing.T) (*node, *rawUAS, int64) {
	t.Helper()
	core := newRawUAS(t, "127.0.0.1", 200, func(core *rawUAS) {
		core.byUser = map[string]uasAnswer{"442079999999": {200, sdpCore2}, "442070000486": {486, ""}}
	})
	n := start(t, "", "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32")
	return n, core, id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
}

// transferFixture: an account whose IP endpoint 127.0.0.2 has Smart
// Extension as given, a raw core, and one answered call from the endpoint;
// it returns the node, the core, the caller, its call and the far leg's
// Call-ID.
func transferFixture(t *testing.T, smart bool) (*node, *rawUAS, *uac, *call, string) {
	t.Helper()
	n, core, acc := transferNode(t)
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc),
		map[string]any{"address": "127.0.0.2", "channels": 1, "smart_extension": smart})
	waitSnapshot(t, n)
	u := newUAC(t, "127.0.0.2", n.SIP)
	c := newCall("441234567890", "442071234567")
	u.establish(c)
	return n, core, u, c, core.requests(sip.INVITE)[0].CallID().Value()
}

// inDialog sends a request of method in the UAC's dialog c with extra
// header lines (no body) and returns nothing: the answer is read by the
// test.
func (u *uac) inDialog(c *call, method sip.RequestMethod, extra ...string) {
	u.inDialogBody(c, method, "", extra...)
}

// inDialogBody is inDialog with an SDP body (none when "").
func (u *uac) inDialogBody(c *call, method sip.RequestMethod, sdp string, extra ...string) {
	c.cseq++
	u.cseq = uint32(c.cseq)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n", method, c.contact, u.local, branch())
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n",
		c.from, strings.Split(u.local, ":")[0], c.fromTag, c.to, u.to.String(), c.toTag, c.callID, c.cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\n", c.from, u.local)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if sdp != "" {
		fmt.Fprintf(&b, "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp)
	} else {
		b.WriteString("Content-Length: 0\r\n\r\n")
	}
	u.send(b.String())
}

// collect reads what sipward sends the UAC for d, answering its requests
// (200; with testSDP to an INVITE), and returns them in order with the
// responses that came.
func (u *uac) collect(d time.Duration) (reqs []*sip.Request, resps []*sip.Response) {
	u.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		_, m := u.recv(time.Until(deadline))
		switch m := m.(type) {
		case *sip.Request:
			reqs = append(reqs, m)
			if m.Method == sip.ACK {
				continue
			}
			res := sip.NewResponseFromRequest(m, 200, "OK", nil)
			if m.Method == sip.INVITE {
				sdp := u.sdp
				if sdp == "" {
					sdp = testSDP
				}
				res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
				res.SetBody([]byte(sdp))
			}
			u.send(res.String())
		case *sip.Response:
			resps = append(resps, m)
		}
	}
	return reqs, resps
}

// until is collect, stopping at the first request of method (or the
// timeout): the requests that came, in order.
func (u *uac) until(method sip.RequestMethod, timeout time.Duration) []*sip.Request {
	u.t.Helper()
	reqs, _ := u.untilAll(method, timeout)
	return reqs
}

// untilAll is until, also returning the responses that came.
func (u *uac) untilAll(method sip.RequestMethod, timeout time.Duration) (reqs []*sip.Request, resps []*sip.Response) {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		rq, rs := u.collect(100 * time.Millisecond)
		reqs, resps = append(reqs, rq...), append(resps, rs...)
		if len(reqs) > 0 && reqs[len(reqs)-1].Method == method {
			return reqs, resps
		}
	}
	if len(reqs) == 0 {
		u.t.Fatalf("nothing came within %s, want a %s", timeout, method)
	}
	return reqs, resps
}

// waitRequests waits until the core has received n requests of method in
// the dialog callID (any when "") and returns them.
func (u *rawUAS) waitRequests(t *testing.T, method sip.RequestMethod, callID string, n int) []*sip.Request {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out []*sip.Request
		for _, r := range u.requests(method) {
			if callID == "" || r.CallID().Value() == callID {
				out = append(out, r)
			}
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("the core got %d %s in %q, want %d", len(out), method, callID, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func methods(reqs []*sip.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, string(r.Method))
	}
	return out
}

// sipfrags returns the bodies of NOTIFYs, in order.
func sipfrags(t *testing.T, notifies []*sip.Request, event string) []string {
	t.Helper()
	var out []string
	for _, nf := range notifies {
		if ev := nf.GetHeader("Event"); ev == nil || !strings.HasPrefix(ev.Value(), event) {
			t.Errorf("NOTIFY Event %v, want %s", ev, event)
		}
		if ct := nf.ContentType(); ct == nil || !strings.HasPrefix(ct.Value(), "message/sipfrag") {
			t.Errorf("NOTIFY Content-Type %v, want message/sipfrag", ct)
		}
		out = append(out, strings.TrimSpace(string(nf.Body())))
	}
	return out
}

// TestBlindTransferFromTheCore: the core REFERs the customer's call to
// another number. sipward answers 202, NOTIFYs the core (Trying, then 200),
// calls the target through routing with the account's headers and
// Referred-By, re-INVITEs the customer once to the target's SDP, hangs up
// the old far leg; the call holds one channel, shows its new far party and
// the transfer is a decision. The customer's BYE then reaches the target.
func TestBlindTransferFromTheCore(t *testing.T) {
	n, core, u, c, legB := transferFixture(t, true)
	res := core.sendWith(legB, sip.REFER, "", "Refer-To: <sip:442079999999@127.0.0.1>", "Referred-By: <sip:agent7@core.example>")
	if res.StatusCode != 202 {
		t.Fatalf("REFER answered %d, want 202", res.StatusCode)
	}
	invites := core.waitRequests(t, sip.INVITE, "", 2)
	nw := invites[1]
	if nw.Recipient.User != "442079999999" || nw.GetHeader("Referred-By") == nil ||
		nw.GetHeader("Referred-By").Value() != "<sip:agent7@core.example>" || nw.GetHeader("X-Sipward-Account") == nil {
		t.Errorf("the target's INVITE:\n%s\nwant Request-URI user 442079999999, Referred-By and X-Sipward-Account", nw)
	}
	if nw.CallID().Value() == legB || nw.CallID().Value() == c.callID {
		t.Errorf("the new leg reuses a Call-ID: %s", nw.CallID().Value())
	}
	// The customer: one re-INVITE, with the target's media; nothing else.
	reqs := u.until(sip.ACK, 10*time.Second)
	more, _ := u.collect(500 * time.Millisecond)
	if got := methods(append(reqs, more...)); len(got) != 2 || got[0] != "INVITE" || got[1] != "ACK" {
		t.Fatalf("the customer got %v, want one re-INVITE and its ACK", got)
	}
	if body := string(reqs[0].Body()); !strings.Contains(body, "m=audio 46000") || reqs[0].CallID().Value() != c.callID {
		t.Errorf("re-INVITE in %s with SDP\n%s\nwant the customer's dialog and the target's media (port 46000)", reqs[0].CallID().Value(), body)
	}
	// The core: NOTIFY 100, NOTIFY 200 (subscription terminated), then BYE, all on the old leg.
	notifies := core.waitRequests(t, sip.NOTIFY, legB, 2)
	if got := sipfrags(t, notifies, "refer"); got[0] != "SIP/2.0 100 Trying" || got[len(got)-1] != "SIP/2.0 200 OK" {
		t.Errorf("NOTIFY sipfrags %q, want 100 Trying … 200 OK", got)
	}
	if st := notifies[len(notifies)-1].GetHeader("Subscription-State"); st == nil || !strings.HasPrefix(st.Value(), "terminated") {
		t.Errorf("final NOTIFY Subscription-State %v, want terminated", st)
	}
	core.waitRequests(t, sip.BYE, legB, 1)
	// The API: one call, its far party the target, one transfer; the decision.
	_, calls := n.api(t, "GET", "/calls", nil)
	items, _ := calls["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("calls %v, want 1", calls)
	}
	if call := items[0].(map[string]any); call["to"] != "442079999999" || call["transfers"] != float64(1) {
		t.Errorf("call %v, want to 442079999999 and transfers 1", call)
	}
	d := n.decisionWith(t, legB, 200)
	if d["method"] != "REFER" || d["stage"] != "transfer" || d["result"] != "accepted" {
		t.Errorf("decision %v, want REFER accepted by transfer", d)
	}
	// The customer hangs up: the target gets the BYE, the channel is freed.
	if st := u.bye(c); st != 200 {
		t.Fatalf("BYE: %d", st)
	}
	core.waitRequests(t, sip.BYE, nw.CallID().Value(), 1)
	n.waitIdle(t)
}

// TestAttendedTransferFromTheCore: a Refer-To with Replaces (RFC 3891)
// reaches the target as the new INVITE's Replaces header.
func TestAttendedTransferFromTheCore(t *testing.T) {
	n, core, u, c, legB := transferFixture(t, true)
	res := core.sendWith(legB, sip.REFER, "", "Refer-To: <sip:442079999999@127.0.0.1?Replaces=held-1%40core%3Bto-tag%3Dt1%3Bfrom-tag%3Df1>")
	if res.StatusCode != 202 {
		t.Fatalf("REFER answered %d, want 202", res.StatusCode)
	}
	nw := core.waitRequests(t, sip.INVITE, "", 2)[1]
	if h := nw.GetHeader("Replaces"); h == nil || h.Value() != "held-1@core;to-tag=t1;from-tag=f1" {
		t.Errorf("the target's INVITE Replaces %v, want held-1@core;to-tag=t1;from-tag=f1", h)
	}
	if reqs := u.until(sip.ACK, 10*time.Second); reqs[0].Method != sip.INVITE {
		t.Errorf("the customer got %v, want the re-INVITE", methods(reqs))
	}
	core.waitRequests(t, sip.BYE, legB, 1)
	if st := u.bye(c); st != 200 {
		t.Fatalf("BYE: %d", st)
	}
	n.waitIdle(t)
}

// TestTransferToAFailingTarget: the target is busy; the final NOTIFY says
// 486, the customer sees nothing, the old far leg is not hung up and the
// call goes on.
func TestTransferToAFailingTarget(t *testing.T) {
	n, core, u, c, legB := transferFixture(t, true)
	if res := core.sendWith(legB, sip.REFER, "", "Refer-To: <sip:442070000486@127.0.0.1>"); res.StatusCode != 202 {
		t.Fatalf("REFER answered %d, want 202", res.StatusCode)
	}
	notifies := core.waitRequests(t, sip.NOTIFY, legB, 2)
	if got := sipfrags(t, notifies, "refer"); !strings.HasPrefix(got[len(got)-1], "SIP/2.0 486") {
		t.Errorf("final sipfrag %q, want 486", got[len(got)-1])
	}
	if reqs, _ := u.collect(500 * time.Millisecond); len(reqs) != 0 {
		t.Errorf("the customer got %v, want nothing", methods(reqs))
	}
	if byes := core.requests(sip.BYE); len(byes) != 0 {
		t.Errorf("the old far leg got a BYE")
	}
	d := n.decisionWith(t, legB, 486)
	if d["result"] != "rejected" || d["stage"] != "transfer" {
		t.Errorf("decision %v, want a rejected transfer", d)
	}
	// The call goes on: the core can still talk to the customer.
	done := make(chan *sip.Response, 1)
	go func() { done <- core.send(legB, sip.INVITE, testSDP) }()
	if reqs := u.until(sip.ACK, 10*time.Second); reqs[0].Method != sip.INVITE {
		t.Errorf("the customer got %v after the failed transfer, want the core's re-INVITE", methods(reqs))
	}
	if res := <-done; res.StatusCode != 200 {
		t.Errorf("re-INVITE after the failed transfer: %d", res.StatusCode)
	}
	if st := u.bye(c); st != 200 {
		t.Fatalf("BYE: %d", st)
	}
	n.waitIdle(t)
}

// TestReferRelayedWhenOff: without Smart Extension the REFER reaches the
// customer whole (Refer-To, Referred-By), and its NOTIFY reaches the core
// whole (Event, Subscription-State, the sipfrag).
func TestReferRelayedWhenOff(t *testing.T) {
	n, core, u, c, legB := transferFixture(t, false)
	done := make(chan *sip.Response, 1)
	go func() {
		done <- core.sendWith(legB, sip.REFER, "", "Refer-To: <sip:442079999999@core.example>", "Referred-By: <sip:agent7@core.example>")
	}()
	reqs := u.until(sip.REFER, 10*time.Second)
	if len(reqs) != 1 || reqs[0].Method != sip.REFER {
		t.Fatalf("the customer got %v, want the REFER", methods(reqs))
	}
	ref := reqs[0]
	if rt := ref.GetHeader("Refer-To"); rt == nil || rt.Value() != "<sip:442079999999@core.example>" {
		t.Errorf("relayed Refer-To %v", rt)
	}
	if rb := ref.GetHeader("Referred-By"); rb == nil || rb.Value() != "<sip:agent7@core.example>" {
		t.Errorf("relayed Referred-By %v", rb)
	}
	if res := <-done; res.StatusCode != 200 { // collect answered it 200
		t.Errorf("the core got %d for its REFER, want the customer's 200", res.StatusCode)
	}
	u.send(notifyFrom(u, c, "SIP/2.0 200 OK"))
	nf := core.waitRequests(t, sip.NOTIFY, legB, 1)[0]
	if got := sipfrags(t, []*sip.Request{nf}, "refer"); got[0] != "SIP/2.0 200 OK" {
		t.Errorf("relayed sipfrag %q", got[0])
	}
	if st := nf.GetHeader("Subscription-State"); st == nil || st.Value() != "terminated;reason=noresource" {
		t.Errorf("relayed Subscription-State %v", st)
	}
	if _, res := u.final("NOTIFY", 5*time.Second); res.StatusCode != 200 {
		t.Errorf("the customer's NOTIFY answered %d", res.StatusCode)
	}
	if st := u.bye(c); st != 200 {
		t.Fatalf("BYE: %d", st)
	}
	n.waitIdle(t)
}

// notifyFrom builds the customer's NOTIFY of a REFER's outcome in c.
func notifyFrom(u *uac, c *call, frag string) string {
	c.cseq++
	u.cseq = uint32(c.cseq)
	body := frag + "\r\n"
	return fmt.Sprintf("NOTIFY %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d NOTIFY\r\nContact: <sip:%s@%s>\r\nEvent: refer\r\nSubscription-State: terminated;reason=noresource\r\nContent-Type: message/sipfrag;version=2.0\r\nContent-Length: %d\r\n\r\n%s",
		c.contact, u.local, branch(), c.from, strings.Split(u.local, ":")[0], c.fromTag, c.to, u.to.String(), c.toTag, c.callID, c.cseq,
		c.from, u.local, len(body), body)
}

// TestTransferByTheCustomersPhone: the customer's own device REFERs its
// call (blind). sipward answers 202, NOTIFYs it (Trying, 200), calls the
// target, re-INVITEs the far party to it and hangs up the device's leg;
// the far party's BYE later reaches the target.
func TestTransferByTheCustomersPhone(t *testing.T) {
	n, core, u, c, legB := transferFixture(t, true)
	u.inDialog(c, sip.REFER, "Refer-To: <sip:442079999999@"+n.SIP+">")
	reqs, resps := u.untilAll(sip.BYE, 10*time.Second)
	if len(resps) == 0 || resps[0].StatusCode != 202 {
		t.Fatalf("REFER answered %v, want 202", resps)
	}
	var notifies []*sip.Request
	var bye *sip.Request
	for _, r := range reqs {
		switch r.Method {
		case sip.NOTIFY:
			notifies = append(notifies, r)
		case sip.BYE:
			bye = r
		case sip.INVITE:
			t.Errorf("the transferring phone got a re-INVITE")
		}
	}
	if got := sipfrags(t, notifies, "refer"); len(got) < 2 || got[0] != "SIP/2.0 100 Trying" || got[len(got)-1] != "SIP/2.0 200 OK" {
		t.Errorf("sipfrags %q, want 100 Trying … 200 OK", got)
	}
	if bye == nil {
		t.Fatalf("the phone's leg was not hung up: got %v", methods(reqs))
	}
	nw := core.waitRequests(t, sip.INVITE, "", 2)[1]
	if nw.Recipient.User != "442079999999" || nw.GetHeader("Referred-By") == nil {
		t.Errorf("the target's INVITE:\n%s", nw)
	}
	// The far party was re-INVITEd to the target's SDP.
	re := core.waitRequests(t, sip.INVITE, legB, 2)[1]
	if !strings.Contains(string(re.Body()), "m=audio 46000") {
		t.Errorf("the far party's re-INVITE SDP\n%s\nwant the target's", re.Body())
	}
	// The far party hangs up: the target gets the BYE.
	if res := core.send(legB, sip.BYE, ""); res.StatusCode != 200 {
		t.Fatalf("BYE: %d", res.StatusCode)
	}
	core.waitRequests(t, sip.BYE, nw.CallID().Value(), 1)
	n.waitIdle(t)
}

// TestTransferByACalledPhone: the core calls a DID of SIP user 2001 (Smart
// Extension on), whose phone then transfers the call (blind). The new leg
// is routed as the SIP user's own call (upstream, X-Sipward-User), the
// core's leg is re-INVITEd to the target and the phone's leg hung up; the
// core's BYE then reaches the target.
func TestTransferByACalledPhone(t *testing.T) {
	n, core, acc := transferNode(t)
	user := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "2001", "smart_extension": true})
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/dids", acc), map[string]any{"number": "442071230001", "sip_user_id": id(user)})
	waitSnapshot(t, n)
	phone := newUAC(t, "127.0.0.6", n.SIP)
	cseq := 0
	if res := phone.register(t, "2001", user["password"].(string), "xfer-reg", &cseq, []string{"<sip:2001@" + phone.local + ">"}, "300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	coreSide := newUAC(t, "127.0.0.1", n.SIP)
	cc := newCall("441234567890", "442071230001")
	coreSide.send(coreSide.invite(cc))
	_, m := phone.recv(5 * time.Second)
	pinv, ok := m.(*sip.Request)
	if !ok || pinv.Method != sip.INVITE {
		t.Fatalf("the phone got %v, want the INVITE", m)
	}
	ans := sip.NewSDPResponseFromRequest(pinv, []byte(testSDP))
	ans.To().Params.Add("tag", "phone1")
	ans.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "2001", Host: "127.0.0.6", Port: port(phone.local)}})
	phone.send(ans.String())
	_, res := coreSide.final("INVITE", 5*time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("call to the DID: %d", res.StatusCode)
	}
	coreSide.ack(cc, res)
	// The phone's REFER, in its dialog with sipward (the UAS side of it).
	fromTag, _ := pinv.From().Params.Get("tag")
	phone.cseq = 1
	phone.send(fmt.Sprintf("REFER %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <%s>;tag=phone1\r\nTo: <%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: 1 REFER\r\nContact: <sip:2001@%s>\r\n"+
		"Refer-To: <sip:442079999999@%s>\r\nContent-Length: 0\r\n\r\n",
		pinv.Contact().Address.String(), phone.local, branch(), pinv.To().Address.String(), pinv.From().Address.String(), fromTag,
		pinv.CallID().Value(), phone.local, n.SIP))
	done := make(chan []*sip.Request, 1)
	go func() { done <- coreSide.until(sip.ACK, 10*time.Second) }()
	reqs, resps := phone.untilAll(sip.BYE, 10*time.Second)
	if len(resps) == 0 || resps[0].StatusCode != 202 {
		t.Fatalf("REFER answered %v, want 202", resps)
	}
	if got := methods(reqs); len(got) < 3 || got[len(got)-1] != "BYE" {
		t.Errorf("the phone got %v, want NOTIFYs then BYE", got)
	}
	nw := core.waitRequests(t, sip.INVITE, "", 1)[0]
	if nw.Recipient.User != "442079999999" || nw.GetHeader("X-Sipward-User") == nil || nw.GetHeader("X-Sipward-User").Value() != "2001" {
		t.Errorf("the target's INVITE:\n%s\nwant 442079999999 as SIP user 2001's call", nw)
	}
	if got := <-done; len(got) < 1 || got[0].Method != sip.INVITE || !strings.Contains(string(got[0].Body()), "m=audio 46000") {
		t.Errorf("the core's leg got %v, want a re-INVITE to the target's media", methods(got))
	}
	if st := coreSide.bye(cc); st != 200 {
		t.Fatalf("BYE: %d", st)
	}
	core.waitRequests(t, sip.BYE, nw.CallID().Value(), 1)
	n.waitIdle(t)
}

// TestAttendedTransferByTheCustomersPhone: the customer's device holds two
// calls and REFERs the first with Replaces naming the second (its own
// dialog with sipward); the target's INVITE carries Replaces naming that
// call's far leg, as the core knows it.
func TestAttendedTransferByTheCustomersPhone(t *testing.T) {
	n, core, acc := transferNode(t)
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc),
		map[string]any{"address": "127.0.0.2", "channels": 2, "smart_extension": true})
	waitSnapshot(t, n)
	u := newUAC(t, "127.0.0.2", n.SIP)
	c1, c2 := newCall("441234567890", "442071234567"), newCall("441234567890", "442072222222")
	u.establish(c1)
	u.establish(c2)
	inv2 := core.requests(sip.INVITE)[1]
	ourTag, _ := inv2.From().Params.Get("tag")
	rep := fmt.Sprintf("%s%%3Bto-tag%%3D%s%%3Bfrom-tag%%3D%s", strings.ReplaceAll(c2.callID, "@", "%40"), c2.toTag, c2.fromTag)
	u.inDialog(c1, sip.REFER, "Refer-To: <sip:442079999999@"+n.SIP+"?Replaces="+rep+">")
	if got := u.until(sip.BYE, 10*time.Second); got[len(got)-1].CallID().Value() != c1.callID {
		t.Errorf("the BYE came in %s, want the transferred call %s", got[len(got)-1].CallID().Value(), c1.callID)
	}
	nw := core.waitRequests(t, sip.INVITE, "", 3)[2]
	want := fmt.Sprintf("%s;to-tag=%s;from-tag=%s", inv2.CallID().Value(), core.tag, ourTag)
	if h := nw.GetHeader("Replaces"); h == nil || h.Value() != want {
		t.Errorf("the target's INVITE Replaces %v, want %s (the second call's far leg)", h, want)
	}
	if st := u.bye(c2); st != 200 {
		t.Fatalf("BYE of the second call: %d", st)
	}
	legB1 := core.requests(sip.INVITE)[0].CallID().Value()
	if res := core.send(legB1, sip.BYE, ""); res.StatusCode != 200 {
		t.Fatalf("BYE: %d", res.StatusCode)
	}
	n.waitIdle(t)
}
