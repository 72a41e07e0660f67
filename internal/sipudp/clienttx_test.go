package sipudp

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ctRig is a UDP client layer on a real socket (port 0) whose responses are
// read back into it as the edge's read filter does, and a peer (the UAS) that
// receives its requests.
type ctRig struct {
	t    *testing.T
	l    *udpClientLayer
	peer *net.UDPConn
	p    *sip.Parser
}

func newCtRig(t *testing.T) *ctRig {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &ctRig{t: t, l: newUDPClientLayer(newUDPSock(conn), testTimers(t), nil, nil), peer: peer, p: sip.NewParser()}
	r.l.t1, r.l.t2, r.l.t4, r.l.linger = 10*time.Millisecond, 40*time.Millisecond, 30*time.Millisecond, 300*time.Millisecond
	go func() {
		buf := make([]byte, 65535)
		p := sip.NewParser()
		for {
			n, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if msg, err := p.ParseSIP(buf[:n]); err == nil {
				if res, ok := msg.(*sip.Response); ok {
					r.l.take(res)
				}
			}
		}
	}()
	t.Cleanup(func() { r.l.close(); conn.Close(); peer.Close() })
	return r
}

// request builds what sipgo's client would hand the layer.
func (r *ctRig) request(method sip.RequestMethod, branch string) *sip.Request {
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: "1000", Host: "127.0.0.1", Port: r.peer.LocalAddr().(*net.UDPAddr).Port})
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: r.l.conn.LocalAddr().(*net.UDPAddr).Port}
	via.Params.Add("branch", branch)
	req.AppendHeader(via)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "sipward", Host: "127.0.0.1"}}
	from.Params.Add("tag", "ft1")
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "1000", Host: "127.0.0.1"}})
	cid := sip.CallIDHeader("ct1@test")
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 7, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.SetBody(nil)
	req.SetTransport("UDP")
	return req
}

// recv returns the next request the peer gets, or nil after wait.
func (r *ctRig) recv(wait time.Duration) *sip.Request {
	buf := make([]byte, 65535)
	_ = r.peer.SetReadDeadline(time.Now().Add(wait))
	n, _, err := r.peer.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil
	}
	msg, err := r.p.ParseSIP(buf[:n])
	if err != nil {
		r.t.Fatalf("the layer sent something unparsable: %v\n%q", err, buf[:n])
	}
	return msg.(*sip.Request)
}

// answer sends the peer's response to req.
func (r *ctRig) answer(req *sip.Request, status int, toTag string) {
	res := sip.NewResponseFromRequest(req, status, "X", nil)
	if toTag != "" {
		res.To().Params.Add("tag", toTag)
	}
	if _, err := r.peer.WriteToUDPAddrPort([]byte(res.String()), r.l.conn.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		r.t.Fatal(err)
	}
}

func nextResponse(t *testing.T, tx sip.ClientTransaction) *sip.Response {
	t.Helper()
	select {
	case res := <-tx.Responses():
		return res
	case <-time.After(2 * time.Second):
		t.Fatal("no response passed up")
	}
	return nil
}

// An INVITE is retransmitted until a provisional, then waits; its 2xx is
// passed up, a retransmitted 2xx goes to OnRetransmission, and the
// transaction ends tx-linger later.
func TestUDPClientInvite2xx(t *testing.T) {
	r := newCtRig(t)
	tx, err := r.l.Request(context.Background(), r.request(sip.INVITE, "z9hG4bK-ci1"))
	if err != nil {
		t.Fatal(err)
	}
	first := r.recv(time.Second)
	if again := r.recv(time.Second); again == nil || again.String() != first.String() {
		t.Fatal("the INVITE was not retransmitted (Timer A)")
	}
	r.answer(first, 180, "tt1")
	if res := nextResponse(t, tx); res.StatusCode != 180 {
		t.Fatalf("passed up %d, want 180", res.StatusCode)
	}
	for r.recv(30*time.Millisecond) != nil { // retransmissions that crossed the 180
	}
	if got := r.recv(150 * time.Millisecond); got != nil {
		t.Fatalf("the INVITE was retransmitted after a provisional: %s", got.StartLine())
	}
	var retrans atomic.Int32
	tx.OnRetransmission(func(*sip.Response) { retrans.Add(1) })
	r.answer(first, 200, "tt1")
	if res := nextResponse(t, tx); res.StatusCode != 200 {
		t.Fatalf("passed up %d, want 200", res.StatusCode)
	}
	r.answer(first, 200, "tt1")
	waitFor(t, "the retransmitted 2xx to reach OnRetransmission", func() bool { return retrans.Load() == 1 })
	if got := r.recv(50 * time.Millisecond); got != nil {
		t.Fatalf("the layer sent %s after a 2xx (the ACK of a 2xx is the TU's)", got.StartLine())
	}
	select {
	case <-tx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the transaction did not end after tx-linger (Timer M)")
	}
	waitFor(t, "the transaction to be dropped", func() bool { return r.l.count() == 0 })
}

