// Package sipudp is sipward's SIP-over-UDP transport: the socket and its
// readers, the datagram demultiplexer, the server and client transactions
// with their timer ring, and the stateless answer writer with its absorber
// of retransmissions. It knows nothing of calls, registrations or the
// pipeline: it hands each request up through Config.Handle, with its server
// transaction or, for a request that needs none, without, and writes the
// stateless answers it is asked to (Answer).
//
// sipgo serves what this package leaves: it reads Feed (responses to its
// own transactions, requests that do not parse) and sends requests this
// package's client layer does not (Requester falls back to sipgo's layers).
// TCP and TLS are sipgo's alone.
//
// Files, each one job: sock.go (raw socket calls), reader.go (the readers
// and sipgo's feed), demux.go (where each datagram goes), stateless.go
// (answers without a transaction, the absorber), scan.go (the raw sieve),
// servertx.go and clienttx.go (transactions, RFC 3261 §17 and RFC 6026),
// txbase.go (what both kinds share), timers.go (their timer ring).
package sipudp

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// SocketBuffer is the UDP socket's send and receive buffer asked of the
// kernel: 4 MB, about 8,000 typical SIP datagrams. One goroutine per core
// reads the socket; a bigger buffer rides out the moments none is
// scheduled (GC, bursts) instead of dropping datagrams. The kernel caps it
// at net.core.rmem_max/wmem_max.
const SocketBuffer = 4 << 20

// Config configures a Transport.
type Config struct {
	// Handle serves a request taken off the socket. tx is its server
	// transaction; nil for a request to answer without one (with Answer)
	// and for the ACK of a 2xx (nothing answers an ACK). size is the
	// datagram's length (what an answer must not amplify). A transaction
	// left without a final answer when Handle returns ends then. Required.
	Handle func(req *sip.Request, tx sip.ServerTransaction, size int)
	// Spawn runs f on another goroutine: the edge's warm pool. nil: go f().
	Spawn func(f func())
	// ReadFilter runs on every datagram before it is parsed (the firewall):
	// an empty result drops it. nil: none.
	ReadFilter sip.TransportReadFilter
	// Unknown reports whether an INVITE from addr can only be challenged or
	// refused (it is neither the core nor inside an IP endpoint's prefix):
	// such an INVITE without credentials is answered without a transaction.
	// nil: none is.
	Unknown func(netip.Addr) bool
	// Transactions and Transports are sipgo's layers, which send what the
	// client layer does not (a destination to resolve, another transport,
	// an ACK to a host name). nil: such requests fail.
	Transactions *sip.TransactionLayer
	Transports   *sip.TransportLayer
	// Parser parses the datagrams (sipgo's Parser; sipward's trims header
	// parameters, package sipnorm). nil: sip.NewParser().
	Parser *sip.Parser
	// Now is the clock of the absorber; nil: time.Now.
	Now func() time.Time
}

