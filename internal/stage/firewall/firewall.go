// Package firewall is the first stage of the chain and sipgo's transport
// read filter: it drops messages from banned sources, before parsing when
// it can, guards against per-source datagram floods, and bans sources that
// fail authentication, leave their challenges unanswered, or scan. A source
// that authenticates is a customer: its challenges are not counted and its
// datagrams are not rate-guarded.
//
// Bans come from the store (operator and detection bans, passed in with
// SetBans whenever the configuration snapshot changes) and from the
// Detector, which puts its bans in force at once and persists them in the
// background. Lookups are one longest-prefix match in a bart table swapped
// atomically, and allocate nothing. With Config.Shared, failed
// authentications and unanswered challenges are counted across the nodes of
// a cluster (SharedCounts), with this node's own count as the fallback.
package firewall

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/store"
)

// Name is the stage name, as it appears in traces and Result.Stage.
const Name = "firewall"

// Stage returns the pipeline stage. It drops (pipeline.DropResult) a
// request from a banned, untrusted source, one that got past the read
// filter because the ban came between read and handling, or because the
// filter is not installed; anything else goes to next. It does not apply
// the rate guard (the read filter did), and allocates nothing on the pass
// path.
func (f *Firewall) Stage() pipeline.Stage {
	return func(next pipeline.Handler) pipeline.Handler {
		return &handler{f: f, next: next}
	}
}

type handler struct {
	f    *Firewall
	next pipeline.Handler
}

// Name returns "firewall".
func (h *handler) Name() string { return Name }

// ServeSIP drops r if its source is banned, or if it is a SIP scanner's
// (its User-Agent says so) from an untrusted source, which bans the
// source; otherwise it passes r to next and returns next's Result
// unchanged.
func (h *handler) ServeSIP(ctx context.Context, r *pipeline.Request) (pipeline.Result, error) {
	addr := canon(r.Source.Addr())
	if h.f.bans.banned(addr, r.Now) && !h.f.trusted(addr) {
		h.f.metrics.dropped[dropBanned].Inc()
		return pipeline.DropResult(Name, "source is banned"), nil
	}
	if h.f.det.threshold > 0 && scannerAgent(r.Msg) && !h.f.trusted(addr) {
		h.f.det.Failure(addr, Scanner, r.Now)
		h.f.metrics.dropped[dropScanner].Inc()
		return pipeline.DropResult(Name, "a SIP scanner's User-Agent"), nil
	}
	r.Trace.Pass(Name)
	return h.next.ServeSIP(ctx, r)
}

// ban puts a detection ban on addr in force and queues it for Persist. It
// reports false, and does nothing, when a detection ban made here is in
// force on addr already: concurrent failures ban a source once per node.
func (f *Firewall) ban(addr netip.Addr, kind Kind, now time.Time) bool {
	until := now.Add(f.banFor)
	b := store.Ban{
		Address:   hostBan(addr),
		Reason:    f.reasons[kind],
		Source:    store.BanDetection,
		CreatedAt: now,
		ExpiresAt: until,
	}
	local, dup := f.bans.addLocal(addr, now, until)
	if dup {
		return false
	}
	if !local {
		f.metrics.localOverflow.Inc()
	}
	f.metrics.bans[kind].Inc()
	if f.banned != nil {
		f.banned(now)
	}
	queued := f.enqueue(b)
	if n, ok := f.logLimit.allow(now); ok {
		f.log.Warn("stage/firewall: source banned",
			"addr", addr, "reason", b.Reason, "until", until,
			"local", local, "persist_queued", queued, "suppressed", n)
	}
	return true
}

// enqueue hands b to the persistence goroutine without blocking.
func (f *Firewall) enqueue(b store.Ban) bool {
	if f.persist == nil {
		return false
	}
	select {
	case f.queue <- b:
		return true
	default:
		f.metrics.persistDropped.Inc()
		return false
	}
}

// loop persists queued bans and, when sweep is set, runs the Detector's
// Sweep every second, until Close.
func (f *Firewall) loop(ctx context.Context, sweep bool) {
	defer close(f.done)
	var tick <-chan time.Time
	if sweep {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case b := <-f.queue:
			f.persistOne(ctx, b)
		case <-tick:
			f.det.Sweep(f.now())
		case <-f.stop:
			for {
				select {
				case b := <-f.queue:
					if ctx.Err() != nil {
						f.metrics.persistDropped.Inc()
						continue
					}
					f.persistOne(ctx, b)
				default:
					return
				}
			}
		}
	}
}

func (f *Firewall) persistOne(ctx context.Context, b store.Ban) {
	ctx, cancel := context.WithTimeout(ctx, f.persistTimeout)
	defer cancel()
	if err := f.persist(ctx, b); err == nil {
		if p, err := parseBanAddress(b.Address); err == nil && p.IsSingleIP() {
			f.bans.markPersisted(p.Addr())
		}
	} else {
		f.metrics.persistFailed.Inc()
		if n, ok := f.logLimit.allow(f.now()); ok {
			f.log.Error("stage/firewall: persist ban",
				"addr", b.Address, "until", b.ExpiresAt, "error", err, "suppressed", n)
		}
	}
}

// logLimiter caps the firewall's log lines and counts those it suppressed.
type logLimiter struct {
	mu         sync.Mutex
	lim        *rate.Limiter
	suppressed int
}

// allow reports whether a line may be logged at now, and how many were
// suppressed since the last one that was.
func (l *logLimiter) allow(now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lim.AllowN(now, 1) {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.suppressed = 0
	return n, true
}

var _ pipeline.Handler = (*handler)(nil)
