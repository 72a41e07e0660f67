package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// ---- A raw UDP user agent client: exact bytes, any source in 127/8.

type uac struct {
	t     *testing.T
	cseq  uint32 // CSeq number of the last request sent: answers must match it
	conn  *net.UDPConn
	to    *net.UDPAddr
	local string         // ip:port
	sdp   string         // what collect answers INVITEs with ("": testSDP)
	early []*sip.Request // requests that came while waiting for an answer (subscribeFinal), for nextRequest
}

func newUAC(t *testing.T, srcIP, dst string) *uac {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(srcIP)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	to, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	return &uac{t: t, conn: conn, to: to, local: conn.LocalAddr().String()}
}

func (u *uac) send(msg string) {
	u.t.Helper()
	if _, err := u.conn.WriteToUDP([]byte(msg), u.to); err != nil {
		u.t.Fatal(err)
	}
}

// recv returns the next message from sipward, raw and parsed, or nil on timeout.
func (u *uac) recv(timeout time.Duration) (string, sip.Message) {
	u.t.Helper()
	buf := make([]byte, 65535)
	u.conn.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := u.conn.ReadFromUDP(buf)
	if err != nil {
		return "", nil
	}
	raw := string(buf[:n])
	m, err := sip.ParseMessage(buf[:n])
	if err != nil {
		u.t.Fatalf("unparseable message from sipward: %v\n%s", err, raw)
	}
	return raw, m
}

// final waits for the final response to the request with this CSeq method,
// answering in-dialog requests (re-sent 200s are ignored).
func (u *uac) final(method string, timeout time.Duration) (string, *sip.Response) {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		raw, m := u.recv(time.Until(deadline))
		if m == nil {
			break
		}
		res, ok := m.(*sip.Response)
		if !ok {
			u.answer(m.(*sip.Request), 200)
			continue
		}
		if res.CSeq() == nil || string(res.CSeq().MethodName) != method || res.CSeq().SeqNo != u.cseq || res.StatusCode < 200 {
			continue // a provisional, or a retransmission of an earlier answer
		}
		return raw, res
	}
	u.t.Fatalf("no final answer to %s within %s", method, timeout)
	return "", nil
}

// answer responds to a request sipward sent us (BYE, OPTIONS).
func (u *uac) answer(req *sip.Request, status int) {
	res := sip.NewResponseFromRequest(req, status, "OK", nil)
	u.send(res.String())
}

// call is one dialog the UAC started.
type call struct {
	callID, fromTag, toTag, to, from string
	cseq                             int
	contact                          string // sipward's Contact (remote target)
	branch                           string
}

const testSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 40000 RTP/AVP 0 8 18 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:18 G729/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"

func branch() string { return "z9hG4bK" + strconv.FormatUint(rand.Uint64(), 36) }

// invite builds an INVITE to user@sipward from cli.
func (u *uac) invite(c *call, extra ...string) string {
	c.cseq++
	u.cseq = uint32(c.cseq)
	c.branch = branch()
	host := u.to.String()
	var b strings.Builder
	fmt.Fprintf(&b, "INVITE sip:%s@%s SIP/2.0\r\n", c.to, host)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\n", u.local, c.branch)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", c.from, strings.Split(u.local, ":")[0], c.fromTag)
	fmt.Fprintf(&b, "To: <sip:%s@%s>\r\n", c.to, host)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", c.callID)
	fmt.Fprintf(&b, "CSeq: %d INVITE\r\n", c.cseq)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\n", c.from, u.local)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(testSDP), testSDP)
	return b.String()
}

func newCall(from, to string) *call {
	return &call{callID: strconv.FormatUint(rand.Uint64(), 36) + "@e2e", fromTag: strconv.FormatUint(rand.Uint64(), 36), from: from, to: to}
}

// ack sends the ACK for a final response (2xx: new branch; else the INVITE's).
func (u *uac) ack(c *call, res *sip.Response, extra ...string) {
	host := u.to.String()
	br := c.branch
	uri := fmt.Sprintf("sip:%s@%s", c.to, host)
	if res.IsSuccess() {
		br = branch()
		if ct := res.Contact(); ct != nil {
			uri = ct.Address.String()
		}
	}
	c.toTag, _ = res.To().Params.Get("tag")
	hdrs := ""
	for _, h := range extra {
		hdrs += h + "\r\n"
	}
	u.send(fmt.Sprintf("ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d ACK\r\n%sContent-Length: 0\r\n\r\n",
		uri, u.local, br, c.from, strings.Split(u.local, ":")[0], c.fromTag, c.to, host, c.toTag, c.callID, c.cseq, hdrs))
	if ct := res.Contact(); ct != nil {
		c.contact = ct.Address.String()
	}
}

// establish places call c (INVITE, then the ACK of its 200); any other
// answer fails the test.
func (u *uac) establish(c *call) {
	u.t.Helper()
	u.send(u.invite(c))
	_, res := u.final("INVITE", 5*time.Second)
	if res.StatusCode != 200 {
		u.t.Fatalf("INVITE %s: %d %s", c.to, res.StatusCode, res.Reason)
	}
	u.ack(c, res)
}