// Transport is the UDP transport of one listening socket. Build it with
// New; Start runs it; Close stops it.
type Transport struct {
	conn   *net.UDPConn
	sock   *udpSock
	feed   *udpFeed
	timers *txTimers
	sl     *stateless
	stx    *udpTxLayer
	uct    *udpClientLayer
	d      *demux
	filter sip.TransportReadFilter
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// New builds the transport of conn. The RFC 3261 timers are sipgo's
// process-wide ones (sip.T1, sip.Timer_J…) as they are now.
func New(conn *net.UDPConn, cfg Config) *Transport {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	spawn := cfg.Spawn
	if spawn == nil {
		spawn = func(f func()) { go f() }
	}
	_ = conn.SetReadBuffer(SocketBuffer)
	_ = conn.SetWriteBuffer(SocketBuffer)
	t := &Transport{conn: conn, sock: newUDPSock(conn), filter: cfg.ReadFilter, timers: newTxTimers(txTick)}
	t.feed = newUDPFeed(t.sock)
	t.sl = newStateless(t.sock)
	handle := cfg.Handle
	t.stx = newUDPTxLayer(t.sock, t.timers, func(req *sip.Request, tx sip.ServerTransaction, inline bool) {
		f := func() {
			utx, ours := tx.(*udpTx)
			size := 0
			if ours {
				size = utx.size
			}
			handle(req, tx, size)
			if ours {
				utx.handled()
			}
		}
		if inline {
			f()
			return
		}
		spawn(f)
	})
	t.uct = newUDPClientLayer(t.sock, t.timers, cfg.Transactions, cfg.Transports)
	if cfg.Parser == nil {
		cfg.Parser = sip.NewParser()
	}
	t.d = &demux{parser: cfg.Parser, sl: t.sl, stx: t.stx, uct: t.uct, handle: handle, unknown: cfg.Unknown,
		now: cfg.Now, jobs: make(chan statelessJob, statelessQueue)}
	return t
}

// Start runs the readers and the stateless workers until Close.
func (t *Transport) Start(ctx context.Context) {
	ctx, t.stop = context.WithCancel(ctx)
	t.d.workers(ctx, &t.wg)
	for range udpReaders() {
		t.wg.Add(1)
		go func() { defer t.wg.Done(); read(t.sock, t.filter, t.d, t.feed) }()
	}
}

// Close closes the socket, ends every transaction and waits for the
// readers and workers.
func (t *Transport) Close() {
	if t.stop != nil {
		t.stop()
	}
	t.feed.Close()
	t.conn.Close()
	t.stx.close()
	t.uct.close()
	t.timers.stop()
	t.wg.Wait()
}

// Feed is what sipgo's UDP server reads (sipgo.Server.ServeUDP): the
// datagrams the demultiplexer left to it. Writes go to the socket.
func (t *Transport) Feed() net.PacketConn { return t.feed }

// Requester sends requests over UDP with the transport's client
// transactions; set it as a sipgo client's TxRequester.
func (t *Transport) Requester() sipgo.ClientTransactionRequester { return t.uct }

// Answer writes a final answer (status >= 200) to req, received from src,
// without a transaction: the answer of a request Handle got with a nil tx.
// An answer longer than limit bytes (when limit > 0) is not sent:
// ErrTooLarge (an answer to a stranger must not amplify what it sent).
func (t *Transport) Answer(req *sip.Request, src netip.AddrPort, status int, reason string, hdrs []sip.Header, now time.Time, limit int) error {
	return t.sl.answer(req, src, status, reason, hdrs, now, limit)
}

// Take offers a datagram from src to the demultiplexer, as the readers do,
// and serves a new request on the caller's goroutine; it reports whether the
// datagram was taken (otherwise sipgo would have parsed it). It is for
// fuzzing: the transport must have been built, need not be started.
func (t *Transport) Take(data []byte, src netip.AddrPort) bool {
	return t.d.take(crlf(data), src, true)
}

// Counts are the transport's counters, for the edge's metrics.
type Counts struct {
	StatelessACKs uint64 // ACKs of stateless non-2xx answers, dropped unparsed
	Absorbed      uint64 // retransmitted REGISTERs answered again with the kept answer
	Transactions  int    // UDP transactions kept now, server and client
}

// Counts returns the counters now.
func (t *Transport) Counts() Counts {
	return Counts{StatelessACKs: t.d.acks.Load(), Absorbed: t.d.absorbed.Load(), Transactions: t.stx.count() + t.uct.count()}
}

// PassDatagrams is sipgo's transport read filter when a Transport serves
// UDP: TCP and TLS reads go through next (the firewall); UDP datagrams reach
// sipgo only through Feed, after the transport's readers ran next already,
// and pass.
func PassDatagrams(next sip.TransportReadFilter) sip.TransportReadFilter {
	return func(info sip.TransportReadProps, data []byte) ([]byte, error) {
		if info.Transport == "udp" || info.Transport == "UDP" || next == nil {
			return data, nil
		}
		return next(info, data)
	}
}
