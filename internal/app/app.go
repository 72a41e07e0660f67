// Package app wires a sipward node together: store → provisioning → REST
// API and web UI on the HTTP side; snapshot → pipeline → SIP listeners on
// the SIP side. It owns start-up order and graceful shutdown; cmd/sipward
// only parses flags and calls Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sipward/sipward/internal/api"
	"github.com/sipward/sipward/internal/config"
	"github.com/sipward/sipward/internal/nodes"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/secret"
	"github.com/sipward/sipward/internal/series"
	"github.com/sipward/sipward/internal/store/sqlstore"
)

// Run serves until ctx is cancelled, then drains for cfg.ShutdownTimeout.
// ready, when not nil, receives the bound HTTP address once listening.
// firstToken is where a token generated at first start is printed, once.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, firstToken io.Writer, ready func(Addrs)) error {
	st, err := sqlstore.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()

	rec := series.NewRecorder() // the dashboard's series of this node
	svc, err := provisioning(ctx, cfg, st, firstToken, rec.Ban)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), rec)
	sipCtx, stopSIP := context.WithCancel(context.Background())
	defer stopSIP()
	side, err := startSIP(sipCtx, cfg, log, reg, st, svc, rec)
	if err != nil {
		return err
	}
	go housekeep(sipCtx, svc, cfg.AuditRetention, log)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", cfg.HTTPAddr, err)
	}
	defer ln.Close()
	views, err := startNodes(sipCtx, side.nodes, edgeLive{side}, svc, ln.Addr(), log)
	if err != nil {
		return err
	}
	views.UseSeries(rec)
	stats := clusterStats{views: views, live: clusterLive{edgeLive{side}, views}, snap: side.holder.Load, now: time.Now}
	apiSrv := api.New(api.Options{Service: svc, AdminToken: cfg.AdminToken, Log: log, Live: apiLive{edgeLive{side}}, Cluster: views,
		Extensions: api.Dashboard(stats, svc)})
	mux := http.NewServeMux()
	mux.Handle("/api/", apiSrv)
	side.views.Store(views)
	mux.Handle(nodes.PeerPath, views.Handler(side))
	mux.Handle("/debug/pprof/", debugHandler(apiSrv))
	ui, err := newWebUI(ctx, cfg, log, svc, side, views, stats)
	if err != nil {
		return err
	}
	mux.Handle("/", ui)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /healthz", healthHandler(st, side))

	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("sipward serving", "http", ln.Addr().String(), "sip", side.addrs.UDP, "db", redactDSN(cfg.DB), "realm", cfg.Realm, "node", side.nodes.ID())
	if ready != nil {
		ready(Addrs{HTTP: ln.Addr().String(), SIP: side.addrs.UDP, SIPS: side.addrs.TLS})
	}

	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("sipward shutting down", "drain", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	side.close(sctx) // no new calls; active ones get until the deadline, then BYE
	stopSIP()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// provisioning returns the provisioning service on st, with the sealing
// key of egress credentials, and makes the operator token and web UI login
// at first start (printed once to firstToken).
func provisioning(ctx context.Context, cfg config.Config, st *sqlstore.Store, firstToken io.Writer, banned func(time.Time)) (*provision.Service, error) {
	key, err := sealingKey(cfg)
	if err != nil {
		return nil, err
	}
	sealer, err := secret.NewSealer(key)
	if err != nil {
		return nil, err
	}
	svc := provision.New(st, provision.Options{Realm: cfg.Realm, Sealer: sealer, Mailboxes: st, Banned: banned})
	if cfg.AdminToken == "" {
		tok, err := svc.EnsureOperatorToken(ctx)
		if err != nil {
			return nil, fmt.Errorf("make operator token: %w", err)
		}
		if tok != "" {
			fmt.Fprintf(firstToken, "\nsipward: operator API token (shown once, keep it safe):\n\n    %s\n\n", tok)
		}
	}
	if err := ensureAdminLogin(ctx, cfg, svc, firstToken); err != nil {
		return nil, err
	}
	return svc, nil
}

// Addrs are the addresses a node bound (useful with port 0).
type Addrs struct {
	HTTP string
	SIP  string // UDP and TCP
	SIPS string
}

func sealingKey(cfg config.Config) ([]byte, error) {
	if cfg.SecretKey != "" {
		k, err := secret.ParseKey(cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("secret-key: %w", err)
		}
		return k, nil
	}
	k, err := secret.LoadOrCreateKey(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("key-file: %w", err)
	}
	return k, nil
}

// redactDSN hides a password in a DSN for logs.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}
