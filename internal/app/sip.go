package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/b2bua"
	"github.com/sipward/sipward/internal/cluster"
	"github.com/sipward/sipward/internal/config"
	"github.com/sipward/sipward/internal/digest"
	"github.com/sipward/sipward/internal/edge"
	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/mwi"
	"github.com/sipward/sipward/internal/nodes"
	"github.com/sipward/sipward/internal/pipeline"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/registrar"
	"github.com/sipward/sipward/internal/rtpengine"
	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/siptcp"
	"github.com/sipward/sipward/internal/snapshot"
	"github.com/sipward/sipward/internal/stage/authn"
	"github.com/sipward/sipward/internal/stage/codecs"
	"github.com/sipward/sipward/internal/stage/firewall"
	"github.com/sipward/sipward/internal/stage/identify"
	"github.com/sipward/sipward/internal/stage/limits"
	"github.com/sipward/sipward/internal/stage/nat"
	"github.com/sipward/sipward/internal/stage/rewrite"
	"github.com/sipward/sipward/internal/stage/route"
	"github.com/sipward/sipward/internal/stage/sanity"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/voicemail"
)

// sipSide is the running SIP half of a node.
type sipSide struct {
	edge      *edge.Edge
	calls     *b2bua.B2BUA
	relay     *rtpengine.Client // nil without --rtpengine
	registrar *registrar.Registrar
	voicemail *voicemail.Service
	firewall  *firewall.Firewall
	channels  limits.Channels
	rates     limits.Rates
	watcher   *snapshot.Watcher
	holder    *snapshot.Holder
	addrs     edge.Addrs
	nodes     *nodes.Registry             // this node in the cluster's list of nodes
	views     atomic.Pointer[nodes.Views] // the cluster's, once the HTTP side is up
	waiting   *mwi.Service                // message waiting
	redis     *redis.Client
	redisUp   *cluster.Health // nil without --redis
	lease     time.Duration   // of channel holds
	cl        *clusterLoc     // the cluster's location service; nil without Redis
	svc       *provision.Service
	series    *series.Recorder // the dashboard's series of this node
	log       *slog.Logger
	stop      context.CancelFunc // ends the side's background loops
	loops     sync.WaitGroup
}

// sipStore is what the SIP side needs of the store.
type sipStore interface {
	store.Store
	store.Registrations
	store.Mailboxes
}

// startSIP builds the SIP side from configuration and serves it: the
// configuration snapshot, the live state, the stages, the listeners, and
// the B2BUA and registrar at the ends of the chains.
func startSIP(ctx context.Context, cfg config.Config, log *slog.Logger, reg *prometheus.Registry, st sipStore, svc *provision.Service, rec *series.Recorder) (*sipSide, error) {
	s := &sipSide{holder: &snapshot.Holder{}, svc: svc, log: log, series: rec}
	core, err := cfg.CorePrefixes()
	if err != nil {
		return nil, err
	}
	ups, err := cfg.Upstreams()
	if err != nil {
		return nil, err
	}
	// Configuration snapshot: built once before the listeners open, then kept
	// current by polling the store's revision.
	s.watcher = snapshot.NewWatcher(st, s.holder, snapshot.Options{CoreAddrs: core, Realm: cfg.Realm}, log)
	if err := s.watcher.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("build configuration snapshot: %w", err)
	}
	if err := s.liveState(cfg, reg); err != nil {
		return nil, err
	}
	if s.redis != nil {
		secret, err := svc.NonceSecret(ctx)
		if err != nil {
			return nil, fmt.Errorf("nonce secret: %w", err)
		}
		if s.cl, err = newClusterLoc(s.redis, cfg.RedisPrefix, secret); err != nil {
			return nil, err
		}
	}
	if s.firewall, err = s.newFirewall(cfg, reg); err != nil {
		return nil, err
	}
	s.watchBans()
	chains, err := s.stages(ctx, cfg, reg)
	if err != nil {
		return nil, err
	}
	if err := s.listen(ctx, cfg, reg); err != nil {
		return nil, err
	}
	s.nodes, err = newNodeRegistry(cfg, s.addrs.UDP, s.redis, log,
		func() int { return s.calls.Active() }, func() int { return s.registrar.Count() })
	if err != nil {
		s.edge.Close()
		return nil, err
	}
	if err := s.ends(ctx, cfg, reg, st, &chains, ups); err != nil {
		s.edge.Close()
		return nil, err
	}
	s.serve(ctx, chains)
	return s, nil
}

