package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/sipward/sipward/internal/api"
	"github.com/sipward/sipward/internal/cluster"
	"github.com/sipward/sipward/internal/config"
	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/nodes"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/signin"
	"github.com/sipward/sipward/internal/stage/limits"
	"github.com/sipward/sipward/internal/store"
	"github.com/sipward/sipward/internal/web"
)

// ensureAdminLogin makes sure the operator can sign in to the web UI: the
// login "admin" with --admin-password, or, at first start without one, a
// generated password printed once to w. The line does not look like the
// API token line above it.
func ensureAdminLogin(ctx context.Context, cfg config.Config, svc *provision.Service, w io.Writer) error {
	pw, err := svc.EnsureAdminLogin(ctx, cfg.AdminPassword)
	if err != nil {
		return fmt.Errorf("web UI operator login: %w", err)
	}
	if pw != "" {
		fmt.Fprintf(w, "sipward: web UI sign-in (shown once): username %q, password %s\n\n", provision.AdminLogin, pw)
	}
	return nil
}

// newWebUI returns the web UI, showing the live state of this node's SIP
// edge, with calls and decisions merged across the cluster and the list of
// its nodes and the dashboard's series of every node; with Redis, sign-in lockouts and signed-out sessions hold on
// every node.
func newWebUI(ctx context.Context, cfg config.Config, log *slog.Logger, svc *provision.Service, side *sipSide, views *nodes.Views, stats web.Stats) (*web.Server, error) {
	o := web.Options{
		Service:       svc,
		Live:          clusterLive{edgeLive{side}, views},
		Nodes:         views,
		Messenger:     edgeLive{side},
		Stats:         stats,
		SecureCookies: cfg.UISecureCookies,
		SessionTTL:    cfg.UISessionTTL,
		Log:           log,
	}
	if side.redis != nil {
		lk, rv := cluster.NewRedisLockouts(side.redis, cfg.RedisPrefix, signin.DefaultLockout), cluster.NewRedisRevocations(side.redis, cfg.RedisPrefix)
		lk.UseHealth(side.redisUp)
		rv.UseHealth(side.redisUp)
		o.Lockouts, o.Revocations = lk, rv
	}
	return web.New(ctx, o)
}

// edgeLive is web.Live and web.Messenger on the running SIP side.
type edgeLive struct{ s *sipSide }

var (
	_ web.Live      = edgeLive{}
	_ web.Messenger = edgeLive{}
)

func (l edgeLive) Calls(accountID int64) []live.Call { return l.s.calls.Calls(accountID) }

func (l edgeLive) Registrations(accountID int64, username string) []live.Binding {
	return l.s.registrar.List(accountID, username)
}

func (l edgeLive) Decisions(f live.DecisionFilter) []live.Decision { return l.s.edge.Decisions(f) }

// apiLive is api.Live on the running SIP side.
type apiLive struct{ edgeLive }

var _ api.Live = apiLive{}

func (l apiLive) SendMessage(ctx context.Context, username, from, text string) ([]live.MessageResult, error) {
	return l.s.messageEverywhere(ctx, username, from, text)
}

func (l edgeLive) ChannelsInUse(ctx context.Context, accountID int64) (int, error) {
	return l.s.channels.InUse(ctx, limits.Key{Kind: limits.Account, ID: accountID})
}

// SendMessage sends a SIP MESSAGE to u's registered devices and returns how
// many accepted it (0 when none is registered); when some answered but none
// accepted, the error says how each answered.
func (l edgeLive) SendMessage(ctx context.Context, u store.SIPUser, text string) (int, error) {
	res, err := l.s.messageEverywhere(ctx, u.Username, "", text)
	if errors.Is(err, live.ErrNotRegistered) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var why []string
	for _, r := range res {
		switch {
		case r.Status >= 200 && r.Status < 300:
			n++
		case r.Error != "":
			why = append(why, r.Error)
		default:
			why = append(why, fmt.Sprintf("answered %d", r.Status))
		}
	}
	if n == 0 && len(why) > 0 {
		return 0, fmt.Errorf("no device accepted it (%s)", strings.Join(why, "; "))
	}
	return n, nil
}
