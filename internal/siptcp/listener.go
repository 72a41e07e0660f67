// Package siptcp guards SIP over stream transports (TCP and TLS), which
// sipgo serves: it wraps the listeners the edge hands to sipgo so that one
// source cannot hold or churn connections without bound, and a connection
// cannot be held open by a client that sends nothing, or a message one
// byte at a time.
//
//   - Accept: a banned source is closed at once; a source past MaxPerSource
//     open connections, or past RatePerSource new ones in a second, is
//     closed at once and reported (OnFlood: the firewall counts it and bans a
//     source that keeps at it). Customers (IP endpoints, the core, sources
//     that authenticated recently) are exempt from both limits.
//   - TLS: the handshake runs on the connection's first read, within
//     HeaderTimeout; one that fails is reported too (a handshake flood is
//     banned like an authentication flood).
//   - Reads: while a message is coming in it must be complete within
//     HeaderTimeout of its first byte (a slow-loris client is cut off); a
//     connection idle between messages is closed after IdleTimeout, or later
//     when Keep says it carries a registration. CRLF keepalives (RFC 5626
//     §4.4.1) keep it alive; sipgo answers them.
//
// Framing is tracked (framer.go) to tell "inside a message" from "between
// messages", to mend two things sipgo's stream parser would refuse — a
// folded header line cut from its predecessor by a read, and start and
// header lines ended by a bare LF (made CRLF) — and nothing more: sipgo
// parses the stream. Files: listener.go (Accept),
// conn.go (reads, the handshake, close), state.go (per-source counts, kept
// connections), framer.go, config.go.
package siptcp

import (
	"crypto/tls"
	"net"
	"net/netip"
	"time"
)

// Listener is a guarded net.Listener. Build it with NewListener.
type Listener struct {
	net.Listener
	cfg     Config
	sources sources
	keep    keeps
}

// NewListener guards ln.
func NewListener(ln net.Listener, cfg Config) *Listener {
	if cfg.MaxPerSource == 0 {
		cfg.MaxPerSource = DefaultMaxPerSource
	}
	if cfg.RatePerSource == 0 {
		cfg.RatePerSource = DefaultRatePerSource
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Listener{Listener: ln, cfg: cfg, sources: sources{m: map[netip.Addr]*source{}}, keep: keeps{m: map[netip.AddrPort]time.Time{}}}
}

// Accept returns the next connection the limits allow.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		remote := addrPortOf(c.RemoteAddr())
		addr := remote.Addr()
		if l.cfg.Banned != nil && l.cfg.Banned(addr) {
			c.Close()
			continue
		}
		customer := l.cfg.Customer != nil && l.cfg.Customer(addr)
		if !l.sources.admit(addr, l.cfg.Now(), customer, l.cfg.MaxPerSource, l.cfg.RatePerSource) {
			c.Close()
			if l.cfg.OnFlood != nil {
				l.cfg.OnFlood(addr)
			}
			continue
		}
		gc := &conn{Conn: c, cfg: &l.cfg, sources: &l.sources, keep: &l.keep, remote: remote}
		if l.cfg.TLS != nil {
			gc.tls = tls.Server(c, l.cfg.TLS)
			gc.Conn = gc.tls
		}
		return gc, nil
	}
}

// Keep lets the connection from remote idle until until (it carries a
// registration that lasts that long), instead of IdleTimeout. A later
// call replaces an earlier one; nothing is kept past the connection.
func (l *Listener) Keep(remote netip.AddrPort, until time.Time) { l.keep.set(remote, until) }

// Open returns how many connections are open.
func (l *Listener) Open() int { return l.sources.open() }

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
