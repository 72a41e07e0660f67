package siptcp

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"time"
)

// conn is a guarded connection: it sets the read deadline of each read
// from where the framer says the stream is, runs the TLS handshake under a
// deadline, and counts itself closed once.
type conn struct {
	net.Conn
	cfg     *Config
	sources *sources
	keep    *keeps
	remote  netip.AddrPort
	tls     *tls.Conn // nil over TCP

	mu        sync.Mutex // reads are sipgo's one goroutine; Close may come from anywhere
	h         holdLF
	handshook bool
	closeOnce sync.Once
}

// Read reads with the deadline the stream's state calls for: the message
// under way must be complete within HeaderTimeout of its first byte; between
// messages the connection may idle for IdleTimeout, or until Keep's time.
func (c *conn) Read(b []byte) (int, error) {
	now := time.Now() // deadlines are the kernel's: wall time, not Config.Now
	if c.tls != nil && !c.handshook {
		if err := c.handshake(now); err != nil {
			return 0, err
		}
	}
	deadline := c.deadline(now)
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	off := 0
	c.mu.Lock()
	if c.h.held && len(b) > 1 {
		b[0], off = '\n', 1
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(b[off:])
	c.mu.Lock()
	n = c.h.pass(b, off, n, time.Now(), err != nil)
	c.mu.Unlock()
	return n, err
}

// deadline is the read deadline at now.
func (c *conn) deadline(now time.Time) time.Time {
	cfg := c.cfg
	c.mu.Lock()
	inMessage, start := c.h.f.inMessage(), c.h.f.start
	c.mu.Unlock()
	if inMessage {
		return start.Add(cfg.HeaderTimeout)
	}
	idle := now.Add(cfg.IdleTimeout)
	if until := c.keep.get(c.remote); until.After(idle) {
		return until
	}
	return idle
}

// handshake runs the TLS handshake within HeaderTimeout; a failure is
// reported as a flood (nobody who means to talk SIP fails it).
func (c *conn) handshake(now time.Time) error {
	cfg := c.cfg
	_ = c.Conn.SetDeadline(now.Add(cfg.HeaderTimeout))
	err := c.tls.Handshake()
	_ = c.Conn.SetDeadline(time.Time{})
	if err != nil {
		if cfg.OnFlood != nil {
			cfg.OnFlood(c.remote.Addr())
		}
		return err
	}
	c.handshook = true
	return nil
}

// Close closes the connection and counts it closed, once.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.sources.closed(c.remote.Addr(), c.cfg.Now())
		c.keep.drop(c.remote)
	})
	return err
}