// A non-2xx final is ACKed by the transaction (same branch, the response's
// To tag, CSeq ACK), and again for each retransmission of it.
func TestUDPClientInviteNon2xxIsACKed(t *testing.T) {
	r := newCtRig(t)
	tx, err := r.l.Request(context.Background(), r.request(sip.INVITE, "z9hG4bK-ci2"))
	if err != nil {
		t.Fatal(err)
	}
	inv := r.recv(time.Second)
	r.answer(inv, 486, "busy1")
	if res := nextResponse(t, tx); res.StatusCode != 486 {
		t.Fatalf("passed up %d, want 486", res.StatusCode)
	}
	var ack *sip.Request
	for got := r.recv(time.Second); got != nil; got = r.recv(100 * time.Millisecond) {
		if got.IsAck() {
			ack = got
			break
		}
	}
	if ack == nil {
		t.Fatal("the 486 was not ACKed")
	}
	branch, _ := ack.Via().Params.Get("branch")
	tag, _ := ack.To().Params.Get("tag")
	if branch != "z9hG4bK-ci2" || tag != "busy1" || ack.CSeq().SeqNo != 7 || ack.CSeq().MethodName != sip.ACK ||
		ack.Recipient.String() != inv.Recipient.String() || ack.CallID().Value() != "ct1@test" {
		t.Fatalf("the ACK is not the INVITE's transaction's (RFC 3261 17.1.1.3):\n%s", ack)
	}
	r.answer(inv, 486, "busy1")
	if again := r.recv(time.Second); again == nil || !again.IsAck() {
		t.Fatal("a retransmitted 486 was not ACKed again")
	}
	select {
	case res := <-tx.Responses():
		t.Fatalf("a retransmitted final was passed up again: %d", res.StatusCode)
	case <-time.After(50 * time.Millisecond):
	}
}

// Without an answer the INVITE times out after 64·T1 (Timer B).
func TestUDPClientTimerB(t *testing.T) {
	r := newCtRig(t)
	tx, err := r.l.Request(context.Background(), r.request(sip.INVITE, "z9hG4bK-ci3"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r.recv(300*time.Millisecond) != nil {
		n++
	}
	// 64·T1 = 640 ms; sends at 0, 10, 30, 70, 150, 310 and 630 ms.
	if n < 5 || n > 8 {
		t.Fatalf("the INVITE was sent %d times, want 7 (Timer A until Timer B)", n)
	}
	select {
	case <-tx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the transaction did not end")
	}
	if !errors.Is(tx.Err(), sip.ErrTransactionTimeout) {
		t.Fatalf("Err = %v, want a timeout", tx.Err())
	}
}

// A non-INVITE request is retransmitted, T1 doubling up to T2, until its
// final answer, which is passed up once.
func TestUDPClientNonInvite(t *testing.T) {
	r := newCtRig(t)
	tx, err := r.l.Request(context.Background(), r.request(sip.BYE, "z9hG4bK-cb1"))
	if err != nil {
		t.Fatal(err)
	}
	bye := r.recv(time.Second)
	n := 1
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); {
		if r.recv(100*time.Millisecond) != nil {
			n++
		}
	}
	// 10, 20, 40, 40, 40 … ms apart: about 6 sends in 200 ms.
	if n < 3 || n > 9 {
		t.Fatalf("the BYE was sent %d times in 200 ms, want about 6 (Timer E)", n)
	}
	r.answer(bye, 200, "")
	if res := nextResponse(t, tx); res.StatusCode != 200 {
		t.Fatalf("passed up %d", res.StatusCode)
	}
	for r.recv(50*time.Millisecond) != nil {
	}
	if got := r.recv(100 * time.Millisecond); got != nil {
		t.Fatal("the BYE was retransmitted after its answer")
	}
	waitFor(t, "the transaction to end (Timer K)", func() bool { return r.l.count() == 0 })
}

// A discarded transaction (a teardown BYE) keeps no response for a reader
// that will never come, and still runs to its end; a provisional queued
// before discard is dropped too.
func TestUDPClientDiscard(t *testing.T) {
	r := newCtRig(t)
	tx, err := r.l.Request(context.Background(), r.request(sip.BYE, "z9hG4bK-cd1"))
	if err != nil {
		t.Fatal(err)
	}
	bye := r.recv(time.Second)
	r.answer(bye, 100, "")
	utx := tx.(*udpClientTx)
	waitFor(t, "the 100 to be queued", func() bool { return len(utx.responses) == 1 })
	utx.Discard()
	if n := len(utx.responses); n != 0 {
		t.Fatalf("%d responses queued after discard, want 0", n)
	}
	r.answer(bye, 200, "")
	waitFor(t, "the final answer to complete the transaction", func() bool {
		utx.mu.Lock()
		defer utx.mu.Unlock()
		return utx.state == ctCompleted || utx.state == ctTerminated
	})
	if n := len(utx.responses); n != 0 {
		t.Fatalf("%d responses queued for no reader, want 0", n)
	}
	waitFor(t, "the transaction to end (Timer K)", func() bool { return r.l.count() == 0 })
}

// An ACK is only written; a destination that is a host name goes to the
// fallback (sipgo's transaction layer).
func TestUDPClientAckAndFallback(t *testing.T) {
	r := newCtRig(t)
	tx, err := r.l.Request(context.Background(), r.request(sip.ACK, "z9hG4bK-ca1"))
	if err != nil || tx != nil {
		t.Fatalf("ACK: tx %v, err %v; want neither", tx, err)
	}
	if got := r.recv(time.Second); got == nil || !got.IsAck() {
		t.Fatal("the ACK was not sent")
	}
	var fellBack bool
	r.l.fallback = func(context.Context, *sip.Request) (sip.ClientTransaction, error) {
		fellBack = true
		return nil, errors.New("fallback")
	}
	req := r.request(sip.OPTIONS, "z9hG4bK-co1")
	req.Recipient.Host = "upstream.example"
	if _, err := r.l.Request(context.Background(), req); err == nil || !strings.Contains(err.Error(), "fallback") || !fellBack {
		t.Fatalf("a host-name destination: err %v, fell back %v", err, fellBack)
	}
	if r.l.count() != 0 {
		t.Fatal("the fallback request left a transaction here")
	}
}
