package sipudp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// txRig is a UDP transaction layer on a real socket (port 0) and a peer
// socket that sends it requests and reads its answers; served records the
// requests the layer handed to the handler.
type txRig struct {
	t      *testing.T
	l      *udpTxLayer
	peer   *net.UDPConn
	src    netip.AddrPort
	mu     sync.Mutex
	served []served
	handle func(req *sip.Request, tx sip.ServerTransaction)
}

type served struct {
	req *sip.Request
	tx  sip.ServerTransaction
}

func newTxRig(t *testing.T, handle func(*sip.Request, sip.ServerTransaction)) *txRig {
	t.Helper()
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &txRig{t: t, peer: peer, src: peer.LocalAddr().(*net.UDPAddr).AddrPort(), handle: handle}
	r.l = newUDPTxLayer(newUDPSock(srv), testTimers(t), func(req *sip.Request, tx sip.ServerTransaction, _ bool) {
		r.mu.Lock()
		r.served = append(r.served, served{req, tx})
		r.mu.Unlock()
		go func() { // as the edge's warm workers: off the reader
			if r.handle != nil {
				r.handle(req, tx)
			}
			if t, ok := tx.(*udpTx); ok {
				t.handled()
			}
		}()
	})
	r.l.t1, r.l.t2, r.l.t4, r.l.linger = 20*time.Millisecond, 80*time.Millisecond, 50*time.Millisecond, 400*time.Millisecond
	go r.read(srv)
	t.Cleanup(func() { r.l.close(); srv.Close(); peer.Close() })
	return r
}

// read plays the UDP reader: parse each datagram and offer it to the layer.
func (r *txRig) read(srv *net.UDPConn) {
	buf := make([]byte, 65535)
	p := sip.NewParser()
	for {
		n, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg, err := p.ParseSIP(buf[:n])
		if err != nil {
			continue
		}
		req := msg.(*sip.Request)
		req.SetTransport("UDP")
		req.SetSource(from.String())
		if !r.l.take(req, from, true, len(buf[:n])) {
			r.mu.Lock()
			r.served = append(r.served, served{req: req}) // left to sipgo
			r.mu.Unlock()
		}
	}
}

func (r *txRig) servedN() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.served)
}

func (r *txRig) lastServed() served {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.served[len(r.served)-1]
}

func (r *txRig) send(method, branch string, cseqMethod string) {
	r.t.Helper()
	if cseqMethod == "" {
		cseqMethod = method
	}
	msg := fmt.Sprintf("%s sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\nMax-Forwards: 70\r\n"+
		"From: <sip:a@127.0.0.1>;tag=f1\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: c1@test\r\nCSeq: 1 %s\r\nContent-Length: 0\r\n\r\n",
		method, r.src, branch, cseqMethod)
	if _, err := r.peer.WriteToUDPAddrPort([]byte(msg), r.l.conn.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		r.t.Fatal(err)
	}
}