// bye hangs up and returns the status of the answer.
func (u *uac) bye(c *call) int {
	c.cseq++
	u.cseq = uint32(c.cseq)
	u.send(fmt.Sprintf("BYE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d BYE\r\nContent-Length: 0\r\n\r\n",
		c.contact, u.local, branch(), c.from, strings.Split(u.local, ":")[0], c.fromTag, c.to, u.to.String(), c.toTag, c.callID, c.cseq))
	_, res := u.final("BYE", 5*time.Second)
	return res.StatusCode
}

// digestAuth computes an MD5 qop=auth Proxy-Authorization for a 407.
func digestAuth(res *sip.Response, user, pass, method, uri string, nc int) string {
	h := res.GetHeader("Proxy-Authenticate")
	if h == nil {
		h = res.GetHeader("WWW-Authenticate")
	}
	params := map[string]string{}
	for _, p := range strings.Split(strings.TrimPrefix(h.Value(), "Digest "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[k] = strings.Trim(v, `"`)
	}
	md := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	ha1 := md(user + ":" + params["realm"] + ":" + pass)
	ha2 := md(method + ":" + uri)
	cnonce := "0a4f113b"
	ncs := fmt.Sprintf("%08x", nc)
	resp := md(ha1 + ":" + params["nonce"] + ":" + ncs + ":" + cnonce + ":auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, cnonce="%s", qop=auth, nc=%s`,
		user, params["realm"], params["nonce"], uri, resp, cnonce, ncs)
}

// ---- An upstream core: a sipgo UAS that records what it receives.

type uas struct {
	t       *testing.T
	addr    string
	mu      sync.Mutex
	invites []*sip.Request
	byes    int
	status  int           // final status to answer INVITEs with (200 default)
	ring    time.Duration // delay before the final answer
	active  map[string]bool
	peak    int         // most calls up at once
	arrived []time.Time // when each INVITE arrived
}

func newUAS(t *testing.T, ip string) *uas {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("e2e-core"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	u := &uas{t: t, addr: conn.LocalAddr().String(), status: 200, active: map[string]bool{}}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		u.mu.Lock()
		u.invites = append(u.invites, req)
		u.arrived = append(u.arrived, time.Now())
		st, ring := u.status, u.ring
		u.mu.Unlock()
		tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
		if ring > 0 {
			select {
			case <-time.After(ring):
			case <-tx.Done():
				return // cancelled: sipgo answered 487
			}
		}
		if st != 200 {
			tx.Respond(sip.NewResponseFromRequest(req, st, "Nope", nil))
			return
		}
		res := sip.NewSDPResponseFromRequest(req, []byte(strings.ReplaceAll(testSDP, "40000", "50000")))
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "core", Host: strings.Split(u.addr, ":")[0], Port: port(u.addr)}})
		u.mu.Lock()
		u.active[req.CallID().Value()] = true
		u.peak = max(u.peak, len(u.active))
		u.mu.Unlock()
		tx.Respond(res)
		select {
		case <-tx.Acks():
		case <-time.After(2 * time.Second):
		}
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		u.mu.Lock()
		u.byes++
		delete(u.active, req.CallID().Value())
		u.mu.Unlock()
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	go srv.ServeUDP(conn)
	t.Cleanup(func() { conn.Close(); ua.Close() })
	return u
}

func port(hostport string) int {
	_, p, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(p)
	return n
}

func (u *uas) got() []*sip.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*sip.Request(nil), u.invites...)
}

func (u *uas) set(status int, ring time.Duration) {
	u.mu.Lock()
	u.status, u.ring = status, ring
	u.mu.Unlock()
}

// ---- Fixture helpers.

// edgeNode starts sipward with the given core as upstream (the core's
// address is also the core-addr).
func edgeNode(t *testing.T, core *uas, args ...string) *node {
	t.Helper()
	a := []string{"--upstream", "sip:" + core.addr, "--core-addr", strings.Split(core.addr, ":")[0] + "/32"}
	return start(t, "", append(a, args...)...)
}

// decision waits until the decision log shows a decision for callID and
// returns the newest.
func (n *node) decision(t *testing.T, callID string) map[string]any {
	t.Helper()
	return n.decisionWith(t, callID, 0)
}

// decisionWith waits until the decision log shows a decision for callID
// with that status (any when 0) and returns the newest such: a challenged
// INVITE and its answer with credentials share a Call-ID, and the second
// decision may be recorded a moment after the caller got its answer.
func (n *node) decisionWith(t *testing.T, callID string, status int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, m := n.api(t, "GET", "/decisions?call_id="+callID, nil)
		items, _ := m["items"].([]any)
		for _, it := range items {
			if d := it.(map[string]any); status == 0 || d["status"] == float64(status) {
				return d
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no decision with status %d recorded for %s", status, callID)
	return nil
}

// waitIdle waits until no call is active, so channel counts are back to zero.
func (n *node) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, m := n.api(t, "GET", "/calls", nil)
		if m["total"].(float64) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, m := n.api(t, "GET", "/calls", nil)
	t.Fatalf("calls still active: %v", m)
}

var _ = context.Background

type sipResponse = sip.Response

// finalOrNothing is final, but returns nil when nothing arrives.
func (u *uac) finalOrNothing(method string, timeout time.Duration) (string, *sip.Response) {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		raw, m := u.recv(time.Until(deadline))
		if m == nil {
			return "", nil
		}
		if res, ok := m.(*sip.Response); ok && res.CSeq() != nil && string(res.CSeq().MethodName) == method && res.CSeq().SeqNo == u.cseq && res.StatusCode >= 200 {
			return raw, res
		}
	}
	return "", nil
}
