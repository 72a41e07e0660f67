// Package edge is sipward's glue to the SIP stack (emiago/sipgo): it owns the
// listeners, turns each inbound request into a pipeline.Request, runs it
// through the chain (the order is in chain.go), and is the only place that
// turns a pipeline.Result into a SIP response (respond.go). The terminal
// stages live here too: the signalling-only B2BUA (b2bua.go) for INVITEs and
// the registrar (registrar.go) for REGISTERs. Calls and registrations are
// shown through Calls() and Registrations() for the API.
//
// sipgo is used for its transport, transaction and parser layers only, not
// its dialog caches; everything sipgo-specific stays in this package. Over
// UDP, challenges, REGISTER and OPTIONS are answered without a transaction
// (stateless.go, as Kamailio's sl module), and every other request gets one
// of the edge's own server transactions (servertx.go), which keep far less
// than sipgo's, as do the requests the edge sends over UDP (clienttx.go,
// through sipgo's client); sipgo's transactions serve TCP and TLS. Handlers
// run on warm goroutines (warm.go).
package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/snapshot"
)

// Config configures the edge.
type Config struct {
	SIPAddr      string      // UDP and TCP listen address, e.g. ":5060" or "127.0.0.1:0"
	SIPSAddr     string      // TLS listen address; used when TLS is set
	TLS          *tls.Config // server certificate for SIP over TLS; nil: no TLS listener
	ExternalHost string      // host for Via/Contact/From; default: the listen IP, or the first non-loopback IP
	Log          *slog.Logger
	Registry     prometheus.Registerer
	// ReadFilter drops datagrams and messages before parsing (firewall bans).
	ReadFilter sip.TransportReadFilter
	// Stages in chain order; see chain.go for which methods pass which.
	Stages Stages
	// Snapshot returns the serving configuration snapshot; each request is
	// decided with the one loaded when it arrived.
	Snapshot func() *snapshot.Snapshot
	// Router decides where an authorised INVITE goes.
	Router Router
	// Registrar handles authorised REGISTERs; nil answers 403.
	Registrar *Registrar
	// Decisions is how many decisions the log keeps (default 10000).
	Decisions int
	// InviteTimeout bounds how long leg B may ring (default 3 min).
	InviteTimeout time.Duration
	// Keepalive is the interval of in-dialog OPTIONS to both legs; 0 disables.
	Keepalive time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Router decides where an authorised initial INVITE goes. It returns the
// call spec, or a Result that rejects the call (for example 480 when the
// user has no registered contact).
type Router interface {
	Route(ctx context.Context, r *pipeline.Request) (CallSpec, *pipeline.Result, error)
}

// Edge is a running SIP edge node.
type Edge struct {
	cfg       Config
	log       *slog.Logger
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	b         *b2bua
	chains    chains
	decisions *decisionLog
	m         *metrics
	now       func() time.Time

	udp      net.PacketConn
	sock     *udpSock        // e.udp, read and written with raw system calls (udpsock.go)
	feed     *udpFeed        // what sipgo's UDP server reads (udpread.go)
	sl       *stateless      // answers challenges, REGISTER and OPTIONS over UDP without a transaction
	stx      *udpTxLayer     // the other UDP requests' server transactions (servertx.go)
	uct      *udpClientLayer // client transactions sent over UDP (clienttx.go)
	timers   *txTimers       // the UDP transactions' RFC 3261 timers (timers.go)
	warm     *warmPool       // long-lived goroutines for sipgo's handlers
	tcp, tls net.Listener
	stop     context.CancelFunc // ends the edge's own goroutines
	wg       sync.WaitGroup
	panicLog rateLimiter
	failLog  rateLimiter
	draining chan struct{}
}

// udpSocketBuffer is the UDP socket's send and receive buffer asked of the
// kernel: 4 MB, about 8,000 typical SIP datagrams.
const udpSocketBuffer = 4 << 20

// Addrs are the addresses the edge listens on.
type Addrs struct {
	UDP, TCP, TLS string
}

// New builds the edge; Start opens its listeners.
func New(cfg Config) (*Edge, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.InviteTimeout == 0 {
		cfg.InviteTimeout = 3 * time.Minute
	}
	if cfg.Router == nil || cfg.Snapshot == nil {
		return nil, errors.New("edge: a Router and a Snapshot source are required")
	}
	e := &Edge{cfg: cfg, log: cfg.Log, decisions: newDecisionLog(cfg.Decisions), now: cfg.Now, draining: make(chan struct{}),
		warm: newWarmPool(256)}
	e.panicLog = rateLimiter{every: 10 * time.Second}
	e.failLog = rateLimiter{every: 10 * time.Second}
	return e, nil
}

// sipgo logs parse failures of every UDP packet at Error level with the
// whole packet (pitfall 6): route its logs through a rate limit.
func (e *Edge) sipgoLogger() *slog.Logger {
	return slog.New(&limitedHandler{h: e.log.Handler(), lim: &rateLimiter{every: 5 * time.Second}})
}

// Start opens the listeners and serves until ctx ends or Close is called.
func (e *Edge) Start(ctx context.Context) (Addrs, error) {
	var addrs Addrs
	ctx, e.stop = context.WithCancel(ctx)
	host, port, err := net.SplitHostPort(e.cfg.SIPAddr)
	if err != nil {
		return addrs, fmt.Errorf("edge: sip-addr %q: %w", e.cfg.SIPAddr, err)
	}
	lc := net.ListenConfig{}
	// UDP and TCP on the same port. Port 0 lets the kernel pick UDP's; that
	// number may be taken for TCP, so then a few picks are tried.
	for attempt := 1; ; attempt++ {
		e.udp, err = lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, port))
		if err != nil {
			return addrs, fmt.Errorf("edge: listen udp %s: %w", e.cfg.SIPAddr, err)
		}
		udpPort := e.udp.LocalAddr().(*net.UDPAddr).Port
		e.tcp, err = lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(udpPort)))
		if err == nil {
			break
		}
		e.udp.Close()
		if port != "0" || attempt == 10 || !errors.Is(err, syscall.EADDRINUSE) {
			return addrs, fmt.Errorf("edge: listen tcp %s: %w", e.cfg.SIPAddr, err)
		}
	}
	// One goroutine reads the UDP socket; a bigger kernel buffer rides out
	// the moments it is not scheduled (GC, bursts) instead of dropping
	// datagrams. The kernel caps it at net.core.rmem_max/wmem_max.
	if uc, ok := e.udp.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(udpSocketBuffer)
		_ = uc.SetWriteBuffer(udpSocketBuffer)
	}
	addrs.UDP, addrs.TCP = e.udp.LocalAddr().String(), e.tcp.Addr().String()
	if e.cfg.TLS != nil {
		ln, err := lc.Listen(ctx, "tcp", e.cfg.SIPSAddr)
		if err != nil {
			e.udp.Close()
			e.tcp.Close()
			return addrs, fmt.Errorf("edge: listen tls %s: %w", e.cfg.SIPSAddr, err)
		}
		e.tls = tls.NewListener(ln, e.cfg.TLS)
		addrs.TLS = ln.Addr().String()
	}

	ext := e.cfg.ExternalHost
	if ext == "" {
		ext = advertisedHost(e.udp.LocalAddr().(*net.UDPAddr).IP)
	}
	slog := e.sipgoLogger()
	sock := newUDPSock(e.udp.(*net.UDPConn))
	e.sock = sock
	e.sl = newStateless(e, sock)
	e.feed = newUDPFeed(sock)
	e.timers = newTxTimers(txTick)
	e.stx = newUDPTxLayer(sock, e.timers, e.serveUDP)
	tpOpts := []sip.TransportLayerOption{sip.WithTransportLayerLogger(slog),
		sip.WithTransportLayerReadFilter(e.sl.filter(e.cfg.ReadFilter))}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("sipward"), sipgo.WithUserAgentHostname(ext),
		sipgo.WithUserAgentTransportLayerOptions(tpOpts...),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slog),
			sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {})))
	if err != nil {
		return addrs, fmt.Errorf("edge: new user agent: %w", err)
	}
	e.ua = ua
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog))
	if err != nil {
		return addrs, fmt.Errorf("edge: new server: %w", err)
	}
	e.srv = srv
	e.uct = newUDPClientLayer(sock, e.timers, ua.TransactionLayer(), ua.TransportLayer())

	b := &b2bua{clients: map[string]*sipgo.Client{}, contacts: map[string]sip.Uri{}, host: ext, calls: newCallTable(),
		log: e.log, t1: sip.T1, inviteTTL: e.cfg.InviteTimeout}
	listen := map[string]string{pipeline.UDP: addrs.UDP, pipeline.TCP: addrs.TCP}
	if addrs.TLS != "" {
		listen[pipeline.TLS] = addrs.TLS
	}
	for tr, a := range listen {
		_, p, _ := net.SplitHostPort(a)
		pn, _ := strconv.Atoi(p)
		opts := []sipgo.ClientOption{sipgo.WithClientHostname(ext), sipgo.WithClientPort(pn), sipgo.WithClientLogger(slog)}
		if tr == pipeline.UDP {
			// Requests to new destinations leave from the listening socket,
			// so that IP-authenticated peers and NAT bindings see our port.
			opts = append(opts, sipgo.WithClientConnectionAddr(a))
		}
		cl, err := sipgo.NewClient(ua, opts...)
		if err != nil {
			return addrs, fmt.Errorf("edge: new %s client: %w", tr, err)
		}
		if tr == pipeline.UDP {
			cl.TxRequester = e.uct
		}
		b.clients[tr] = cl
		ct := sip.Uri{Scheme: "sip", User: "sipward", Host: ext, Port: pn}
		if tr != pipeline.UDP {
			ct.UriParams = sip.HeaderParams{{K: "transport", V: tr}}
		}
		if tr == pipeline.TLS {
			ct.Scheme = "sips"
		}
		b.contacts[tr] = ct
	}
	e.b = b
	if e.cfg.Registrar != nil {
		e.cfg.Registrar.attach(e)
	}
	var bindings func() float64
	if e.cfg.Registrar != nil {
		bindings = func() float64 { return float64(e.cfg.Registrar.Count()) }
	} else {
		bindings = func() float64 { return 0 }
	}
	e.m, err = newMetrics(e.cfg.Registry, func() float64 { return float64(b.calls.count.Load()) }, bindings,
		func() float64 { return float64(e.stx.count() + e.uct.count()) })
	if err != nil {
		return addrs, err
	}
	b.metrics = e.m
	e.chains = e.buildChains()

	srv.OnInvite(e.handle)
	srv.OnRegister(e.handle)
	srv.OnOptions(e.handle)
	srv.OnBye(e.handle)
	srv.OnAck(e.handle)
	srv.OnCancel(e.handle)
	srv.OnNoRoute(e.handle)
	for _, m := range []sip.RequestMethod{sip.UPDATE, sip.INFO, sip.MESSAGE, sip.REFER, sip.NOTIFY, sip.SUBSCRIBE, sip.PRACK, sip.PUBLISH} {
		srv.OnRequest(m, e.handle)
	}

	serve := func(name string, f func() error) {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := f(); err != nil && !isClosedErr(err) {
				e.log.Error("edge: listener stopped", "listener", name, "err", err)
			}
		}()
	}
	e.sl.workers(ctx, &e.wg)
	serve("udp", func() error { return srv.ServeUDP(e.feed) })
	for range udpReaders() {
		e.wg.Add(1)
		go func() { defer e.wg.Done(); e.readUDP(e.sock, e.feed) }()
	}
	serve("tcp", func() error { return srv.ServeTCP(e.tcp) })
	if e.tls != nil {
		serve("tls", func() error { return srv.ServeTLS(e.tls) })
	}
	if e.cfg.Keepalive > 0 {
		e.wg.Add(1)
		go func() { defer e.wg.Done(); e.keepalive(ctx) }()
	}
	if e.cfg.Registrar != nil {
		e.wg.Add(1)
		go func() { defer e.wg.Done(); e.cfg.Registrar.run(ctx) }()
	}
	e.wg.Add(1)
	go func() { // the warm pool shrinks back after a burst
		defer e.wg.Done()
		t := time.NewTicker(warmTrimEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				e.warm.trim()
			}
		}
	}()
	e.log.Info("sip edge listening", "udp", addrs.UDP, "tcp", addrs.TCP, "tls", addrs.TLS, "host", ext)
	return addrs, nil
}

