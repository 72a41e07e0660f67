package firewall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/sipward/sipward/internal/store"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultThreshold      = 10
	DefaultWindow         = 60 * time.Second
	DefaultBanFor         = time.Hour
	DefaultMaxTracked     = 100_000
	DefaultMaxLocalBans   = 100_000
	DefaultRatePerSource  = 200
	DefaultRateSlots      = 1 << 16
	DefaultPersistQueue   = 1024
	DefaultPersistTimeout = 5 * time.Second
	DefaultChallengeGrace = 10 * time.Second
	DefaultTrustAuth      = time.Hour
	DefaultAuthSlots      = 1 << 16

	maxRateSlots = 1 << 24
	maxAuthSlots = 1 << 24
	maxTracked   = 1 << 26
)

// Config configures the firewall. The zero Config is valid and means "all
// defaults": detection on (10 failures of one kind in 60 s ban the source
// for 1 h; unanswered challenges judged after 10 s; a source that
// authenticated is trusted with its challenges and its rate for an hour), a
// 200 packets/s per-source guard on UDP, no allow list, no persistence, no
// metrics registered.
type Config struct {
	// Threshold is how many failures of one Kind from one source within
	// Window ban the source. 0 means DefaultThreshold; negative turns
	// detection off (Detector.Failure does nothing).
	Threshold int
	// Window is the counting window. A source's count for a Kind starts at
	// its first failure and restarts Window later (a fixed window anchored
	// at the first failure). 0 means DefaultWindow.
	Window time.Duration
	// BanFor is how long a detection ban lasts. 0 means DefaultBanFor.
	BanFor time.Duration
	// ChallengeGrace is how long a source has to answer the challenge of a
	// credential-less INVITE before its challenges count against it
	// (UnknownSourceInvite). A phone or PBX answers a 407 within one round
	// trip; 10 s covers a lossy path's retransmissions. Capped at Window.
	// 0 means DefaultChallengeGrace.
	ChallengeGrace time.Duration
	// TrustAuthenticated is how long after its last successful digest
	// authentication a source is known as a customer: its credential-less
	// INVITEs and scanner-looking requests are not counted, and the rate
	// guard lets all its datagrams through (its SIP users' CPS and channel
	// limits apply after parsing). Failed authentications are counted all
	// the same. 0 means DefaultTrustAuth; negative remembers nobody.
	TrustAuthenticated time.Duration
	// AuthSlots is the size of the table of authenticated sources (rounded
	// up to a power of two, at most 2^24; 16 bytes a slot). 0 means
	// DefaultAuthSlots.
	AuthSlots int
	// MaxTracked caps the (source, Kind) pairs the Detector counts at once;
	// past it the oldest pair is forgotten (sipward_firewall_tracked_evicted_total).
	// It bounds memory under a spoofed-source flood: about 180 bytes a pair
	// (18 MiB at the default, measured after a flood of 1M sources).
	// 0 means DefaultMaxTracked.
	MaxTracked int
	// MaxLocalBans caps the detection bans applied locally while they are
	// not yet in the stored set passed to SetBans. Past it a detection ban is
	// still persisted, and takes effect when SetBans brings it back
	// (sipward_firewall_local_bans_overflow_total). 0 means DefaultMaxLocalBans.
	MaxLocalBans int

	// RatePerSource caps the datagrams (UDP) one source address may send per
	// second; the excess is dropped in the read filter, before parsing.
	// Trusted sources are exempt. Stream transports (TCP, TLS, WS) are not
	// rate-guarded: a read there is a chunk of a stream, not a message.
	// 0 means DefaultRatePerSource; negative turns the guard off.
	RatePerSource int
	// RateSlots is the size of the rate guard's table (rounded up to a power
	// of two, at most 2^24). Sources hash into slots; a source that takes
	// another's slot resets that one's count, so the table never grows and
	// the guard errs towards passing. 0 means DefaultRateSlots (65,536,
	// about 1.5 MiB).
	RateSlots int

	// Trusted reports addresses that are never banned by detection, never
	// rate-limited, and let through even when a stored ban covers them (so
	// adding an IP endpoint lifts a ban on its addresses at once): the IP
	// endpoints and the routing core. It is called on the slow paths only
	// (a failure, a banned or over-rate packet), must be safe for concurrent
	// use and should not allocate. nil trusts nobody.
	Trusted func(netip.Addr) bool

	// Shared counts failed authentications and unanswered challenges
	// across the nodes of a cluster (cluster.RedisFailures), so that the
	// Threshold-th failure from a source anywhere in the cluster bans it.
	// The Detector keeps its own count all the same and falls back to it
	// for a failure the shared count could not take
	// (sipward_firewall_shared_fallback_total). nil counts on this node
	// only.
	Shared SharedCounts

	// Persist stores a detection ban (Source store.BanDetection). It is
	// called from one background goroutine, never on the request path; the
	// ban is already in force locally when it is queued. nil keeps
	// detection bans local to this process.
	Persist func(ctx context.Context, b store.Ban) error
	// Banned, when set, is told of each detection ban this firewall makes,
	// once per ban, when it is put in force (the dashboard counts bans with
	// it); bans learnt from the store are not told.
	Banned func(now time.Time)
	// PersistQueue bounds the bans waiting for Persist; a ban that finds the
	// queue full is not persisted (sipward_firewall_persist_dropped_total)
	// but stays in force locally. 0 means DefaultPersistQueue.
	PersistQueue int
	// PersistTimeout bounds one Persist call. 0 means DefaultPersistTimeout.
	PersistTimeout time.Duration

	// Logger receives the Warn line of each detection ban (rate-limited to
	// 10/s, burst 20; the next line says how many were suppressed) and
	// persistence failures. nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics (see metrics.go). nil keeps them
	// unregistered; registering twice on one Registerer reuses the first
	// collectors.
	Registerer prometheus.Registerer
	// Now is the clock of the read filter (sipgo passes it no time) and of
	// SetBans. nil means time.Now. The stage takes time from Request.Now
	// and the Detector from its caller.
	Now func() time.Time
}