// recv returns the next datagram the peer gets, or "" after wait.
func (r *txRig) recv(wait time.Duration) string {
	buf := make([]byte, 65535)
	_ = r.peer.SetReadDeadline(time.Now().Add(wait))
	n, _, err := r.peer.ReadFromUDPAddrPort(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func (r *txRig) expect(status string) string {
	r.t.Helper()
	got := r.recv(2 * time.Second)
	if !strings.HasPrefix(got, "SIP/2.0 "+status) {
		r.t.Fatalf("want a %s, got %q", status, firstLine(got))
	}
	return got
}

func (r *txRig) expectNothing(wait time.Duration) {
	r.t.Helper()
	if got := r.recv(wait); got != "" {
		r.t.Fatalf("want no datagram, got %q", firstLine(got))
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\r'); i >= 0 {
		return s[:i]
	}
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A retransmitted INVITE gets the last response again, byte for byte, and
// the handler sees the INVITE once; the non-2xx final is retransmitted until
// its ACK, which ends the transaction T4 later.
func TestUDPTxInviteNon2xx(t *testing.T) {
	answer := make(chan int, 2)
	r := newTxRig(t, func(req *sip.Request, tx sip.ServerTransaction) {
		for st := range answer {
			_ = tx.Respond(sip.NewResponseFromRequest(req, st, "X", nil))
			if st >= 200 {
				return
			}
		}
	})
	r.send("INVITE", "z9hG4bK-inv1", "")
	answer <- 180
	ringing := r.expect("180")
	r.send("INVITE", "z9hG4bK-inv1", "")
	if again := r.expect("180"); again != ringing {
		t.Fatalf("a retransmitted INVITE got another 180:\n%q\nfirst:\n%q", again, ringing)
	}
	answer <- 486
	busy := r.expect("486")
	if got := r.expect("486"); got != busy { // Timer G
		t.Fatalf("Timer G sent something else: %q", firstLine(got))
	}
	r.send("INVITE", "z9hG4bK-inv1", "")
	r.expect("486")
	if n := r.servedN(); n != 1 {
		t.Fatalf("the handler saw %d requests, want the INVITE once", n)
	}
	r.send("ACK", "z9hG4bK-inv1", "")
	waitFor(t, "the transaction to end after its ACK", func() bool { return r.l.count() == 0 })
	for r.recv(50*time.Millisecond) != "" { // a Timer G firing may have crossed the ACK
	}
	r.expectNothing(200 * time.Millisecond)
	if n := r.servedN(); n != 1 {
		t.Fatalf("the ACK of a non-2xx reached the handler (%d served)", n)
	}
}

// Without an ACK the non-2xx is retransmitted until 64·T1 (Timer H); then
// the transaction ends with a timeout.
func TestUDPTxTimerH(t *testing.T) {
	var tx sip.ServerTransaction
	r := newTxRig(t, func(req *sip.Request, stx sip.ServerTransaction) {
		tx = stx
		_ = stx.Respond(sip.NewResponseFromRequest(req, 503, "X", nil))
	})
	r.send("INVITE", "z9hG4bK-h1", "")
	n := 0
	for r.recv(500*time.Millisecond) != "" {
		n++
	}
	// 64·T1 = 1.28 s; T1 doubling to T2 (80 ms): 20, 40, 80, 80, … ≈ 17 sends.
	if n < 8 || n > 20 {
		t.Fatalf("the 503 was sent %d times, want about 17 (Timer G until Timer H)", n)
	}
	waitFor(t, "the transaction to end", func() bool { return r.l.count() == 0 })
	select {
	case <-tx.Done():
	default:
		t.Fatal("Done is not closed")
	}
	if !errors.Is(tx.Err(), sip.ErrTransactionTimeout) {
		t.Fatalf("Err = %v, want a timeout", tx.Err())
	}
}

// After a 2xx (RFC 6026 Accepted) a retransmitted INVITE is absorbed, an
// ACK that reuses the INVITE's branch reaches Acks(), the ACK of a new
// branch goes to the handler without a transaction, and the 2xx may be sent
// again (the B2BUA's own retransmissions).
func TestUDPTxInviteAccepted(t *testing.T) {
	txs := make(chan sip.ServerTransaction, 1)
	r := newTxRig(t, func(req *sip.Request, tx sip.ServerTransaction) {
		if req.Method == sip.INVITE {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
			txs <- tx
		}
	})
	r.send("INVITE", "z9hG4bK-ok1", "")
	r.expect("200")
	tx := <-txs
	acks := tx.Acks()
	r.send("INVITE", "z9hG4bK-ok1", "")
	r.expectNothing(100 * time.Millisecond)
	if err := tx.Respond(sip.NewResponseFromRequest(r.lastServed().req, 200, "OK", nil)); err != nil {
		t.Fatal(err)
	}
	r.expect("200")
	r.send("ACK", "z9hG4bK-ok1", "")
	select {
	case ack := <-acks:
		if !ack.IsAck() {
			t.Fatalf("Acks passed a %s", ack.Method)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the ACK that reused the INVITE's branch did not reach Acks()")
	}
	r.send("ACK", "z9hG4bK-ack2", "")
	waitFor(t, "the 2xx's ACK to reach the handler", func() bool { return r.servedN() == 2 })
	if s := r.lastServed(); !s.req.IsAck() || s.tx != nil {
		t.Fatalf("served %s with a transaction (%v), want the ACK without one", s.req.Method, s.tx)
	}
	waitFor(t, "the transaction to end after tx-linger", func() bool { return r.l.count() == 0 })
	if err := tx.Respond(sip.NewResponseFromRequest(r.lastServed().req, 200, "OK", nil)); !errors.Is(err, errTxTerminated) {
		t.Fatalf("Respond after the end = %v", err)
	}
}

// A non-INVITE request's retransmission gets the final answer again and
// the transaction ends tx-linger after it.
func TestUDPTxNonInvite(t *testing.T) {
	r := newTxRig(t, func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	r.send("BYE", "z9hG4bK-bye1", "")
	first := r.expect("200")
	r.send("BYE", "z9hG4bK-bye1", "")
	if again := r.expect("200"); again != first {
		t.Fatalf("the retransmitted BYE got another answer:\n%q", again)
	}
	r.expectNothing(50 * time.Millisecond) // no Timer G for non-INVITE
	waitFor(t, "the transaction to end", func() bool { return r.l.count() == 0 })
	if n := r.servedN(); n != 1 {
		t.Fatalf("the handler saw %d requests, want 1", n)
	}
	// A retransmission after the end is a new request (tx-linger is the window).
	r.send("BYE", "z9hG4bK-bye1", "")
	r.expect("200")
	waitFor(t, "the late retransmission to be served", func() bool { return r.servedN() == 2 })
}

// A CANCEL of a pending INVITE is answered 200, the INVITE 487, OnCancel is
// told, and the handler's later final answer is not sent.
func TestUDPTxCancel(t *testing.T) {
	release := make(chan struct{})
	cancelled := make(chan *sip.Request, 1)
	finalErr := make(chan error, 1)
	r := newTxRig(t, func(req *sip.Request, tx sip.ServerTransaction) {
		if req.Method != sip.INVITE {
			return
		}
		tx.OnCancel(func(c *sip.Request) { cancelled <- c })
		_ = tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
		<-release
		finalErr <- tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	r.send("INVITE", "z9hG4bK-c1", "")
	r.expect("180")
	r.send("CANCEL", "z9hG4bK-c1", "")
	ok := r.expect("200")
	if !strings.Contains(ok, "CSeq: 1 CANCEL") {
		t.Fatalf("the 200 is not the CANCEL's:\n%s", ok)
	}
	term := r.expect("487")
	if !strings.Contains(term, "CSeq: 1 INVITE") {
		t.Fatalf("the 487 is not the INVITE's:\n%s", term)
	}
	select {
	case c := <-cancelled:
		if !c.IsCancel() {
			t.Fatalf("OnCancel got a %s", c.Method)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("OnCancel was not called")
	}
	close(release)
	if err := <-finalErr; err != nil {
		t.Fatalf("the late 200 = %v, want nil (not sent)", err)
	}
	r.send("ACK", "z9hG4bK-c1", "")
	for got := r.recv(300 * time.Millisecond); got != ""; got = r.recv(300 * time.Millisecond) {
		if !strings.HasPrefix(got, "SIP/2.0 487") {
			t.Fatalf("after CANCEL the peer got %q", firstLine(got))
		}
	}
	if n := r.servedN(); n != 1 {
		t.Fatalf("the handler saw %d requests, want the INVITE only", n)
	}
}

// A handler that returns without a final answer ends its transaction; a
// request without an RFC 3261 branch is matched the RFC 2543 way; one whose
// CSeq names another method gets a transaction too (the sanity stage
// answers it 400, to its source, like any request: left to sipgo, it was
// answered to its Via's port instead).
func TestUDPTxUnansweredAndForeign(t *testing.T) {
	var answer atomic.Bool
	r := newTxRig(t, func(req *sip.Request, tx sip.ServerTransaction) {
		if answer.Load() {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		}
	})
	r.send("OPTIONS", "z9hG4bK-o1", "")
	waitFor(t, "the OPTIONS to be served", func() bool { return r.servedN() == 1 })
	waitFor(t, "its transaction to end", func() bool { return r.l.count() == 0 })
	r.send("OPTIONS", "z9hG4bK-o1", "")
	waitFor(t, "the retransmission to be served as new", func() bool { return r.servedN() == 2 })
	answer.Store(true)
	r.send("OPTIONS", "old-style-branch", "")
	first := r.expect("200")
	if s := r.lastServed(); s.tx == nil {
		t.Fatal("a request without an RFC 3261 branch got no transaction")
	}
	r.send("OPTIONS", "old-style-branch", "")
	if again := r.expect("200"); again != first {
		t.Fatalf("its retransmission was not matched (RFC 2543): %q", firstLine(again))
	}
	if n := r.servedN(); n != 3 {
		t.Fatalf("served %d requests, want the RFC 2543 one once", n-2)
	}
	r.send("OPTIONS", "z9hG4bK-o2", "INVITE") // CSeq method differs from the request's
	waitFor(t, "the mismatched CSeq to be served", func() bool { return r.servedN() == 4 })
	if s := r.lastServed(); s.tx == nil {
		t.Fatal("a request whose CSeq names another method got no transaction")
	}
}

// Retransmit2xx resends the 2xx until the ACK is reported, and gives up
// after 64·T1 without one.
func TestUDPTxRetransmit2xx(t *testing.T) {
	txs := make(chan *udpTx, 2)
	r := newTxRig(t, func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		txs <- tx.(*udpTx)
	})
	var acked, gaveUp atomic.Bool
	r.send("INVITE", "z9hG4bK-r2xx1", "")
	ok := r.expect("200")
	(<-txs).Retransmit2xx(acked.Load, func() { gaveUp.Store(true) })
	if again := r.expect("200"); again != ok { // T1 later
		t.Fatalf("the retransmitted 2xx differs:\n%q", again)
	}
	r.expect("200")
	acked.Store(true)
	for r.recv(100*time.Millisecond) != "" { // one may have crossed the ACK
	}
	r.expectNothing(200 * time.Millisecond)
	waitFor(t, "the transaction to end after tx-linger", func() bool { return r.l.count() == 0 })
	if gaveUp.Load() {
		t.Fatal("gave up on an ACKed 2xx")
	}

	r.send("INVITE", "z9hG4bK-r2xx2", "")
	r.expect("200")
	(<-txs).Retransmit2xx(func() bool { return false }, func() { gaveUp.Store(true) })
	n := 0
	for r.recv(500*time.Millisecond) != "" {
		n++
	}
	// 64·T1 = 1.28 s at T1 20 ms doubling to T2 80 ms: about 16 resends.
	if n < 8 || n > 20 || !gaveUp.Load() {
		t.Fatalf("without an ACK: %d resends, gave up %v; want about 16 and true", n, gaveUp.Load())
	}
}
