package sipudp

// Client transactions over UDP.
//
// The edge's UDP client (leg B's INVITE, BYE and CANCEL, in-dialog relays,
// keepalive and NAT pings) builds its requests with sipgo's client (Via,
// branch, Max-Forwards) and hands them to this layer through sipgo's
// Client.TxRequester hook. sipgo's own client transactions cost a goroutine
// per received response, a state machine behind two locks and a context
// timer per request, and keep the parsed messages until they end; these
// keep the request's bytes until its first answer, then only what
// retransmissions need. Responses are matched in the UDP read filter (top
// Via branch and CSeq method, RFC 3261 §17.1.3) and delivered on
// Responses() without a goroutine.
//
// RFC 3261 §17.1 and RFC 6026, over UDP:
//
//   - INVITE: retransmitted (Timer A, T1 doubling) until a response, timed out
//     after 64·T1 without one (Timer B); a non-2xx final is ACKed here (the
//     same ACK again for each retransmission of it, for tx-linger: Timer D);
//     after a 2xx the transaction passes retransmitted 2xx to OnRetransmission
//     (the B2BUA ACKs them) for tx-linger (Timer M);
//   - other methods: retransmitted (Timer E: T1 doubling up to T2, T2 once a
//     provisional came) until the final answer, timed out after 64·T1
//     (Timer F); absorb the final's retransmissions for T4 (Timer K).
//
// A request whose destination is not an IP address and port (a host name
// to resolve) or whose transport is not UDP goes to sipgo's transaction
// layer; an ACK is written and needs no transaction.

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// responsesQueue is how many responses a client transaction holds for its
// reader; the UDP reader never waits for one (a reader gone away loses the
// rest).
const responsesQueue = 8

// udpClientLayer holds the UDP client transactions sent from one socket.
type udpClientLayer struct {
	conn       *udpSock
	t1, t2, t4 time.Duration
	linger     time.Duration // Timers D and M (tx-linger)
	// fallback serves what this layer does not: sipgo's transaction layer
	// and transport.
	fallback      func(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error)
	fallbackWrite func(req *sip.Request) error

	txs    txTable[*udpClientTx]
	timers *txTimers
	bufs   sync.Pool
}

