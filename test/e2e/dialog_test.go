package e2e

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// rawUAS is a UDP peer that answers INVITEs 200 and can send in-dialog
// requests of its own (BYE, re-INVITE), as a core or a customer switch does.
type rawUAS struct {
	t      *testing.T
	conn   *net.UDPConn
	addr   string
	status int // answer to initial INVITEs (200 default; 0 = never answer)
	mu     sync.Mutex
	got    []*sip.Request          // every request received
	dlg    map[string]*sip.Request // initial INVITEs by Call-ID
	tag    string
	resps  chan *sip.Response
	cseq   int
	// auth, when set, makes it a PBX that challenges initial INVITEs (407)
	// and answers only those whose credentials are right.
	auth *pbxAuth
	// sdp, when set, answers initial INVITEs (else their offer is echoed).
	sdp []byte
	// byUser, when set, answers initial INVITEs to these Request-URI users
	// with their status and SDP instead.
	byUser map[string]uasAnswer
	// headers200 are added to its 200s to initial INVITEs; inDialog, when
	// set, answers requests inside a dialog of these methods with their
	// status (else 200).
	headers200 []string
	inDialog   map[sip.RequestMethod]int
	// early, when set, answers initial INVITEs 183 with SDP first (reliable:
	// Require: 100rel, RSeq: 1) and the INVITE 200 only once a request
	// inside the early dialog (PRACK, UPDATE) came and was answered 200.
	early   *earlyMode
	pending map[string]*net.UDPAddr // early INVITEs by Call-ID, waiting for their 200
}

type earlyMode struct{ reliable bool }

// uasAnswer is how a rawUAS answers an initial INVITE.
type uasAnswer struct {
	status int
	sdp    string
}

// newRawUAS starts a rawUAS; setup, when given, configures it before it
// reads its first message (its fields are not to be written after).
func newRawUAS(t *testing.T, ip string, status int, setup ...func(*rawUAS)) *rawUAS {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUAS{t: t, conn: conn, addr: conn.LocalAddr().String(), status: status, dlg: map[string]*sip.Request{},
		tag: "uas" + branch()[7:], resps: make(chan *sip.Response, 16), cseq: 100}
	for _, f := range setup {
		f(u)
	}
	go u.loop()
	t.Cleanup(func() { conn.Close() })
	return u
}

func (u *rawUAS) loop() {
	buf := make([]byte, 65535)
	for {
		n, from, err := u.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		if res, ok := m.(*sip.Response); ok {
			u.resps <- res
			continue
		}
		req := m.(*sip.Request)
		u.mu.Lock()
		u.got = append(u.got, req)
		initial := req.Method == sip.INVITE && !req.To().Params.Has("tag")
		if initial {
			u.dlg[req.CallID().Value()] = req
		}
		st, auth, own := u.status, u.auth, u.sdp
		if a, ok := u.byUser[req.Recipient.User]; ok && initial {
			st, own = a.status, []byte(a.sdp)
		}
		u.mu.Unlock()
		u.mu.Lock()
		early, waiting := u.early, u.pending[req.CallID().Value()]
		u.mu.Unlock()
		switch {
		case req.Method == sip.ACK:
		case initial && early != nil:
			u.provisional(req, from, early.reliable)
		case waiting != nil && !initial && req.Method != sip.CANCEL:
			u.reply(req, from, 200, req.Body())
			u.mu.Lock()
			delete(u.pending, req.CallID().Value())
			inv := u.dlg[req.CallID().Value()]
			u.mu.Unlock()
			u.reply(inv, waiting, 200, inv.Body())
		case initial && auth != nil && !auth.valid(req):
			u.challenge(req, from, auth)
		case initial && st == 0:
		case initial && st != 200:
			u.reply(req, from, st, nil)
		case initial && own != nil:
			u.reply(req, from, 200, own)
		case initial:
			u.reply(req, from, 200, req.Body())
		default:
			u.mu.Lock()
			st, ok := u.inDialog[req.Method]
			u.mu.Unlock()
			if !ok {
				st = 200
			}
			u.reply(req, from, st, req.Body())
		}
	}
}