// liveState keeps channel counts and CPS buckets in process, or in Redis
// for scale-out — falling back to node-local counts while Redis does not
// answer (package cluster).
func (s *sipSide) liveState(cfg config.Config, reg *prometheus.Registry) error {
	s.lease = cfg.ChannelLease
	if cfg.Redis == "" {
		s.channels = limits.NewLocalChannels(cfg.ChannelLease)
		s.rates = limits.NewLocalRates(time.Minute)
		return nil
	}
	var err error
	if s.redis, err = newRedisClient(cfg.Redis); err != nil {
		return err
	}
	s.redisUp = cluster.NewHealth(s.redis)
	s.channels = cluster.NewFallbackChannels(cluster.NewRedisChannels(s.redis, cfg.RedisPrefix, cfg.ChannelLease), s.redisUp)
	s.rates = cluster.NewFallbackRates(cluster.NewRedisRates(s.redis, cfg.RedisPrefix), s.redisUp)
	redisMetrics(reg, s.redisUp)
	return nil
}

// newFirewall builds the firewall: IP endpoints and the core are trusted;
// with Redis, failures are counted across the nodes.
func (s *sipSide) newFirewall(cfg config.Config, reg *prometheus.Registry) (*firewall.Firewall, error) {
	var shared firewall.SharedCounts
	if s.redis != nil {
		rf := cluster.NewRedisFailures(s.redis, cfg.RedisPrefix)
		rf.UseHealth(s.redisUp)
		shared = rf
	}
	trustAuth := cfg.FraudTrustAuth
	if trustAuth == 0 {
		trustAuth = -1 // the flag's 0 means never; the firewall's means its default
	}
	return firewall.New(firewall.Config{
		Threshold: cfg.FraudThreshold, Window: cfg.FraudWindow, BanFor: cfg.FraudBan,
		ChallengeGrace: cfg.FraudGrace, TrustAuthenticated: trustAuth,
		RatePerSource: cfg.FirewallRate,
		Trusted: func(a netip.Addr) bool {
			sn := s.holder.Load()
			return sn != nil && (sn.IsCore(a) || sn.KnownSource(a)) || s.cl.peer(a)
		},
		Shared:     shared,
		Persist:    s.svc.AddDetectedBan,
		Banned:     s.series.Ban,
		Logger:     s.log,
		Registerer: reg,
	})
}

// watchBans feeds the firewall the bans of the serving snapshot: now, and
// on every swap that changed them, so the bans in force and the rest of
// the configuration come from one store revision.
func (s *sipSide) watchBans() {
	var mu sync.Mutex // swaps apply in order
	var last []store.Ban
	fed := false
	feed := func(sn *snapshot.Snapshot) {
		mu.Lock()
		defer mu.Unlock()
		bans := sn.BanList()
		if fed && len(bans) == len(last) && (len(bans) == 0 || &bans[0] == &last[0]) {
			return // the same list: bans did not change in this swap
		}
		fed, last = true, bans
		if err := s.firewall.SetBans(bans); err != nil {
			s.log.Warn("firewall: stored bans", "err", err) // the valid ones are in force
		}
	}
	feed(s.holder.Load())
	s.watcher.OnSwap(feed)
}