func newUDPClientLayer(conn *udpSock, timers *txTimers, txl *sip.TransactionLayer, tpl *sip.TransportLayer) *udpClientLayer {
	l := &udpClientLayer{conn: conn, timers: timers, t1: sip.T1, t2: sip.T2, t4: sip.T4, linger: max(sip.Timer_D, sip.Timer_M),
		txs: newTxTable[*udpClientTx](), bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
	if txl != nil {
		l.fallback = func(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
			return txl.Request(ctx, req)
		}
	}
	if tpl != nil {
		l.fallbackWrite = func(req *sip.Request) error { return tpl.WriteMsg(req) }
	}
	return l
}

// count returns how many client transactions are kept.
func (l *udpClientLayer) count() int { return l.txs.count() }

// close ends every transaction (the socket is closing).
func (l *udpClientLayer) close() { l.txs.close() }

// clientKey is the RFC 3261 §17.1.3 key: the top Via's branch and the CSeq
// method. ok is false without an RFC 3261 branch.
func clientKey(m sip.Message) (string, bool) {
	via, cseq := m.Via(), m.CSeq()
	if via == nil || cseq == nil {
		return "", false
	}
	branch, _ := via.Params.Get("branch")
	if len(branch) <= len(sip.RFC3261BranchMagicCookie) || !strings.HasPrefix(branch, sip.RFC3261BranchMagicCookie) {
		return "", false
	}
	return branch + "|" + string(cseq.MethodName), true
}

// Request sends req (built by sipgo's client) and returns its transaction;
// an ACK is only written (nil transaction). It is sipgo's
// Client.TxRequester.
func (l *udpClientLayer) Request(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	dst, err := netip.ParseAddrPort(req.Destination())
	key, keyed := clientKey(req)
	if err != nil || !strings.EqualFold(req.Transport(), "UDP") || !keyed && !req.IsAck() {
		if req.IsAck() {
			if l.fallbackWrite == nil {
				return nil, fmt.Errorf("sipudp: cannot send ACK to %q", req.Destination())
			}
			return nil, l.fallbackWrite(req)
		}
		if l.fallback == nil {
			return nil, fmt.Errorf("sipudp: cannot send %s to %q", req.Method, req.Destination())
		}
		return l.fallback(ctx, req)
	}
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	buf := l.bufs.Get().(*bytes.Buffer)
	defer l.bufs.Put(buf)
	buf.Reset()
	req.StringWrite(buf)
	if req.IsAck() {
		_, err := l.conn.WriteToUDPAddrPort(buf.Bytes(), dst)
		return nil, err
	}
	tx := &udpClientTx{txBase: txBase{key: key, timers: l.timers}, l: l, dst: dst, invite: req.IsInvite(), req: bytes.Clone(buf.Bytes()),
		responses: make(chan *sip.Response, responsesQueue)}
	tx.self = tx
	if tx.invite {
		tx.origin = req
	}
	if _, isNew := l.txs.add(key, tx); !isNew {
		return nil, fmt.Errorf("sipudp: a client transaction %s exists already", key)
	}

	now := time.Now()
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if _, err := l.conn.WriteToUDPAddrPort(tx.req, dst); err != nil {
		l.txs.remove(key, tx)
		return nil, fmt.Errorf("sipudp: send %s to %s: %w", req.Method, dst, err)
	}
	tx.interval, tx.deadline = l.t1, now.Add(64*l.t1)
	tx.arm(now, l.t1)
	return tx, nil
}

// take delivers a response to its transaction; false when none matches
// (sipgo's transactions, or a stray response).
func (l *udpClientLayer) take(res *sip.Response) bool {
	key, ok := clientKey(res)
	if !ok {
		return false
	}
	tx, found := l.txs.get(key)
	if !found {
		return false
	}
	tx.receive(res)
	return true
}

type clientState uint8

const (
	ctCalling    clientState = iota // INVITE Calling, or non-INVITE Trying: retransmitting
	ctProceeding                    // a provisional came
	ctCompleted                     // a final came (INVITE: non-2xx, ACKed)
	ctAccepted                      // INVITE: a 2xx came (RFC 6026)
	ctTerminated
)

// udpClientTx is one client transaction over UDP; it implements
// sip.ClientTransaction.
type udpClientTx struct {
	txBase
	l      *udpClientLayer
	dst    netip.AddrPort
	invite bool

	state     clientState
	req       []byte       // the request's bytes, while it may be retransmitted
	origin    *sip.Request // INVITE: until its final answer (the non-2xx ACK is built from it)
	ack       []byte       // INVITE: the ACK of the non-2xx final, sent again for its retransmissions
	interval  time.Duration
	deadline  time.Time // Timer B / F
	responses chan *sip.Response
	unread    bool // discard: no one reads responses
	onRetrans []sip.FnTxResponse
}

// Discard tells the transaction that no one will read its responses (a
// teardown BYE, fire and forget): they are no longer queued for Responses,
// where the final one would stay until the transaction ends, T4 later (at
// 2,000 calls/s, 8 MB of parsed 200s to BYEs kept live for nothing).
func (tx *udpClientTx) Discard() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.unread = true
	for len(tx.responses) > 0 {
		<-tx.responses
	}
}

var _ sip.ClientTransaction = (*udpClientTx)(nil)

// fire is the timer: A/E retransmit, B/F time out, D/M/K end.
func (tx *udpClientTx) fire() {
	now := time.Now()
	tx.mu.Lock()
	if tx.early(now) || tx.state == ctTerminated {
		tx.mu.Unlock()
		return
	}
	switch tx.state {
	case ctCalling, ctProceeding:
		if !now.Before(tx.deadline) {
			tx.err = sip.ErrTransactionTimeout
			break
		}
		_, _ = tx.l.conn.WriteToUDPAddrPort(tx.req, tx.dst)
		switch {
		case tx.invite:
			tx.interval *= 2 // Timer A doubles without a cap
		case tx.state == ctProceeding:
			tx.interval = tx.l.t2
		default:
			tx.interval = min(2*tx.interval, tx.l.t2)
		}
		tx.arm(now, min(tx.interval, tx.deadline.Sub(now)))
		tx.mu.Unlock()
		return
	}
	tx.terminateLocked()
}

