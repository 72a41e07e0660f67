package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/redis/go-redis/v9"

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
	rdb        *redis.Client
	prefix     string
	loc        *cluster.RedisLocation
	deliveries *cluster.Deliveries
	beacons    atomic.Pointer[cluster.Beacons] // set once the SIP listener's address is known
}

// newClusterLoc prepares the location service of a node with Redis
// (before the listeners open: identify needs the deliveries' key); nil
// without Redis. secret is the store's (provision.Service.NonceSecret).
func newClusterLoc(rdb *redis.Client, prefix string, secret []byte) (*clusterLoc, error) {
	if rdb == nil {
		return nil, nil
	}
	d, err := cluster.NewDeliveries(secret)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	var b [3]byte
	rand.Read(b[:])
	return &clusterLoc{id: host + "-" + hex.EncodeToString(b[:]), rdb: rdb, prefix: prefix,
		loc: cluster.NewRedisLocation(rdb, prefix), deliveries: d}, nil
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
// stage's configuration, once the listeners are open (udp is the SIP UDP
// listener's address). Nothing on a nil c.
func (c *clusterLoc) locate(cfg config.Config, udp string, log *slog.Logger, rc *registrar.Config, rtc *route.Config) {
	if c == nil {
		return
	}
	c.addr = nodeSIPAddr(cfg, udp)
	c.beacons.Store(cluster.NewBeacons(c.rdb, c.prefix, c.id, c.addr))
	rc.Location, rc.NodeID, rc.NodeAddr = c.loc, c.id, c.addr
	d := c.deliveries
	rtc.NodeID, rtc.Nodes = c.id, c.beacons.Load()
	rtc.Deliver = func(username, contact, callID string, now time.Time) sip.Header {
		return sip.NewHeader(cluster.DeliverHeader, d.Sign(username, contact, callID, now))
	}
	log.Info("cluster: location service in Redis", "node", c.id, "sip_addr", c.addr)
}

// delivery is identify's Config.Delivery: a call a peer node signed over
// to this node; nil on a nil c.
func (c *clusterLoc) delivery() func(*sip.Request, time.Time) (string, string, bool) {
	if c == nil {
		return nil
	}
	d := c.deliveries
	return func(msg *sip.Request, now time.Time) (string, string, bool) {
		h := msg.GetHeader(cluster.DeliverHeader)
		if h == nil {
			return "", "", false
		}
		return d.Verify(h.Value(), msg.CallID().Value(), now)
	}
}

// peer reports whether a is the address of another node that is up (the
// firewall trusts it).
func (c *clusterLoc) peer(a netip.Addr) bool {
	if c == nil {
		return false
	}
	b := c.beacons.Load()
	return b != nil && b.Peer(a, time.Now())
}

// run beats until ctx ends; nothing on a nil c.
func (c *clusterLoc) run(ctx context.Context) {
	if c == nil {
		return
	}
	if b := c.beacons.Load(); b != nil {
		b.Run(ctx)
	}
}
