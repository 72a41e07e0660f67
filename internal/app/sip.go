package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/cluster"
	"github.com/sipward/sipward/internal/config"
	"github.com/sipward/sipward/internal/digest"
	"github.com/sipward/sipward/internal/edge"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/stage/authn"
	"github.com/sipward/sipward/internal/stage/codecs"
	"github.com/sipward/sipward/internal/stage/firewall"
	"github.com/sipward/sipward/internal/stage/identify"
	"github.com/sipward/sipward/internal/stage/limits"
	"github.com/sipward/sipward/internal/stage/rewrite"
	"github.com/sipward/sipward/internal/stage/route"
	"github.com/sipward/sipward/internal/stage/sanity"
	"github.com/sipward/sipward/internal/store"
)

// sipSide is the running SIP half of a node.
type sipSide struct {
	edge      *edge.Edge
	registrar *edge.Registrar
	firewall  *firewall.Firewall
	channels  limits.Channels
	watcher   *snapshot.Watcher
	holder    *snapshot.Holder
	addrs     edge.Addrs
	redis     *redis.Client
	svc       *provision.Service
}

// startSIP builds the pipeline from configuration and opens the SIP listeners.
func startSIP(ctx context.Context, cfg config.Config, log *slog.Logger, reg *prometheus.Registry,
	st interface {
		store.Store
		store.Registrations
	}, svc *provision.Service) (*sipSide, error) {
	s := &sipSide{holder: &snapshot.Holder{}, svc: svc}

	var core []netip.Prefix
	for i, a := range cfg.CoreAddr {
		p, err := provision.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("core-addr[%d]: %q: not an address or CIDR", i, a)
		}
		core = append(core, p)
	}
	var ups []sip.Uri
	for i, u := range cfg.Upstream {
		var uri sip.Uri
		if err := sip.ParseUri(u, &uri); err != nil || uri.Host == "" {
			return nil, fmt.Errorf("upstream[%d]: %q: not a SIP URI (sip:host[:port][;transport=tcp])", i, u)
		}
		ups = append(ups, uri)
	}

	// Configuration snapshot: built once before the listeners open, then kept
	// current by polling the store's revision.
	s.watcher = snapshot.NewWatcher(st, s.holder, snapshot.Options{CoreAddrs: core, Realm: cfg.Realm}, log)
	if err := s.watcher.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("build configuration snapshot: %w", err)
	}

	// Live state: in-process by default, Redis for scale-out.
	var rates limits.Rates
	if cfg.Redis != "" {
		opt, err := redisOptions(cfg.Redis)
		if err != nil {
			return nil, err
		}
		s.redis = redis.NewClient(opt)
		s.channels = cluster.NewRedisChannels(s.redis, cfg.RedisPrefix, limits.DefaultLease)
		rates = cluster.NewRedisRates(s.redis, cfg.RedisPrefix)
	} else {
		s.channels = limits.NewLocalChannels(limits.DefaultLease)
		rates = limits.NewLocalRates(time.Minute)
	}

	trustAuth := cfg.FraudTrustAuth
	if trustAuth == 0 {
		trustAuth = -1 // the flag's 0 means never; the firewall's means its default
	}
	fw, err := firewall.New(firewall.Config{
		Threshold: cfg.FraudThreshold, Window: cfg.FraudWindow, BanFor: cfg.FraudBan,
		ChallengeGrace: cfg.FraudGrace, TrustAuthenticated: trustAuth,
		RatePerSource: cfg.FirewallRate,
		Trusted: func(a netip.Addr) bool {
			sn := s.holder.Load()
			return sn != nil && (sn.IsCore(a) || sn.KnownSource(a))
		},
		Persist:    svc.AddDetectedBan,
		Logger:     log,
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	s.firewall = fw
	var bansMu sync.Mutex // reloads run one at a time, so an older one never lands last
	loadBans := func() {
		bansMu.Lock()
		defer bansMu.Unlock()
		bctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var bans []store.Ban
		err := st.View(bctx, func(tx store.Tx) error {
			var err error
			bans, _, err = tx.ListBans(bctx, store.BanFilter{ActiveAt: time.Now()})
			return err
		})
		if err == nil {
			err = fw.SetBans(bans)
		}
		if err != nil {
			log.Warn("firewall: reload bans", "err", err)
		}
	}
	loadBans()
	s.watcher.OnSwap(func(*snapshot.Snapshot) { go loadBans() })

	san, err := sanity.New(sanity.Config{Registerer: reg})
	if err != nil {
		return nil, err
	}
	ident, err := identify.New(identify.Config{Snapshot: s.holder.Load, Registerer: reg})
	if err != nil {
		return nil, err
	}
	secret, err := svc.NonceSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("nonce secret: %w", err)
	}
	nonces, err := digest.NewNonces(secret, digest.DefaultNonceLifetime)
	if err != nil {
		return nil, err
	}
	var algs []digest.Algorithm
	for _, a := range cfg.DigestAlgorithms {
		alg, _ := digest.ParseAlgorithm(a)
		algs = append(algs, alg)
	}
	var counts digest.NonceCounts = digest.NewLocalCounts(digest.DefaultNonceLifetime, digest.DefaultMaxCounts)
	if s.redis != nil { // replay protection across nodes
		counts = cluster.NewRedisCounts(s.redis, cfg.RedisPrefix, digest.DefaultNonceLifetime)
	}
	auth, err := digest.New(digest.Config{Realm: cfg.Realm, Algorithms: algs, Nonces: nonces, Counts: counts})
	if err != nil {
		return nil, fmt.Errorf("digest-algorithms: %w", err)
	}
	an, err := authn.New(authn.Config{Auth: auth, Registry: reg, Lookup: authn.SnapshotUser,
		OnFailure: func(src netip.Addr, k authn.FailureKind, now time.Time) {
			kind := firewall.AuthFailure
			if k == authn.NoCredentials {
				kind = firewall.UnknownSourceInvite
			}
			fw.Detector().Failure(src, kind, now)
		},
		OnSuccess: fw.Detector().Authenticated,
	})
	if err != nil {
		return nil, err
	}
	lim, err := limits.New(limits.Config{Channels: s.channels, Rates: rates, Registerer: reg})
	if err != nil {
		return nil, err
	}
	rw, err := rewrite.New(rewrite.Config{Registry: reg})
	if err != nil {
		return nil, err
	}
	cod, err := codecs.New(codecs.Config{Registerer: reg, Policy: codecs.PrincipalPolicy})
	if err != nil {
		return nil, err
	}

	if cfg.SIPT1 != sip.T1 { // sipgo's timers are process-wide
		sip.SetTimers(cfg.SIPT1, 4*time.Second, 5*time.Second)
	}
	// Finished transactions are kept tx-linger, not 64×T1: sipgo's (TCP,
	// TLS) keep their parsed messages, and at 32 s they were most of the live
	// heap (~1 GB at 2,000 calls/s) and so of the collector's pauses; the
	// edge's own over UDP read the same timers (they keep only the answer's
	// bytes). A retransmission later than that (a peer that heard none of
	// our answers for that long) is served as a new request: a BYE gets 481.
	linger := min(cfg.TxLinger, 64*cfg.SIPT1)
	if sip.Timer_J != linger || sip.Timer_L != linger || sip.Timer_M != linger || sip.Timer_D != linger {
		sip.Timer_D, sip.Timer_J, sip.Timer_L, sip.Timer_M = linger, linger, linger, linger
	}
	s.registrar, err = edge.NewRegistrar(ctx, edge.RegistrarConfig{Store: st, Log: log,
		MinExpires: cfg.RegMinExpires, MaxExpires: cfg.RegMaxExpires, MaxContacts: cfg.RegMaxContacts,
		PingInterval: cfg.NATPingInterval,
		Ping: func(id int64) string {
			if u := s.holder.Load().UserByID(id); u != nil {
				return u.NATPing.String()
			}
			return "disabled"
		}})
	if err != nil {
		return nil, err
	}
	channels := s.channels
	router := route.New(route.Config{Upstreams: ups, Registrar: s.registrar, Release: func(callID string) {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := channels.Release(rctx, callID); err != nil {
			log.Warn("limits: release channels", "call_id", callID, "err", err)
		}
	}})

	var tlsConf *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls-cert/tls-key: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	e, err := edge.New(edge.Config{
		SIPAddr: cfg.SIPAddr, SIPSAddr: cfg.SIPSAddr, TLS: tlsConf, ExternalHost: cfg.ExternalHost,
		Log: log, Registry: reg, ReadFilter: fw.ReadFilter,
		Stages: edge.Stages{Firewall: fw.Stage(), Sanity: san, Identify: ident, Authn: an.Stage(),
			Limits: lim, Rewrite: rw, Codecs: cod},
		Snapshot:      s.holder.Load,
		Router:        router,
		Registrar:     s.registrar,
		Keepalive:     cfg.Keepalive,
		InviteTimeout: cfg.RingTimeout,
	})
	if err != nil {
		return nil, err
	}
	s.edge = e
	s.addrs, err = e.Start(ctx)
	if err != nil {
		return nil, err
	}
	go s.watcher.Run(ctx)
	go reap(ctx, s.channels, log)
	return s, nil
}

// reap frees channels whose lease ran out (held by a crashed node).
func reap(ctx context.Context, ch limits.Channels, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := ch.Reap(ctx, now); err != nil {
				log.Warn("limits: reap expired channels", "err", err)
			} else if n > 0 {
				log.Info("limits: freed channels of expired holds", "holds", n)
			}
		}
	}
}

func redisOptions(s string) (*redis.Options, error) {
	if strings.Contains(s, "://") {
		o, err := redis.ParseURL(s)
		if err != nil {
			return nil, fmt.Errorf("redis: %q: %w", s, err)
		}
		return o, nil
	}
	return &redis.Options{Addr: s}, nil
}

// drain stops new calls, waits for active ones up to the deadline, then closes.
func (s *sipSide) close(ctx context.Context) {
	s.edge.Drain(ctx)
	s.edge.Close()
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.firewall.Close(fctx)
	if s.redis != nil {
		s.redis.Close()
	}
}