// stages builds the pipeline stages, in the order edge/chain.go runs them.
func (s *sipSide) stages(ctx context.Context, cfg config.Config, reg *prometheus.Registry) (edge.Chains, error) {
	c := edge.Chains{Firewall: s.firewall.Stage()}
	var err error
	// Extensions sipward implements (package b2bua): session timers, and
	// reliable provisionals end to end (a far leg that cannot do them
	// answers 420 itself).
	if c.Sanity, err = sanity.New(sanity.Config{Registerer: reg, Supported: []string{"timer", "100rel"}}); err != nil {
		return c, err
	}
	if c.Identify, err = identify.New(identify.Config{Snapshot: s.holder.Load, Registerer: reg, Delivery: s.cl.delivery()}); err != nil {
		return c, err
	}
	an, err := s.authn(ctx, cfg, reg)
	if err != nil {
		return c, err
	}
	c.Authn = an.Stage()
	if c.Limits, err = limits.New(limits.Config{Channels: s.channels, Rates: s.rates, Registerer: reg}); err != nil {
		return c, err
	}
	if c.Rewrite, err = rewrite.New(rewrite.Config{Registry: reg}); err != nil {
		return c, err
	}
	if c.Codecs, err = codecs.New(codecs.Config{Registerer: reg, Policy: codecs.PrincipalPolicy}); err != nil {
		return c, err
	}
	if c.NAT, err = nat.New(nat.Config{Registerer: reg}); err != nil {
		return c, err
	}
	return c, nil
}

// authn builds digest authentication: nonces signed with the store's
// secret (valid on every node), nonce counts in process or in Redis, and
// the firewall's detector told of failures and successes.
func (s *sipSide) authn(ctx context.Context, cfg config.Config, reg *prometheus.Registry) (*authn.Stage, error) {
	secret, err := s.svc.NonceSecret(ctx)
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
		rc := cluster.NewRedisCounts(s.redis, cfg.RedisPrefix, digest.DefaultNonceLifetime)
		rc.UseHealth(s.redisUp)
		counts = rc
	}
	auth, err := digest.New(digest.Config{Realm: cfg.Realm, Algorithms: algs, Nonces: nonces, Counts: counts})
	if err != nil {
		return nil, fmt.Errorf("digest-algorithms: %w", err)
	}
	det := s.firewall.Detector()
	return authn.New(authn.Config{Auth: auth, Registry: reg, Lookup: authn.SnapshotUser,
		OnFailure: func(src netip.Addr, k authn.FailureKind, now time.Time) {
			kind := firewall.AuthFailure
			if k == authn.NoCredentials {
				kind = firewall.UnknownSourceInvite
			}
			det.Failure(src, kind, now)
		},
		OnSuccess: det.Authenticated,
	})
}

// listen opens the SIP listeners.
func (s *sipSide) listen(ctx context.Context, cfg config.Config, reg *prometheus.Registry) error {
	var tlsConf *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("tls-cert/tls-key: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	e, err := edge.Listen(ctx, edge.Config{
		SIPAddr: cfg.SIPAddr, SIPSAddr: cfg.SIPSAddr, TLS: tlsConf, ExternalHost: cfg.ExternalHost,
		Log: s.log, Registry: reg, ReadFilter: s.firewall.ReadFilter, Snapshot: s.holder.Load,
		T1: cfg.SIPT1, TxLinger: cfg.TxLinger, Streams: s.streamGuard(cfg), Series: s.series,
	})
	if err != nil {
		return err
	}
	s.edge, s.addrs = e, e.Addrs()
	return nil
}

// streamGuard is how the TCP and TLS listeners treat sources: strangers
// are limited, banned sources closed, and refused connections and failed
// TLS handshakes counted by the firewall's detector.
func (s *sipSide) streamGuard(cfg config.Config) siptcp.Config {
	fw := s.firewall
	return siptcp.Config{MaxPerSource: cfg.TCPMaxConns, RatePerSource: cfg.TCPConnRate,
		HeaderTimeout: cfg.TCPHeaderTimeout, IdleTimeout: cfg.TCPIdleTimeout,
		Customer: func(a netip.Addr) bool { return fw.Customer(a, time.Now()) },
		Banned:   func(a netip.Addr) bool { return fw.Blocks(a, time.Now()) },
		OnFlood:  func(a netip.Addr) { fw.Detector().Failure(a, firewall.StreamFlood, time.Now()) },
	}
}

