package app

import (
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/redis/go-redis/v9"

	"github.com/sipward/sipward/internal/cluster"
	"github.com/sipward/sipward/internal/nodes"
	"github.com/sipward/sipward/internal/registrar"
	"github.com/sipward/sipward/internal/stage/route"
)

// The Redis location is the registrar's Location.
var _ registrar.Location = (*cluster.RedisLocation)(nil)

// clusterLoc is the cluster's location service of a node with Redis: the
// bindings shared in Redis, the node registry that says which nodes are up
// and where, and the signing of calls handed over between nodes. nil
// without Redis.
type clusterLoc struct {
	loc        *cluster.RedisLocation
	deliveries *cluster.Deliveries
	nodes      atomic.Pointer[nodes.Registry] // set once the listeners are open
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
	return &clusterLoc{loc: cluster.NewRedisLocation(rdb, prefix), deliveries: d}, nil
}

// locate fills in the cluster parts of the registrar's and the route
// stage's configuration, once the listeners are open and the node is in
// the registry. Nothing on a nil c.
func (c *clusterLoc) locate(reg *nodes.Registry, log *slog.Logger, rc *registrar.Config, rtc *route.Config) {
	if c == nil {
		return
	}
	c.nodes.Store(reg)
	id, addr := reg.ID(), reg.SIPAddr()
	rc.Location, rc.NodeID, rc.NodeAddr = c.loc, id, addr
	d := c.deliveries
	rtc.NodeID, rtc.Nodes = id, reg
	rtc.Deliver = func(username, contact, callID string, now time.Time) sip.Header {
		return sip.NewHeader(cluster.DeliverHeader, d.Sign(username, contact, callID, now))
	}
	log.Info("cluster: location service in Redis", "node", id, "sip_addr", addr)
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
	reg := c.nodes.Load()
	return reg != nil && reg.PeerAddr(a, time.Now())
}
