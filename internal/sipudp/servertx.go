package sipudp

// Server transactions over UDP.
//
// sipgo gives every request a server transaction of its own making: a new
// goroutine per received request (whose stack grows through the chain), a
// context with a timer, a state machine behind two locks, and the parsed
// request and response kept until the transaction ends. Under load that was a
// fifth of the CPU and most of the live heap (docs/performance.md § 8). Over
// UDP the edge keeps its own instead, for every request the stateless path
// does not answer: the UDP reader parses the datagram once, matches it to a
// transaction by its top Via's branch and sent-by and its CSeq method (RFC
// 3261 §17.2.3), and either handles a retransmission at once or hands a new
// request to a warm worker. Once a final answer is sent a transaction keeps
// only its key and the bytes of that answer; after an INVITE's 2xx (RFC 6026
// Accepted) not even those. TCP and TLS keep sipgo's transactions.
//
// What RFC 3261 §17.2 and RFC 6026 ask of a server transaction, and how:
//
//   - a retransmitted request gets the last response again (a provisional
//     while the request is pending, the final after), byte for byte;
//   - an INVITE's non-2xx final is retransmitted (Timer G: T1 doubling up to
//     T2) until its ACK, for at most 64·T1 (Timer H); the ACK ends the
//     transaction T4 later (Timer I, absorbing the ACK's retransmissions);
//   - after an INVITE's 2xx the transaction absorbs retransmitted INVITEs and
//     passes an ACK that shares its branch to Acks(), for tx-linger (Timer L),
//     and, when the B2BUA asks (retransmit2xx), resends the 2xx until leg A's
//     ACK, for up to 64·T1;
//   - a non-INVITE request's transaction ends tx-linger after its final
//     answer (Timer J);
//   - a CANCEL that matches a pending INVITE is answered 200, the INVITE 487,
//     and OnCancel's functions are told; one that matches nothing, and the
//     ACK of a 2xx (a new branch), go to the handler like any request (the
//     ACK without a transaction: nothing answers an ACK).
//
// A request whose top Via has no RFC 3261 branch (z9hG4bK…) is matched the
// RFC 2543 way (txKey).

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// errTxTerminated is Respond's error once the transaction has ended.
var errTxTerminated = errors.New("sipudp: the server transaction has ended")

type txState uint8

const (
	txProceeding txState = iota // no final answer yet
	txCompleted                 // final answer sent (INVITE: non-2xx, retransmitted until the ACK)
	txConfirmed                 // INVITE: the ACK of the non-2xx arrived
	txAccepted                  // INVITE: 2xx sent (RFC 6026)
	txTerminated
)

// udpTxLayer holds the UDP server transactions of one listening socket.
type udpTxLayer struct {
	conn   *udpSock
	t1, t2 time.Duration
	t4     time.Duration // Timer I
	linger time.Duration // Timers J and L (tx-linger)
	// serve runs a new request's handler; it is the edge's warm pool.
	serve func(req *sip.Request, tx sip.ServerTransaction, inline bool)

	txs    txTable[*udpTx]
	timers *txTimers
	bufs   sync.Pool
}