// Firewall holds the ban table, the read filter's rate guard and the
// Detector. It is safe for concurrent use. Build it with New; Close stops
// its persistence goroutine.
type Firewall struct {
	bans     banTable
	rate     *rateGuard // nil: guard off
	authed   *authTable // nil: TrustAuthenticated off
	det      Detector
	trusted  func(netip.Addr) bool
	now      func() time.Time
	banFor   time.Duration
	reasons  [numKinds]string
	metrics  *metrics
	log      *slog.Logger
	logLimit logLimiter

	persist        func(context.Context, store.Ban) error
	banned         func(time.Time)
	persistTimeout time.Duration
	queue          chan store.Ban
	stop           chan struct{}
	done           chan struct{}
	stopOnce       sync.Once
	cancel         context.CancelFunc
}

// New validates cfg, applies defaults and returns a Firewall with an empty
// ban table. When cfg.Persist is set it starts one goroutine that Close
// stops.
func New(cfg Config) (*Firewall, error) {
	var errs []error
	nonNeg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d: must not be negative", name, v))
		}
	}
	nonNeg("window", int64(cfg.Window))
	nonNeg("ban_for", int64(cfg.BanFor))
	nonNeg("max_tracked", int64(cfg.MaxTracked))
	nonNeg("max_local_bans", int64(cfg.MaxLocalBans))
	nonNeg("rate_slots", int64(cfg.RateSlots))
	nonNeg("persist_queue", int64(cfg.PersistQueue))
	nonNeg("persist_timeout", int64(cfg.PersistTimeout))
	nonNeg("challenge_grace", int64(cfg.ChallengeGrace))
	nonNeg("auth_slots", int64(cfg.AuthSlots))
	if cfg.MaxTracked > maxTracked {
		errs = append(errs, fmt.Errorf("max_tracked: %d: must be at most %d", cfg.MaxTracked, maxTracked))
	}
	if cfg.RateSlots > maxRateSlots {
		errs = append(errs, fmt.Errorf("rate_slots: %d: must be at most %d", cfg.RateSlots, maxRateSlots))
	}
	if cfg.AuthSlots > maxAuthSlots {
		errs = append(errs, fmt.Errorf("auth_slots: %d: must be at most %d", cfg.AuthSlots, maxAuthSlots))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("stage/firewall: config: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}

	f := &Firewall{
		trusted:        cfg.Trusted,
		now:            cfg.Now,
		banFor:         orDefault(cfg.BanFor, DefaultBanFor),
		metrics:        m,
		log:            cfg.Logger,
		logLimit:       logLimiter{lim: rate.NewLimiter(10, 20)},
		persist:        cfg.Persist,
		banned:         cfg.Banned,
		persistTimeout: orDefault(cfg.PersistTimeout, DefaultPersistTimeout),
	}
	if f.trusted == nil {
		f.trusted = func(netip.Addr) bool { return false }
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.bans.init(orDefault(cfg.MaxLocalBans, DefaultMaxLocalBans), m)

	if cfg.RatePerSource >= 0 {
		f.rate = newRateGuard(orDefault(cfg.RatePerSource, DefaultRatePerSource), orDefault(cfg.RateSlots, DefaultRateSlots))
	}

	window := orDefault(cfg.Window, DefaultWindow)
	threshold := orDefault(cfg.Threshold, DefaultThreshold)
	grace := orDefault(cfg.ChallengeGrace, DefaultChallengeGrace)
	f.det.init(f, threshold, window, grace, orDefault(cfg.MaxTracked, DefaultMaxTracked), cfg.Shared)
	for k := Kind(1); k < numKinds; k++ {
		f.reasons[k] = k.reason(threshold, window)
	}
	if cfg.TrustAuthenticated >= 0 {
		f.authed = newAuthTable(orDefault(cfg.TrustAuthenticated, DefaultTrustAuth), orDefault(cfg.AuthSlots, DefaultAuthSlots))
	}

	if f.persist != nil || f.det.threshold > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		f.cancel = cancel
		if f.persist != nil {
			f.queue = make(chan store.Ban, orDefault(cfg.PersistQueue, DefaultPersistQueue))
		}
		f.stop = make(chan struct{})
		f.done = make(chan struct{})
		go f.loop(ctx, f.det.threshold > 0)
	}
	return f, nil
}

// Close stops the background goroutine (persistence and the Detector's
// sweep). Bans still queued are persisted until ctx is done; those left
// then are counted as dropped and ctx.Err() is returned. Bans made after
// Close stay local, and unanswered challenges are judged only at their
// source's next challenge. Close is idempotent.
func (f *Firewall) Close(ctx context.Context) error {
	if f.stop == nil {
		return nil
	}
	f.stopOnce.Do(func() { close(f.stop) })
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		f.cancel()
		<-f.done
		return ctx.Err()
	}
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}