func (u *rawUAS) reply(req *sip.Request, to *net.UDPAddr, status int, sdp []byte) {
	res := sip.NewResponseFromRequest(req, status, "OK", nil)
	res.To().Params.Add("tag", u.tag)
	if status == 200 && req.Method == sip.INVITE && !req.To().Params.Has("tag") {
		u.mu.Lock()
		for _, h := range u.headers200 {
			name, v, _ := strings.Cut(h, ": ")
			res.AppendHeader(sip.NewHeader(name, v))
		}
		u.mu.Unlock()
	}
	if status == 200 && req.Method == sip.INVITE {
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "peer", Host: strings.Split(u.addr, ":")[0], Port: port(u.addr)}})
		if len(sdp) == 0 {
			sdp = []byte(testSDP)
		}
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody(sdp)
	}
	if status == 200 && req.Method == sip.UPDATE && len(sdp) > 0 { // an offer in UPDATE: its answer (echoed)
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "peer", Host: strings.Split(u.addr, ":")[0], Port: port(u.addr)}})
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody(sdp)
	}
	u.conn.WriteToUDP([]byte(res.String()), to)
}

// provisional answers req 183 with its SDP echoed (reliable: Require:
// 100rel, RSeq: 1) and keeps it waiting for a request in its early dialog.
func (u *rawUAS) provisional(req *sip.Request, to *net.UDPAddr, reliable bool) {
	res := sip.NewResponseFromRequest(req, 183, "Session Progress", nil)
	res.To().Params.Add("tag", u.tag)
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "peer", Host: strings.Split(u.addr, ":")[0], Port: port(u.addr)}})
	if reliable {
		res.AppendHeader(sip.NewHeader("Require", "100rel"))
		res.AppendHeader(sip.NewHeader("RSeq", "1"))
	}
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.SetBody(req.Body())
	u.mu.Lock()
	if u.pending == nil {
		u.pending = map[string]*net.UDPAddr{}
	}
	u.pending[req.CallID().Value()] = to
	u.mu.Unlock()
	u.conn.WriteToUDP([]byte(res.String()), to)
}

func (u *rawUAS) requests(method sip.RequestMethod) []*sip.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*sip.Request
	for _, r := range u.got {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// send sends an in-dialog request of the dialog opened by the INVITE with
// callID (we are its UAS) and returns the final answer.
func (u *rawUAS) send(callID string, method sip.RequestMethod, body string) *sip.Response {
	u.t.Helper()
	return u.sendWith(callID, method, body)
}

// sendWith is send with extra header lines.
func (u *rawUAS) sendWith(callID string, method sip.RequestMethod, body string, extra ...string) *sip.Response {
	u.t.Helper()
	u.mu.Lock()
	inv := u.dlg[callID]
	u.cseq++
	cseq := u.cseq
	u.mu.Unlock()
	if inv == nil {
		u.t.Fatalf("no dialog %s", callID)
	}
	fromTag, _ := inv.From().Params.Get("tag")
	target := inv.Contact().Address
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\nMax-Forwards: 70\r\n", method, target.String(), u.addr, branch())
	fmt.Fprintf(&b, "From: <%s>;tag=%s\r\nTo: <%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n",
		inv.To().Address.String(), u.tag, inv.From().Address.String(), fromTag, callID, cseq, method)
	if method == sip.INVITE {
		fmt.Fprintf(&b, "Contact: <sip:peer@%s>\r\n", u.addr)
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	} else {
		b.WriteString("Content-Length: 0\r\n\r\n")
	}
	dst, _ := net.ResolveUDPAddr("udp", inv.Source())
	u.conn.WriteToUDP([]byte(b.String()), dst)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case res := <-u.resps:
			if res.CSeq().SeqNo == uint32(cseq) && res.StatusCode >= 200 {
				if method == sip.INVITE {
					ack := fmt.Sprintf("ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\nMax-Forwards: 70\r\nFrom: <%s>;tag=%s\r\nTo: <%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d ACK\r\nContent-Length: 0\r\n\r\n",
						target.String(), u.addr, branch(), inv.To().Address.String(), u.tag, inv.From().Address.String(), fromTag, callID, cseq)
					u.conn.WriteToUDP([]byte(ack), dst)
				}
				return res
			}
		case <-deadline:
			u.t.Fatalf("no answer to our %s", method)
			return nil
		}
	}
}