func newUDPTxLayer(conn *udpSock, timers *txTimers, serve func(*sip.Request, sip.ServerTransaction, bool)) *udpTxLayer {
	return &udpTxLayer{conn: conn, timers: timers, serve: serve, t1: sip.T1, t2: sip.T2, t4: sip.T4,
		linger: max(sip.Timer_J, sip.Timer_L), txs: newTxTable[*udpTx](),
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// count returns how many transactions are kept.
func (l *udpTxLayer) count() int { return l.txs.count() }

// close ends every transaction (the socket is closing).
func (l *udpTxLayer) close() { l.txs.close() }

// txKey is the RFC 3261 §17.2.3 key of req as a request of method: its top
// Via's branch and sent-by, and the method. Without an RFC 3261 branch
// (z9hG4bK…) it is the RFC 2543 way (§17.2.3's fallback): Call-ID, CSeq
// number, From tag, top Via and method; an ACK or CANCEL of such an INVITE
// shares all of these. ok is false without a Via.
func txKey(req *sip.Request, method sip.RequestMethod) (string, bool) {
	via := req.Via()
	if via == nil {
		return "", false
	}
	port := via.Port
	if port <= 0 {
		port = 5060
	}
	var b strings.Builder
	branch, _ := via.Params.Get("branch")
	if len(branch) <= len(sip.RFC3261BranchMagicCookie) || !strings.HasPrefix(branch, sip.RFC3261BranchMagicCookie) {
		cid, cseq, from := req.CallID(), req.CSeq(), req.From()
		if cid == nil || cseq == nil || from == nil {
			return "", false
		}
		tag, _ := from.Params.Get("tag")
		b.WriteString("2543|")
		b.WriteString(cid.Value())
		b.WriteByte('|')
		b.WriteString(strconv.FormatUint(uint64(cseq.SeqNo), 10))
		b.WriteByte('|')
		b.WriteString(tag)
		b.WriteByte('|')
	}
	b.WriteString(branch)
	b.WriteByte('|')
	b.WriteString(via.Host)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(port))
	b.WriteByte('|')
	b.WriteString(string(method))
	return b.String(), true
}

// take handles a parsed request from src: a retransmission, ACK or CANCEL
// of a transaction here is handled at once; a new request gets a
// transaction and its handler. It reports false when the request is left to
// sipgo (a header a transaction needs is missing: sipgo answers 400).
func (l *udpTxLayer) take(req *sip.Request, src netip.AddrPort, inline bool, size int) bool {
	cseq := req.CSeq()
	if cseq == nil || req.CallID() == nil || req.From() == nil || req.To() == nil {
		return false // sipgo answers 400 (or sanity does)
	}
	method := req.Method
	if method == sip.ACK || method == sip.CANCEL {
		key, ok := txKey(req, sip.INVITE)
		if !ok {
			return false
		}
		if tx, ok := l.txs.get(key); ok {
			if method == sip.ACK {
				tx.ack(req)
			} else {
				l.cancel(tx, req, src)
			}
			return true
		}
		if method == sip.ACK { // the ACK of a 2xx: to its call, without a transaction
			l.serve(req, nil, inline)
			return true
		}
	}
	// Keyed by the request's method even when the CSeq's differs (sipgo
	// upper-cases the request method; RFC 4475 mismatch02 really differs):
	// the sanity stage answers 400 to a mismatch, to the source, as to any
	// request here.
	key, ok := txKey(req, method)
	if !ok {
		return false
	}
	ntx := &udpTx{txBase: txBase{key: key, timers: l.timers}, l: l, dst: src, invite: method == sip.INVITE, req: req, size: size}
	ntx.self = ntx
	tx, isNew := l.txs.add(key, ntx)
	if !isNew {
		tx.retransmitted()
		return true
	}
	l.serve(req, tx, inline)
	return true
}

// cancel answers a CANCEL that matched the pending INVITE tx: 200 to the
// CANCEL, then (if the INVITE has no final answer yet) OnCancel and 487.
func (l *udpTxLayer) cancel(tx *udpTx, req *sip.Request, src netip.AddrPort) {
	l.write(sip.NewResponseFromRequest(req, 200, "OK", nil), src)
	tx.mu.Lock()
	if tx.state != txProceeding || tx.req == nil {
		tx.mu.Unlock()
		return // answered already: the CANCEL changes nothing (RFC 3261 §9.2)
	}
	tx.cancelled = true
	fns := tx.onCancel
	tx.onCancel = nil
	invite := tx.req
	tx.mu.Unlock()
	for _, f := range fns {
		f(req)
	}
	_ = tx.Respond(sip.NewResponseFromRequest(invite, 487, "Request Terminated", nil))
}

// write sends one response to dst (not part of a transaction's state).
func (l *udpTxLayer) write(res *sip.Response, dst netip.AddrPort) {
	buf := l.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	res.StringWrite(buf)
	_, _ = l.conn.WriteToUDPAddrPort(buf.Bytes(), dst)
	l.bufs.Put(buf)
}

// udpTx is one server transaction over UDP; it implements
// sip.ServerTransaction for the handlers.
type udpTx struct {
	txBase
	l      *udpTxLayer
	dst    netip.AddrPort
	invite bool
	size   int // the request's datagram

	state     txState
	req       *sip.Request // until the final answer (the 487 on CANCEL is built from it)
	last      []byte       // the last response sent, for retransmissions; nil after a 2xx to an INVITE
	cancelled bool
	interval  time.Duration // Timer G's
	deadline  time.Time     // Timer H's
	acks      chan *sip.Request
	onCancel  []sip.FnTxCancel
	// The 2xx's retransmission until leg A's ACK (retransmit2xx).
	acked     func() bool // whether the ACK came (it has a branch of its own: the B2BUA sees it)
	ackedHere bool        // an ACK that reused the INVITE's branch came here
	giveUp    func()      // no ACK in 64·T1
	lingerEnd time.Time   // Timer L, while the 2xx is being retransmitted
}

var _ sip.ServerTransaction = (*udpTx)(nil)

// Respond sends res and moves the transaction on. A provisional after the
// final answer, or a second final, is not sent (nil); a 2xx to an INVITE may
// be sent again (the B2BUA retransmits it until the ACK).
func (tx *udpTx) Respond(res *sip.Response) error {
	buf := tx.l.bufs.Get().(*bytes.Buffer)
	defer tx.l.bufs.Put(buf)
	buf.Reset()
	res.StringWrite(buf)
	now := time.Now()

	tx.mu.Lock()
	defer tx.mu.Unlock()
	switch {
	case tx.state == txTerminated:
		return errTxTerminated
	case res.IsProvisional():
		if tx.state != txProceeding {
			return nil
		}
		tx.last = append(tx.last[:0], buf.Bytes()...)
	case tx.invite && res.IsSuccess():
		if tx.state == txProceeding {
			tx.state, tx.req = txAccepted, nil
			tx.last = append(tx.last[:0], buf.Bytes()...) // for retransmit2xx
			tx.arm(now, tx.l.linger)
		} else if tx.state != txAccepted {
			return nil
		}
	default: // a final answer: any to a non-INVITE, 3xx–6xx to an INVITE
		if tx.state != txProceeding {
			return nil
		}
		tx.state, tx.req = txCompleted, nil
		tx.last = append(tx.last[:0], buf.Bytes()...)
		if tx.invite {
			tx.interval, tx.deadline = tx.l.t1, now.Add(64*tx.l.t1)
			tx.arm(now, tx.interval)
		} else {
			tx.arm(now, tx.l.linger)
		}
	}
	_, err := tx.l.conn.WriteToUDPAddrPort(buf.Bytes(), tx.dst)
	return err
}

// fire is the timer: Timer G (retransmit the non-2xx final) and H (give up
// waiting for its ACK) in Completed, Timer I, L and J (end) otherwise.
func (tx *udpTx) fire() {
	now := time.Now()
	tx.mu.Lock()
	if tx.early(now) || tx.state == txTerminated || tx.state == txProceeding {
		tx.mu.Unlock() // stale: re-armed since, or ended
		return
	}
	if tx.state == txAccepted && tx.giveUp != nil {
		tx.fire2xx(now)
		return
	}
	if tx.state == txCompleted && tx.invite {
		if now.Before(tx.deadline) {
			_, _ = tx.l.conn.WriteToUDPAddrPort(tx.last, tx.dst)
			tx.interval = min(2*tx.interval, tx.l.t2)
			tx.arm(now, min(tx.interval, tx.deadline.Sub(now)))
			tx.mu.Unlock()
			return
		}
		tx.err = sip.ErrTransactionTimeout // Timer H: the ACK never came
	}
	tx.terminateLocked()
}

// Retransmit2xx resends the 2xx just sent (RFC 6026 leaves it to the TU;
// UDP only), T1 doubling up to T2, until acked reports leg A's ACK (or one
// reusing the INVITE's branch came here); after 64·T1 without one it calls
// giveUp. One timer, no goroutine: acked is asked at each firing.
func (tx *udpTx) Retransmit2xx(acked func() bool, giveUp func()) {
	now := time.Now()
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state != txAccepted || len(tx.last) == 0 {
		return
	}
	tx.acked, tx.giveUp = acked, giveUp
	tx.interval, tx.deadline, tx.lingerEnd = tx.l.t1, now.Add(64*tx.l.t1), now.Add(tx.l.linger)
	tx.arm(now, tx.interval)
}

// fire2xx is fire in Accepted while the 2xx is retransmitted. It unlocks
// tx.mu.
func (tx *udpTx) fire2xx(now time.Time) {
	switch {
	case tx.ackedHere || tx.acked():
		tx.acked, tx.giveUp, tx.last = nil, nil, nil
		if now.Before(tx.lingerEnd) {
			tx.arm(now, tx.lingerEnd.Sub(now))
			tx.mu.Unlock()
			return
		}
		tx.terminateLocked()
	case !now.Before(tx.deadline):
		giveUp := tx.giveUp
		tx.terminateLocked()
		go giveUp() // it sends BYEs: not on the timers' goroutine
	default:
		_, _ = tx.l.conn.WriteToUDPAddrPort(tx.last, tx.dst)
		tx.interval = min(2*tx.interval, tx.l.t2)
		tx.arm(now, min(tx.interval, tx.deadline.Sub(now)))
		tx.mu.Unlock()
	}
}

// retransmitted answers a retransmission of the request with the last
// response; in Accepted and Confirmed it is absorbed.
func (tx *udpTx) retransmitted() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if (tx.state == txProceeding || tx.state == txCompleted) && len(tx.last) > 0 {
		_, _ = tx.l.conn.WriteToUDPAddrPort(tx.last, tx.dst)
	}
}