// ends builds what the chains end in — the route stage and the B2BUA for
// INVITEs and dialogs, the registrar for REGISTERs — on the edge's Sender.
func (s *sipSide) ends(ctx context.Context, cfg config.Config, reg *prometheus.Registry, st sipStore, c *edge.Chains, ups []sip.Uri) error {
	var err error
	rc := registrar.Config{Store: st, Log: s.log, Registerer: reg,
		MinExpires: cfg.RegMinExpires, MaxExpires: cfg.RegMaxExpires, MaxContacts: cfg.RegMaxContacts,
		PingInterval: cfg.NATPingInterval, OnRegistered: s.edge.KeepStream, Pings: s.series,
		Ping: func(id int64) string {
			if u := s.holder.Load().UserByID(id); u != nil {
				return u.NATPing.String()
			}
			return "disabled"
		}}
	rtc := route.Config{Upstreams: ups}
	s.cl.locate(s.nodes, s.log, &rc, &rtc)
	s.registrar, err = registrar.New(ctx, rc)
	if err != nil {
		return err
	}
	channels, log := s.channels, s.log
	var relay b2bua.MediaRelay
	if cfg.RTPEngine != "" {
		addrs, err := rtpengine.ParseAddrs(cfg.RTPEngine)
		if err != nil {
			return err
		}
		rc, err := rtpengine.New(addrs, rtpengine.Options{})
		if err != nil {
			return err
		}
		s.relay, relay = rc, rc
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := rc.Ping(pctx); err != nil {
			log.Warn("rtpengine: a media relay does not answer (calls go to the others, or unrelayed)", "err", err)
		} else {
			log.Info("rtpengine: media relays answer", "relays", strings.Join(addrs, ","))
		}
		cancel()
		if reg != nil {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipward_media_relay_sessions",
				Help: "Calls whose media the relays hold for this node."}, func() float64 { return float64(rc.Held()) }))
		}
	}
	var unseal func([]byte) (string, error)
	if sl := s.svc.Sealer(); sl != nil {
		unseal = sl.Open
	}
	waiting := newMWI(st, s.holder.Load, s.registrar, s.edge.Sender(), log)
	s.waiting = waiting
	s.voicemail, err = startVoicemail(ctx, cfg, st, vmDeps{svc: s.svc, snap: s.holder.Load, firewall: s.firewall, changed: s.mailboxChanged, log: log, reg: reg})
	if err != nil {
		return err
	}
	rtc.Locator, rtc.Mailboxes = s.registrar, s.voicemail
	router := route.New(rtc)
	s.calls, err = b2bua.New(b2bua.Config{Sender: s.edge.Sender(), Answer: s.edge.Answer, Log: log, Registerer: reg,
		InviteTimeout: cfg.RingTimeout, Keepalive: cfg.Keepalive, Unseal: unseal, Relay: relay,
		Route: s.transferRoute(router), Decide: s.edge.Record, MinSE: cfg.SessionMinSE,
		Release: func(callID string) {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := channels.Release(rctx, callID); err != nil {
				log.Warn("limits: release channels", "call_id", callID, "err", err)
			}
		}})
	if err != nil {
		return err
	}
	c.Route = router.Stage()
	c.Calls, c.Dialogs, c.Register, c.Subscribe = s.calls, s.calls.Dialogs(), s.registrar, waiting
	return nil
}

// SendMessage sends a SIP MESSAGE to the devices of username registered
// through this node; with MailboxChanged, it is what this node does for the
// cluster (nodes.Actions).
func (s *sipSide) SendMessage(ctx context.Context, username, from, text string) ([]live.MessageResult, error) {
	return s.registrar.SendMessage(ctx, username, from, text)
}

// MailboxChanged notifies the subscriptions and phones this node holds of
// mailbox id's new counts.
func (s *sipSide) MailboxChanged(id int64) { s.waiting.Changed(id) }

// messageEverywhere sends a SIP MESSAGE to every registered device of
// username, through the node each registered through.
func (s *sipSide) messageEverywhere(ctx context.Context, username, from, text string) ([]live.MessageResult, error) {
	if v := s.views.Load(); v != nil {
		return v.SendMessage(ctx, s, username, from, text)
	}
	return s.SendMessage(ctx, username, from, text)
}