// dialogFixture: an account with an IP endpoint at 127.0.0.2 and a raw core.
func dialogFixture(t *testing.T, args ...string) (*node, *rawUAS) {
	t.Helper()
	core := newRawUAS(t, "127.0.0.1", 200)
	n := start(t, "", append([]string{"--upstream", "sip:" + core.addr, "--core-addr", "127.0.0.1/32"}, args...)...)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "channels": 1})
	waitSnapshot(t, n)
	return n, core
}

// TestByeFromTheCalledSide: the core hangs up; the caller gets the BYE and
// the channel is freed.
func TestByeFromTheCalledSide(t *testing.T) {
	n, core := dialogFixture(t)
	u := newUAC(t, "127.0.0.2", n.SIP)
	c := newCall("441234567890", "442071234567")
	u.send(u.invite(c))
	_, res := u.final("INVITE", 5*time.Second)
	u.ack(c, res)
	if res.StatusCode != 200 {
		t.Fatalf("call: %d", res.StatusCode)
	}
	legB := core.requests(sip.INVITE)[0].CallID().Value()
	done := make(chan *sip.Response, 1)
	go func() { done <- core.send(legB, sip.BYE, "") }()
	// The caller receives a BYE inside its dialog and answers it.
	_, m := u.recv(5 * time.Second)
	bye, ok := m.(*sip.Request)
	if !ok || bye.Method != sip.BYE || bye.CallID().Value() != c.callID {
		t.Fatalf("caller got %v, want a BYE for %s", m, c.callID)
	}
	if tag, _ := bye.To().Params.Get("tag"); tag != c.fromTag {
		t.Errorf("BYE To tag %q, want the caller's From tag %q", tag, c.fromTag)
	}
	// Its From is the INVITE's To (kept by the call after the INVITE itself
	// was let go at the ACK).
	if got := bye.From().Address.User; got != c.to {
		t.Errorf("BYE From user %q, want the INVITE's To user %q", got, c.to)
	}
	u.answer(bye, 200)
	if r := <-done; r.StatusCode != 200 {
		t.Errorf("core's BYE answered %d", r.StatusCode)
	}
	// The BYE was passed to the other leg, not answered by the edge itself
	// (counted when the edge is done with it: just after the relay).
	const relayed = `sipward_edge_requests_total{answer="relayed",method="BYE"}`
	for deadline := time.Now().Add(2 * time.Second); n.metricOr(relayed, 0) != 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := n.metric(t, relayed); got != 1 {
		t.Errorf("%s = %v, want 1", relayed, got)
	}
	n.waitIdle(t)
	// The single channel is free again.
	if st, _ := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567"); st != 200 {
		t.Errorf("next call: %d", st)
	}
}