// ack takes an ACK that matched this INVITE transaction.
func (tx *udpTx) ack(req *sip.Request) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	switch tx.state {
	case txCompleted: // the ACK of our non-2xx: stop retransmitting, absorb its retransmissions for T4
		tx.state, tx.last = txConfirmed, nil
		tx.arm(time.Now(), tx.l.t4)
	case txAccepted: // an ACK of the 2xx that reused the INVITE's branch
		tx.ackedHere = true
	default:
		return
	}
	if tx.acks != nil {
		select {
		case tx.acks <- req:
		default: // one is waiting already; the listener needs only one
		}
	}
}

// handled is called when the handler has returned: a transaction without a
// final answer ends (as sipgo's server does after its handlers).
func (tx *udpTx) handled() {
	tx.mu.Lock()
	if tx.state != txProceeding {
		tx.mu.Unlock()
		return
	}
	tx.terminateLocked()
}

// terminateLocked ends the transaction and unlocks tx.mu.
func (tx *udpTx) terminateLocked() {
	if tx.state == txTerminated {
		tx.mu.Unlock()
		return
	}
	tx.state, tx.req, tx.last, tx.onCancel, tx.acked, tx.giveUp = txTerminated, nil, nil, nil, nil, nil
	tell := tx.end()
	tx.mu.Unlock()
	tx.l.txs.remove(tx.key, tx)
	tell()
}

// Terminate ends the transaction now.
func (tx *udpTx) Terminate() {
	tx.mu.Lock()
	tx.terminateLocked()
}

// Err says why the transaction ended (nil while it has not; cancelled
// once a CANCEL matched it).
func (tx *udpTx) Err() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.cancelled && tx.err == nil {
		return sip.ErrTransactionCanceled
	}
	return tx.err
}

// Acks passes the ACKs that match this INVITE transaction (see ack).
func (tx *udpTx) Acks() <-chan *sip.Request {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.acks == nil {
		tx.acks = make(chan *sip.Request, 1)
	}
	return tx.acks
}

// OnCancel registers f for a CANCEL of this INVITE; false when the
// transaction has ended or was cancelled already.
func (tx *udpTx) OnCancel(f sip.FnTxCancel) bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state == txTerminated || tx.cancelled {
		return false
	}
	tx.onCancel = append(tx.onCancel, f)
	return true
}
