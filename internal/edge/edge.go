// Package edge is where SIP meets sipward's pipeline: it owns the listeners
// (UDP through package sipudp, TCP and TLS through sipgo), turns each
// inbound request into a pipeline.Request, runs it through the chain of its
// method (the order is in chain.go), and is the only place that turns a
// pipeline.Result into a SIP answer (answer.go). It keeps the decision log
// (decisions.go), the worker pool handlers run on (package warm), and the
// metrics of requests and decisions.
//
// What runs at the end of the chains is not here: the B2BUA (package b2bua)
// for INVITEs and in-dialog requests, the registrar (package registrar) for
// REGISTERs. They send sipward's own requests through the edge's Sender
// (sender.go): one sipgo client per transport, leaving from the listening
// sockets.
//
// Files, each one job: edge.go (the Edge and its accessors), listen.go
// (opening the listeners, sipgo's user agent, the UDP transport), run.go
// (serving: the chains and the listeners' goroutines), serve.go (one
// request: classify, run its chain, answer, record), answer.go (Result →
// SIP answer), chain.go, sender.go, decisions.go, metrics.go,
// log.go (rate-limited logging).
package edge

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/siptcp"
	"github.com/sipward/sipward/internal/sipudp"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/warm"
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
	// Streams guards the TCP and TLS listeners (per-source limits,
	// timeouts); its TLS is set from TLS.
	Streams siptcp.Config
	// Snapshot returns the serving configuration snapshot; each request is
	// decided with the one loaded when it arrived.
	Snapshot func() *snapshot.Snapshot
	// Decisions is how many decisions the log keeps (default 10000).
	Decisions int
	// T1 is SIP timer T1 (RFC 3261; default 500 ms), which retransmissions
	// and transaction timeouts (64×T1) scale with. TxLinger is how long a
	// finished transaction absorbs retransmissions (timers D, J, L, M;
	// default 5 s, at most 64×T1). Both are sipgo's process-wide timers:
	// Listen sets them.
	T1, TxLinger time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Series counts each INVITE and REGISTER decision for the dashboard
	// (package series); nil: not counted.
	Series Series
}

// Series is where the edge counts its decisions (a *series.Recorder).
type Series interface {
	Record(e series.Event, now time.Time)
}

// Edge is a SIP edge node's listeners and request path. Listen opens it,
// Serve runs it, Close stops it.
type Edge struct {
	cfg       Config
	log       *slog.Logger
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	sender    *Sender
	tp        *sipudp.Transport // the UDP transport
	chains    chains
	decisions *decisionLog
	m         *metrics
	now       func() time.Time
	addrs     Addrs

	tcp, tls *siptcp.Listener // nil tls: no TLS listener
	warm     *warm.Pool       // long-lived goroutines for the handlers
	stop     context.CancelFunc
	wg       sync.WaitGroup
	panicLog rateLimiter
	failLog  rateLimiter
	draining chan struct{}
}

// Addrs are the addresses the edge listens on.
type Addrs struct {
	UDP, TCP, TLS string
}

// Addrs returns the addresses the edge listens on.
func (e *Edge) Addrs() Addrs { return e.addrs }

// Sender sends sipward's own requests (the B2BUA's, the registrar's).
func (e *Edge) Sender() *Sender { return e.sender }

// StopNewCalls makes the edge answer new INVITEs 503 with Retry-After (a
// draining node); calls in progress go on.
func (e *Edge) StopNewCalls() {
	select {
	case <-e.draining:
	default:
		close(e.draining)
	}
}

// Close stops the listeners and the stack, and waits for the edge's
// goroutines.
func (e *Edge) Close() error {
	if e.stop != nil {
		e.stop()
	}
	if e.tp != nil {
		e.tp.Close()
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
	e.warm.Stop()
	return nil
}

// KeepStream lets the TCP or TLS connection from src idle until until:
// it carries a registration that lasts that long.
func (e *Edge) KeepStream(src netip.AddrPort, transport string, until time.Time) {
	switch {
	case transport == "tcp":
		e.tcp.Keep(src, until)
	case transport == "tls" && e.tls != nil:
		e.tls.Keep(src, until)
	}
}

// Decisions lists recent decisions, newest first.
func (e *Edge) Decisions(f DecisionFilter) []Decision { return e.decisions.list(f) }

// TakeDatagram offers a UDP datagram from src to the UDP transport, as its
// readers do, and serves it on the caller's goroutine; it reports whether
// the datagram was taken (otherwise sipgo would have parsed it). It is
// exported for fuzzing.
func (e *Edge) TakeDatagram(data []byte, src netip.AddrPort) bool { return e.tp.Take(data, src) }

// Panics returns how many handler panics were recovered (each answered 500).
func (e *Edge) Panics() float64 {
	var m dto.Metric
	_ = e.m.panics.Write(&m)
	return m.GetCounter().GetValue()
}
