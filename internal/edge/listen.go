package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/sipnorm"
	"github.com/sipward/sipward/internal/siptcp"
	"github.com/sipward/sipward/internal/sipudp"
	"github.com/sipward/sipward/internal/warm"
)

// Listen opens the edge's listeners — UDP and TCP on SIPAddr's port, TLS on
// SIPSAddr when TLS is set — and builds sipgo's user agent, the UDP
// transport and the Sender on them. Nothing is served until Serve.
func Listen(ctx context.Context, cfg Config) (*Edge, error) {
	if cfg.Snapshot == nil {
		return nil, errors.New("edge: a Snapshot source is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	setTimers(cfg.T1, cfg.TxLinger)
	e := &Edge{cfg: cfg, log: cfg.Log, decisions: newDecisionLog(cfg.Decisions), now: cfg.Now, draining: make(chan struct{}),
		warm: warm.New(256), panicLog: rateLimiter{every: 10 * time.Second}, failLog: rateLimiter{every: 10 * time.Second}}
	udp, err := e.listen(ctx)
	if err != nil {
		return nil, err
	}
	ext := cfg.ExternalHost
	if ext == "" {
		ext = advertisedHost(udp.LocalAddr().(*net.UDPAddr).IP)
	}
	slog := sipgoLogger(e.log)
	parser := sipnorm.Parser() // one parser, the same over every transport
	e.ua, err = sipgo.NewUA(sipgo.WithUserAgent("sipward"), sipgo.WithUserAgentHostname(ext), sipgo.WithUserAgentParser(parser),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slog),
			sip.WithTransportLayerReadFilter(sipudp.PassDatagrams(cfg.ReadFilter))),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slog),
			sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {})))
	if err != nil {
		e.closeListeners(udp)
		return nil, fmt.Errorf("edge: new user agent: %w", err)
	}
	if e.srv, err = sipgo.NewServer(e.ua, sipgo.WithServerLogger(slog)); err != nil {
		e.closeListeners(udp)
		return nil, fmt.Errorf("edge: new server: %w", err)
	}
	e.tp = sipudp.New(udp, sipudp.Config{Handle: e.serve, Spawn: e.warm.Spawn, ReadFilter: cfg.ReadFilter, Unknown: e.unknown, Parser: parser,
		Transactions: e.ua.TransactionLayer(), Transports: e.ua.TransportLayer(), Now: cfg.Now})
	if e.sender, err = e.newSender(ext, slog); err != nil {
		e.Close()
		return nil, err
	}
	if e.m, err = newMetrics(cfg.Registry, e.tp.Counts); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// setTimers sets sipgo's process-wide timers: T1 (and T2, T4 at RFC 3261's
// 4 s and 5 s) and how long finished transactions are kept. They are kept
// linger, not 64×T1: sipgo's (TCP, TLS) keep their parsed messages, and at
// 32 s they were most of the live heap (~1 GB at 2,000 calls/s) and so of
// the collector's pauses; the UDP transport's read the same timers (they
// keep only the answer's bytes). A retransmission later than that (a peer
// that heard none of our answers for that long) is served as a new
// request: a BYE gets 481.
func setTimers(t1, linger time.Duration) {
	if t1 > 0 && t1 != sip.T1 {
		sip.SetTimers(t1, 4*time.Second, 5*time.Second)
	}
	if linger <= 0 {
		linger = 5 * time.Second
	}
	linger = min(linger, 64*sip.T1)
	sip.Timer_D, sip.Timer_J, sip.Timer_L, sip.Timer_M = linger, linger, linger, linger
}

// listen opens UDP and TCP on the same port, and TLS when configured. Port
// 0 lets the kernel pick UDP's; that number may be taken for TCP, so then a
// few picks are tried.
func (e *Edge) listen(ctx context.Context) (*net.UDPConn, error) {
	host, port, err := net.SplitHostPort(e.cfg.SIPAddr)
	if err != nil {
		return nil, fmt.Errorf("edge: sip-addr %q: %w", e.cfg.SIPAddr, err)
	}
	lc := net.ListenConfig{}
	var udp net.PacketConn
	for attempt := 1; ; attempt++ {
		if udp, err = lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, port)); err != nil {
			return nil, fmt.Errorf("edge: listen udp %s: %w", e.cfg.SIPAddr, err)
		}
		udpPort := udp.LocalAddr().(*net.UDPAddr).Port
		var tcp net.Listener
		if tcp, err = lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(udpPort))); err == nil {
			e.tcp = siptcp.NewListener(tcp, e.cfg.Streams)
			break
		}
		udp.Close()
		if port != "0" || attempt == 10 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("edge: listen tcp %s: %w", e.cfg.SIPAddr, err)
		}
	}
	e.addrs.UDP, e.addrs.TCP = udp.LocalAddr().String(), e.tcp.Addr().String()
	if e.cfg.TLS != nil {
		ln, err := lc.Listen(ctx, "tcp", e.cfg.SIPSAddr)
		if err != nil {
			e.closeListeners(udp.(*net.UDPConn))
			return nil, fmt.Errorf("edge: listen tls %s: %w", e.cfg.SIPSAddr, err)
		}
		streams := e.cfg.Streams
		streams.TLS = e.cfg.TLS
		e.tls = siptcp.NewListener(ln, streams)
		e.addrs.TLS = ln.Addr().String()
	}
	return udp.(*net.UDPConn), nil
}

func (e *Edge) closeListeners(udp *net.UDPConn) {
	udp.Close()
	e.tcp.Close()
	if e.tls != nil {
		e.tls.Close()
	}
}

// newSender builds one sipgo client per listening transport, with
// sipward's Contact on each. Over UDP, requests to new destinations leave
// from the listening socket, through the UDP transport's client
// transactions.
func (e *Edge) newSender(ext string, log *slog.Logger) (*Sender, error) {
	s := &Sender{clients: map[string]*sipgo.Client{}, contacts: map[string]sip.Uri{}, host: ext}
	listen := map[string]string{pipeline.UDP: e.addrs.UDP, pipeline.TCP: e.addrs.TCP}
	if e.addrs.TLS != "" {
		listen[pipeline.TLS] = e.addrs.TLS
	}
	for tr, a := range listen {
		_, p, _ := net.SplitHostPort(a)
		pn, _ := strconv.Atoi(p)
		opts := []sipgo.ClientOption{sipgo.WithClientHostname(ext), sipgo.WithClientPort(pn), sipgo.WithClientLogger(log)}
		if tr == pipeline.UDP {
			opts = append(opts, sipgo.WithClientConnectionAddr(a))
		}
		cl, err := sipgo.NewClient(e.ua, opts...)
		if err != nil {
			return nil, fmt.Errorf("edge: new %s client: %w", tr, err)
		}
		if tr == pipeline.UDP {
			cl.TxRequester = e.tp.Requester()
		}
		s.clients[tr] = cl
		ct := sip.Uri{Scheme: "sip", User: "sipward", Host: ext, Port: pn}
		if tr != pipeline.UDP {
			ct.UriParams = sip.HeaderParams{{K: "transport", V: tr}}
		}
		if tr == pipeline.TLS {
			ct.Scheme = "sips"
		}
		s.contacts[tr] = ct
	}
	return s, nil
}

// unknown reports whether an INVITE from addr can only be challenged or
// refused: it is neither the core nor inside a sends endpoint's prefix.
// The UDP transport answers such INVITEs without a transaction.
func (e *Edge) unknown(addr netip.Addr) bool {
	snap := e.cfg.Snapshot()
	return snap != nil && !snap.IsCore(addr) && !snap.KnownSource(addr)
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