func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "use of closed network connection")
}

// advertisedHost picks the host to put in Via/Contact when the listen
// address is unspecified: the first non-loopback IPv4 address, else 127.0.0.1.
func advertisedHost(ip net.IP) string {
	if ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// Drain stops taking new calls (503 with Retry-After) and waits up to
// timeout for active calls to end; then it hangs up the rest. Close after.
func (e *Edge) Drain(ctx context.Context) {
	select {
	case <-e.draining:
	default:
		close(e.draining)
	}
	if e.b == nil {
		return
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for e.b.calls.count.Load() > 0 {
		select {
		case <-ctx.Done():
			for _, c := range e.b.calls.all() {
				e.b.end(c, true, true, "shutdown")
			}
			time.Sleep(200 * time.Millisecond) // let the BYEs leave
			return
		case <-t.C:
		}
	}
}

// Close stops the listeners and the stack.
func (e *Edge) Close() error {
	if e.stop != nil {
		e.stop()
	}
	if e.feed != nil {
		e.feed.Close()
	}
	if e.udp != nil {
		e.udp.Close()
	}
	if e.stx != nil {
		e.stx.close()
	}
	if e.uct != nil {
		e.uct.close()
	}
	if e.timers != nil {
		e.timers.stop()
	}
	if e.tcp != nil {
		e.tcp.Close()
	}
	if e.tls != nil {
		e.tls.Close()
	}
	if e.ua != nil {
		e.ua.Close()
	}
	e.wg.Wait()
	e.warm.stop()
	return nil
}

// Calls lists active calls, optionally of one account.
func (e *Edge) Calls(accountID int64) []CallView {
	out := []CallView{}
	if e.b == nil {
		return out
	}
	for _, c := range e.b.calls.all() {
		c.mu.Lock()
		v := c.view
		c.mu.Unlock()
		if accountID == 0 || v.AccountID == accountID {
			out = append(out, v)
		}
	}
	return out
}

// Decisions lists recent decisions, newest first.
func (e *Edge) Decisions(f DecisionFilter) []Decision { return e.decisions.list(f) }

// Handle is what every sipgo request handler calls: it classifies the
// request, runs its chain, and answers the Result on tx. It is exported for
// fuzzing and benchmarks, which drive the real chain without sockets.
func (e *Edge) Handle(req *sip.Request, tx sip.ServerTransaction) { e.serve(req, tx) }

// TakeDatagram offers a UDP datagram from src to the stateless path, as the
// UDP reader does, and serves it on the caller's goroutine; it reports
// whether the datagram was taken (otherwise sipgo would have parsed it). It
// is exported for fuzzing; the edge must have been started.
func (e *Edge) TakeDatagram(data []byte, src netip.AddrPort) bool { return e.sl.take(data, src, true) }

// Panics returns how many handler panics were recovered (each answered 500).
func (e *Edge) Panics() float64 {
	var m dto.Metric
	_ = e.m.panics.Write(&m)
	return m.GetCounter().GetValue()
}

// handle is every sipgo request handler: it serves the request on a warm
// worker (warm.go) while sipgo's goroutine waits.
func (e *Edge) handle(req *sip.Request, tx sip.ServerTransaction) {
	e.warm.run(func() { e.serve(req, tx) })
}

// serveUDP serves a request taken by the UDP server transactions: on a warm
// worker without waiting (the caller is the UDP reader), or inline. tx is
// nil for the ACK of a 2xx; a transaction the handler left without a final
// answer ends when it returns.
func (e *Edge) serveUDP(req *sip.Request, tx sip.ServerTransaction, inline bool) {
	f := func() {
		e.serve(req, tx)
		if t, ok := tx.(*udpTx); ok {
			t.handled()
		}
	}
	if inline {
		f()
		return
	}
	e.warm.spawn(f)
}

// serve classifies a request, runs its chain, and answers the Result: on tx,
// or statelessly over UDP when tx is nil (stateless.go).
func (e *Edge) serve(req *sip.Request, tx sip.ServerTransaction) {
	now := e.now()
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return // no usable source address: nothing to answer to
	}
	r := &pipeline.Request{Msg: req, Source: netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), Transport: transportOf(req), Now: now, Tx: tx,
		Snap: e.cfg.Snapshot()}
	defer func() {
		if p := recover(); p != nil {
			e.m.panics.Inc()
			if e.panicLog.allow(e.now()) {
				e.log.Error("edge: panic in request handler (answered 500)", "method", req.Method, "panic", fmt.Sprint(p))
			}
			e.answer(r, pipeline.Reject("edge", 500, "Server Internal Error", "panic"))
		}
	}()
	if tx == nil && !req.IsAck() {
		e.m.stateless.Inc()
	}

	// In-dialog requests belong to a call; no authentication (the dialog's tags are checked).
	ch := e.chains.other
	inDialog := req.IsAck() || req.IsCancel() || hasToTag(req)
	if inDialog {
		ch = e.chains.dialog
	}
	switch {
	case inDialog:
	case req.Method == sip.INVITE:
		ch = e.chains.invite
		select {
		case <-e.draining:
			e.answer(r, pipeline.Reject("edge", 503, "Service Unavailable", "draining for shutdown", sip.NewHeader("Retry-After", "30")))
			return
		default:
		}
	case req.Method == sip.REGISTER:
		ch = e.chains.register
	case req.Method == sip.OPTIONS:
		ch = e.chains.options
	}
	res, err := ch.ServeSIP(context.Background(), r)
	if err != nil {
		e.m.failures.Inc()
		if e.failLog.allow(now) {
			e.log.Error("edge: request failed (answered 503)", "method", req.Method, "err", err)
		}
		res = pipeline.Reject("edge", 503, "Service Unavailable", "technical failure: "+err.Error())
		res.Why = "technical failure"
	}
	if !res.Answered() {
		e.answer(r, res)
	}
	e.m.requests.WithLabelValues(string(req.Method), answerClass(res.Status, res.Drop)).Inc()
	if !inDialog && (req.Method == sip.INVITE || req.Method == sip.REGISTER) {
		e.record(r, res, err)
	}
}

