package siptcp

import (
	"crypto/tls"
	"net/netip"
	"time"
)

// Defaults of the Config fields left zero.
const (
	DefaultMaxPerSource  = 200
	DefaultRatePerSource = 100
	DefaultHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout   = 2 * time.Minute
)

// Config configures a guarded listener.
type Config struct {
	// MaxPerSource is how many connections one address may hold open; 0:
	// DefaultMaxPerSource, negative: no limit.
	MaxPerSource int
	// RatePerSource is how many connections one address may open per
	// second; 0: DefaultRatePerSource, negative: no limit.
	RatePerSource int
	// HeaderTimeout bounds how long a message may take to arrive from its
	// first byte, and a TLS handshake; 0: DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing between messages
	// for this long (unless Keep says otherwise); 0: DefaultIdleTimeout.
	IdleTimeout time.Duration
	// TLS, when set, serves TLS on the accepted connections.
	TLS *tls.Config
	// Customer reports a source exempt from the per-source limits (an IP
	// endpoint, the core, a source that authenticated recently). nil: none.
	Customer func(netip.Addr) bool
	// Banned reports a source to close at once. nil: none.
	Banned func(netip.Addr) bool
	// OnFlood hears of each connection refused for a limit, and of each
	// failed TLS handshake (the firewall's detector). nil: nobody.
	OnFlood func(netip.Addr)
	// Now is the clock of the per-second connection counts; nil: time.Now.
	// Read deadlines are the kernel's, on wall time.
	Now func() time.Time
}
