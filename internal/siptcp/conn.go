package siptcp

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
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
	closed    atomic.Bool // Close was called: reads end, writes linger
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
	// Checked after the deadline is set: a Close before this point is seen
	// here, one after it sets its own deadline (now) after ours.
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.h.read(b, c.Conn.Read, time.Now)
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

// closeLinger is how long a closed connection still takes writes: sipgo
// closes a connection at once when a message on it does not parse, while
// the answer to the message before it may still be on its way (RFC 4475
// dblreq). Reads end at once.
const closeLinger = time.Second

// Close stops reading at once and closes the connection closeLinger later,
// so that answers already under way still leave; it counts it closed
// once.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		_ = c.Conn.SetReadDeadline(time.Now())
		time.AfterFunc(closeLinger, func() {
			_ = c.Conn.Close()
			c.sources.closed(c.remote.Addr(), c.cfg.Now())
			c.keep.drop(c.remote)
		})
	})
	return nil
}