// TestReinviteIsRelayed: a re-INVITE from the caller reaches the core with
// its SDP and the core's answer comes back; the core gets our ACK.
func TestReinviteIsRelayed(t *testing.T) {
	n, core := dialogFixture(t)
	u := newUAC(t, "127.0.0.2", n.SIP)
	c := newCall("441234567890", "442071234567")
	u.send(u.invite(c))
	_, res := u.final("INVITE", 5*time.Second)
	u.ack(c, res)
	c.toTag, _ = res.To().Params.Get("tag")
	// Re-INVITE inside the dialog, with a new media port (hold/resume, codec change).
	held := strings.ReplaceAll(testSDP, "40000", "40100")
	c.cseq++
	u.cseq = uint32(c.cseq)
	u.send(fmt.Sprintf("INVITE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\nFrom: <sip:%s@127.0.0.2>;tag=%s\r\nTo: <sip:%s@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d INVITE\r\nContact: <sip:x@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		c.contact, u.local, branch(), c.from, c.fromTag, c.to, n.SIP, c.toTag, c.callID, c.cseq, u.local, len(held), held))
	_, re := u.final("INVITE", 5*time.Second)
	u.ack(c, re)
	if re.StatusCode != 200 || !strings.Contains(string(re.Body()), "40100") {
		t.Fatalf("re-INVITE: %d with body %q", re.StatusCode, re.Body())
	}
	invs := core.requests(sip.INVITE)
	if len(invs) != 2 || !strings.Contains(string(invs[1].Body()), "40100") {
		t.Fatalf("core got %d INVITEs; the re-INVITE must carry the new SDP", len(invs))
	}
	if tag, _ := invs[1].To().Params.Get("tag"); tag != core.tag {
		t.Errorf("re-INVITE on leg B has To tag %q, want the core's %q", tag, core.tag)
	}
	waitFor(t, "the core to get our ACK for the re-INVITE", func() bool { return len(core.requests(sip.ACK)) >= 2 })
	u.bye(c)
	n.waitIdle(t)
}

// TestUpstreamFailover: the first upstream answers 503, the second takes the call.
func TestUpstreamFailover(t *testing.T) {
	bad := newRawUAS(t, "127.0.0.1", 503)
	good := newRawUAS(t, "127.0.0.1", 200)
	n := start(t, "", "--upstream", "sip:"+bad.addr, "--upstream", "sip:"+good.addr)
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.2", "channels": 1})
	waitSnapshot(t, n)
	if st, r := placeCall(t, n, "127.0.0.2", "441234567890", "442071234567"); st != 200 {
		t.Fatalf("call with the first upstream down: %d %s", st, r)
	}
	if len(bad.requests(sip.INVITE)) != 1 || len(good.requests(sip.INVITE)) != 1 {
		t.Errorf("upstreams got %d and %d INVITEs, want 1 and 1", len(bad.requests(sip.INVITE)), len(good.requests(sip.INVITE)))
	}
	n.waitIdle(t)
}

// TestCoreToReceivesEndpoint: a call from the core to a DID that no SIP user
// holds goes to the account's receives endpoints in order.
func TestCoreToReceivesEndpoint(t *testing.T) {
	core := newRawUAS(t, "127.0.0.1", 200)
	pbxDown := newRawUAS(t, "127.0.0.11", 503)
	pbx := newRawUAS(t, "127.0.0.12", 200)
	n := start(t, "", "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32")
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme", "dids": []map[string]any{{"number": "442071239999"}}}))
	for _, p := range []*rawUAS{pbxDown, pbx} {
		host, _, _ := net.SplitHostPort(p.addr)
		n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": host, "port": port(p.addr), "direction": "receives"})
	}
	waitSnapshot(t, n)
	if st, r := placeCall(t, n, "127.0.0.1", "441234567890", "442071239999"); st != 200 {
		t.Fatalf("core to DID: %d %s", st, r)
	}
	if len(pbxDown.requests(sip.INVITE)) != 1 || len(pbx.requests(sip.INVITE)) != 1 {
		t.Fatalf("receives endpoints got %d and %d INVITEs, want 1 and 1 (in order, failover)", len(pbxDown.requests(sip.INVITE)), len(pbx.requests(sip.INVITE)))
	}
	if got := pbx.requests(sip.INVITE)[0].Recipient.User; got != "442071239999" {
		t.Errorf("PBX got Request-URI user %q", got)
	}
	if st, _ := placeCall(t, n, "127.0.0.1", "441234567890", "449999999999"); st != 404 {
		t.Errorf("core to an unknown DID: %d, want 404", st)
	}
	n.waitIdle(t)
}

// TestKeepaliveTearsDownDeadCalls: when the called side stops answering
// in-dialog OPTIONS, both legs are hung up and the channel is freed.
func TestKeepaliveTearsDownDeadCalls(t *testing.T) {
	// T1 50 ms: an unanswered OPTIONS times out after 64×T1 = 3.2 s.
	n, core := dialogFixture(t, "--keepalive", "1s", "--sip-t1", "50ms")
	u := newUAC(t, "127.0.0.2", n.SIP)
	c := newCall("441234567890", "442071234567")
	u.send(u.invite(c))
	_, res := u.final("INVITE", 5*time.Second)
	u.ack(c, res)
	if res.StatusCode != 200 {
		t.Fatalf("call: %d", res.StatusCode)
	}
	core.conn.Close() // the core vanishes without a BYE
	// The caller answers the keepalive OPTIONS, then gets a BYE.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no BYE within 10 s of the core going silent")
		}
		_, m := u.recv(time.Until(deadline))
		req, ok := m.(*sip.Request)
		if !ok {
			continue
		}
		u.answer(req, 200)
		if req.Method == sip.BYE {
			break
		}
		if req.Method != sip.OPTIONS {
			t.Fatalf("caller got %s, want OPTIONS or BYE", req.Method)
		}
	}
	n.waitIdle(t)
}
