package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/config"
	"github.com/sipward/sipward/internal/live"
	"github.com/sipward/sipward/internal/nodes"
	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/web"
)

// newNodeRegistry makes this node's entry in the registry of the
// cluster's nodes: a fresh ID, the address its SIP UDP listener (bound to
// sipUDP) is reached at, its version, and what it carries, counted by calls
// and registrations when it beats. rdb is nil without Redis.
func newNodeRegistry(cfg config.Config, sipUDP string, rdb *redis.Client, log *slog.Logger, calls, registrations func() int) (*nodes.Registry, error) {
	host, _ := os.Hostname()
	id, err := nodes.NewID(host, rand.Reader)
	if err != nil {
		return nil, err
	}
	sipAddr, err := nodes.Advertise(sipUDP, cfg.ExternalHost)
	if err != nil {
		return nil, err
	}
	return nodes.New(nodes.Config{
		Self:  nodes.Self{ID: id, SIP: sipAddr, Version: cfg.Version, StartedAt: time.Now()},
		Redis: rdb, Prefix: cfg.RedisPrefix, Log: log, Calls: calls, Registrations: registrations,
	})
}

// startNodes starts the heartbeats of reg's node, advertising the HTTP
// address it is bound to for node-to-node requests, and returns the views
// merged across the cluster with local as this node's rows, signed under
// the store's nonce secret (every node of a cluster shares it).
func startNodes(ctx context.Context, reg *nodes.Registry, local nodes.Local, svc *provision.Service, httpAddr net.Addr, log *slog.Logger) (*nodes.Views, error) {
	adv, err := nodes.Advertise(httpAddr.String(), "")
	if err != nil {
		return nil, err
	}
	secret, err := svc.NonceSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("nonce secret: %w", err)
	}
	views, err := nodes.NewViews(reg, local, secret, log)
	if err != nil {
		return nil, err
	}
	go reg.Run(ctx, adv)
	return views, nil
}

// clusterLive is the web UI's live state with calls and decisions merged
// across the cluster's nodes (those that answer in time).
type clusterLive struct {
	web.Live
	views *nodes.Views
}

var _ web.Live = clusterLive{}

func (l clusterLive) Calls(accountID int64) []live.Call {
	ctx, cancel := context.WithTimeout(context.Background(), nodes.PeerTimeout)
	defer cancel()
	calls, _ := l.views.Calls(ctx, accountID)
	return calls
}

func (l clusterLive) Decisions(f live.DecisionFilter) []live.Decision {
	ctx, cancel := context.WithTimeout(context.Background(), nodes.PeerTimeout)
	defer cancel()
	ds, _ := l.views.Decisions(ctx, f)
	return ds
}