func hasToTag(req *sip.Request) bool {
	to := req.To()
	return to != nil && to.Params.Has("tag")
}

func transportOf(req *sip.Request) string {
	switch req.Transport() {
	case "TCP":
		return pipeline.TCP
	case "TLS":
		return pipeline.TLS
	}
	return pipeline.UDP
}

// inDialog routes ACK, CANCEL and requests with a To tag to their call. It
// returns the status it answered itself (481 for no call), or 0 when the
// request went to the other leg (or, an ACK, needed nothing).
func (e *Edge) inDialog(r *pipeline.Request) (status int) {
	req := r.Msg
	c, fromA := e.b.calls.find(req.CallID().Value())
	if c == nil {
		if req.IsAck() {
			// An ACK for a non-2xx final is absorbed by its transaction; a stray one needs nothing.
			return 0
		}
		respond(r.Tx, req, 481, "Call/Transaction Does Not Exist")
		return 481
	}
	if req.IsCancel() {
		// The transaction layer matched CANCELs of pending INVITEs already; this one matched nothing.
		respond(r.Tx, req, 481, "Call/Transaction Does Not Exist")
		return 481
	}
	e.b.inDialog(req, r.Tx, c, fromA)
	return 0
}

// record keeps the decision for an INVITE or REGISTER.
func (e *Edge) record(r *pipeline.Request, res pipeline.Result, err error) {
	d := Decision{Time: r.Now, Method: string(r.Msg.Method), Source: r.Source.String(), Transport: r.Transport,
		AccountID: r.Auth.AccountID, Account: r.Auth.AccountName, Auth: r.Auth.Method.String(),
		Endpoint: r.Auth.EndpointID, SIPUser: r.Auth.SIPUserID, trace: r.Trace,
		Stage: res.Stage, Status: res.Status, Why: res.Why}
	if cid := r.Msg.CallID(); cid != nil {
		d.CallID = cid.Value()
	}
	if f := r.Msg.From(); f != nil {
		d.From = f.Address.User
	}
	d.To = r.Msg.Recipient.User
	switch {
	case err != nil:
		d.Result = "failed"
	case res.Drop:
		d.Result = "dropped"
	case res.Status >= 200 && res.Status < 300:
		d.Result = "accepted"
	default:
		d.Result = "rejected"
	}
	e.decisions.add(d)
	e.m.decisions.WithLabelValues(nonEmpty(res.Stage, "edge"), answerClass(res.Status, res.Drop)).Inc()
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// rateLimiter allows one event per interval (floods must not become log floods).
type rateLimiter struct {
	mu    sync.Mutex
	every time.Duration
	last  time.Time
}

func (l *rateLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) < l.every {
		return false
	}
	l.last = now
	return true
}

// limitedHandler passes Warn and above at most once per interval, and
// never passes sipgo's Info/Debug chatter above our own level.
type limitedHandler struct {
	h   slog.Handler
	lim *rateLimiter
}

func (h *limitedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.h.Enabled(ctx, l)
}

func (h *limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.lim.allow(time.Now()) {
		return nil
	}
	// Never log whole packets: keep the message and drop attributes.
	nr := slog.NewRecord(r.Time, r.Level, "sipgo: "+r.Message, r.PC)
	return h.h.Handle(ctx, nr)
}

func (h *limitedHandler) WithAttrs(as []slog.Attr) slog.Handler { return h }
func (h *limitedHandler) WithGroup(string) slog.Handler         { return h }