// receive takes a response that matched this transaction (on the UDP reader:
// it never blocks).
func (tx *udpClientTx) receive(res *sip.Response) {
	now := time.Now()
	tx.mu.Lock()
	switch tx.state {
	case ctCalling, ctProceeding:
	case ctCompleted:
		if tx.invite && len(tx.ack) > 0 && !res.IsProvisional() {
			_, _ = tx.l.conn.WriteToUDPAddrPort(tx.ack, tx.dst) // a retransmitted non-2xx: ACK it again
		}
		tx.mu.Unlock()
		return
	case ctAccepted:
		var fns []sip.FnTxResponse
		if res.IsSuccess() {
			fns = tx.onRetrans
		}
		tx.mu.Unlock()
		for _, f := range fns {
			f(res)
		}
		return
	default:
		tx.mu.Unlock()
		return
	}
	switch {
	case res.IsProvisional():
		if tx.state == ctCalling {
			tx.state = ctProceeding
			if tx.invite {
				tx.disarm() // Timer A stops; Timer B applies to Calling only
			} else {
				tx.interval = tx.l.t2
				tx.arm(now, min(tx.interval, tx.deadline.Sub(now)))
			}
		}
	case tx.invite && res.IsSuccess():
		tx.state, tx.req, tx.origin = ctAccepted, nil, nil
		tx.arm(now, tx.l.linger) // Timer M
	case tx.invite:
		tx.ack = tx.non2xxACK(res)
		_, _ = tx.l.conn.WriteToUDPAddrPort(tx.ack, tx.dst)
		tx.state, tx.req, tx.origin = ctCompleted, nil, nil
		tx.arm(now, tx.l.linger) // Timer D
	default:
		tx.state, tx.req = ctCompleted, nil
		tx.arm(now, tx.l.t4) // Timer K
	}
	if !tx.unread {
		select {
		case tx.responses <- res:
		default: // the reader is not reading: it has what it needs or has gone
		}
	}
	tx.mu.Unlock()
}

// non2xxACK builds the ACK of a non-2xx final (RFC 3261 §17.1.1.3): the
// INVITE's Request-URI, top Via, From, Call-ID, Route and CSeq number, the
// response's To. Locked.
func (tx *udpClientTx) non2xxACK(res *sip.Response) []byte {
	inv := tx.origin
	if inv == nil {
		return nil
	}
	ack := sip.NewRequest(sip.ACK, inv.Recipient)
	if v := inv.Via(); v != nil {
		ack.AppendHeader(v.Clone())
	}
	for _, h := range inv.GetHeaders("Route") {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := inv.From(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := res.To(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := inv.CallID(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := inv.CSeq(); h != nil {
		ack.AppendHeader(&sip.CSeqHeader{SeqNo: h.SeqNo, MethodName: sip.ACK})
	}
	mf := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&mf)
	ack.SetBody(nil)
	var b bytes.Buffer
	ack.StringWrite(&b)
	return b.Bytes()
}

// terminateLocked ends the transaction and unlocks tx.mu.
func (tx *udpClientTx) terminateLocked() {
	if tx.state == ctTerminated {
		tx.mu.Unlock()
		return
	}
	tx.state, tx.req, tx.origin, tx.ack, tx.onRetrans = ctTerminated, nil, nil, nil, nil
	tell := tx.end()
	tx.mu.Unlock()
	tx.l.txs.remove(tx.key, tx)
	tell()
}

// Terminate ends the transaction now.
func (tx *udpClientTx) Terminate() {
	tx.mu.Lock()
	tx.terminateLocked()
}

// Responses passes every response (provisional and final) in order.
func (tx *udpClientTx) Responses() <-chan *sip.Response { return tx.responses }

// OnRetransmission registers f for retransmitted 2xx of an INVITE.
func (tx *udpClientTx) OnRetransmission(f sip.FnTxResponse) bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state == ctTerminated {
		return false
	}
	tx.onRetrans = append(tx.onRetrans, f)
	return true
}