// mailboxChanged tells every node of the cluster (this one alone before
// the HTTP side is up) that mailbox id changed.
func (s *sipSide) mailboxChanged(id int64) {
	if v := s.views.Load(); v != nil {
		v.MailboxChanged(s, id)
		return
	}
	s.MailboxChanged(id)
}

// transferRoute routes a transfer's new leg (the B2BUA's Config.Route) as
// a call of the customer by to dialled, on the configuration in force.
func (s *sipSide) transferRoute(rt *route.Router) func(context.Context, pipeline.Identity, string, time.Time) (pipeline.Plan, *pipeline.Result) {
	return func(ctx context.Context, by pipeline.Identity, dialled string, now time.Time) (pipeline.Plan, *pipeline.Result) {
		by.Dialled = dialled
		plan, rej, err := rt.Route(ctx, &pipeline.Request{Snap: s.holder.Load(), Auth: by, Now: now})
		if err != nil && rej == nil {
			rej = &pipeline.Result{Status: 503, Reason: "Service Unavailable", Why: err.Error()}
		}
		return plan, rej
	}
}

// serve starts the listeners and the background loops: the snapshot
// watcher, the registrar's, keepalives, and the channels' (channels.go):
// renewing the live calls' holds, reaping a dead node's, and with Redis
// the watch that switches to node-local counts and back.
func (s *sipSide) serve(ctx context.Context, c edge.Chains) {
	ctx, s.stop = context.WithCancel(ctx)
	s.edge.Serve(ctx, c)
	s.registrar.Start(ctx, s.edge.Sender())
	s.loops.Add(5)
	go func() { defer s.loops.Done(); s.calls.Keepalive(ctx) }()
	go func() { defer s.loops.Done(); s.calls.SessionTimers(ctx) }()
	go func() { defer s.loops.Done(); s.watcher.Run(ctx) }()
	go func() { defer s.loops.Done(); renewHolds(ctx, s.calls, s.channels, s.lease, s.log) }()
	go func() { defer s.loops.Done(); reap(ctx, s.channels, min(s.lease/2, time.Minute), s.log) }()
	if s.redisUp != nil {
		s.loops.Add(1)
		go func() { defer s.loops.Done(); s.redisUp.Run(ctx) }()
	}
}

// newRedisClient connects to the Redis of --redis: host:port, a redis:// or
// rediss:// URL, or — with master_name in the URL — the primary that Redis
// Sentinel names, followed across failovers:
// redis://sentinel1:26379?master_name=mymaster&addr=sentinel2:26379.
func newRedisClient(s string) (*redis.Client, error) {
	if !strings.Contains(s, "://") {
		return redis.NewClient(&redis.Options{Addr: s}), nil
	}
	if strings.Contains(s, "master_name=") {
		o, err := redis.ParseFailoverURL(s)
		if err != nil {
			return nil, fmt.Errorf("redis: %q: %w", s, err)
		}
		return redis.NewFailoverClient(o), nil
	}
	o, err := redis.ParseURL(s)
	if err != nil {
		return nil, fmt.Errorf("redis: %q: %w", s, err)
	}
	return redis.NewClient(o), nil
}

// close drains the SIP side: no new calls (503 with Retry-After), active
// ones get until ctx's deadline, then BYE; then the listeners, the loops
// (the registrar writes what changed last), the firewall's persistence, the
// node's heartbeats (it says it left) and Redis stop.
func (s *sipSide) close(ctx context.Context) {
	s.edge.StopNewCalls()
	s.calls.Drain(ctx)
	s.edge.Close()
	s.registrar.Close()
	if s.stop != nil {
		s.stop()
	}
	s.loops.Wait()
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.firewall.Close(fctx)
	s.nodes.Leave(fctx, time.Now()) // the others list it down at once
	if s.redis != nil {
		s.redis.Close()
	}
	if s.relay != nil {
		s.relay.Close()
	}
}
