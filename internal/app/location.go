package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/cluster"
	"github.com/sipward/sipward/internal/config"
	"github.com/sipward/sipward/internal/registrar"
	"github.com/sipward/sipward/internal/stage/route"
)

// clusterLoc is the cluster's location service of a node with Redis: its
// id and SIP address, the bindings shared in Redis, the beacons that say
// which nodes are up (a stand-in for the node registry), and the signing
// of calls handed over between nodes. nil without Redis.
type clusterLoc struct {
	id, addr   string
	loc        *cluster.RedisLocation
	deliveries *cluster.Deliveries
	beacons    atomic.Pointer[cluster.Beacons] // set once the SIP listener's address is known
}

// newClusterLoc prepares the location service (before the listeners
// open: identify needs the deliveries' key).
func (s *sipSide) newClusterLoc(ctx context.Context, cfg config.Config) error {
	if s.redis == nil {
		return nil
	}
	secret, err := s.svc.NonceSecret(ctx)
	if err != nil {
		return fmt.Errorf("nonce secret: %w", err)
	}
	d, err := cluster.NewDeliveries(secret)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	var b [3]byte
	rand.Read(b[:])
	s.cl = &clusterLoc{id: host + "-" + hex.EncodeToString(b[:]), loc: cluster.NewRedisLocation(s.redis, cfg.RedisPrefix), deliveries: d}
	return nil
}

// nodeSIPAddr is the address the other nodes reach this node's SIP UDP
// listener at: --external-host with the bound port, else the bound
// address (a wildcard becomes the host name).
func nodeSIPAddr(cfg config.Config, udp string) string {
	host, port, err := net.SplitHostPort(udp)
	if err != nil {
		return udp
	}
	if cfg.ExternalHost != "" {
		return net.JoinHostPort(cfg.ExternalHost, port)
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return net.JoinHostPort(h, port)
		}
	}
	return udp
}

// locate fills in the cluster parts of the registrar's and the route
// stage's configuration, once the listeners are open.
func (s *sipSide) locate(cfg config.Config, rc *registrar.Config, rtc *route.Config) {
	if s.cl == nil {
		return
	}
	s.cl.addr = nodeSIPAddr(cfg, s.addrs.UDP)
	s.cl.beacons.Store(cluster.NewBeacons(s.redis, cfg.RedisPrefix, s.cl.id, s.cl.addr))
	rc.Location, rc.NodeID, rc.NodeAddr = s.cl.loc, s.cl.id, s.cl.addr
	d := s.cl.deliveries
	rtc.NodeID, rtc.Nodes = s.cl.id, s.cl.beacons.Load()
	rtc.Deliver = func(username, contact, callID string, now time.Time) sip.Header {
		return sip.NewHeader(cluster.DeliverHeader, d.Sign(username, contact, callID, now))
	}
	s.log.Info("cluster: location service in Redis", "node", s.cl.id, "sip_addr", s.cl.addr)
}

// delivery is identify's Config.Delivery: a call a peer node signed over
// to this node; nil without Redis.
func (s *sipSide) delivery() func(*sip.Request, time.Time) (string, string, bool) {
	if s.cl == nil {
		return nil
	}
	d := s.cl.deliveries
	return func(msg *sip.Request, now time.Time) (string, string, bool) {
		h := msg.GetHeader(cluster.DeliverHeader)
		if h == nil {
			return "", "", false
		}
		return d.Verify(h.Value(), msg.CallID().Value(), now)
	}
}

// peerNode reports whether a is the address of another node that is up
// (the firewall trusts it).
func (s *sipSide) peerNode(a netip.Addr) bool {
	if s.cl == nil {
		return false
	}
	b := s.cl.beacons.Load()
	return b != nil && b.Peer(a, time.Now())
}

// runBeacons beats until ctx ends; nothing without Redis.
func (s *sipSide) runBeacons(ctx context.Context) {
	if s.cl == nil {
		return
	}
	if b := s.cl.beacons.Load(); b != nil {
		b.Run(ctx)
	}
}
